package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The Hugging Face course's WordPiece/BPE example, merges worked out by hand:
// pairs (h,##u) 15, (##u,##g) 20, (p,##u) 17, (##u,##n) 16, (b,##u) 4, (##g,##s) 5.
//  1. ##u ##g -> ##ug (20)   2. ##u ##n -> ##un (16)   3. h ##ug -> hug (15)
//  4. p ##un -> pun (12)     5. tie at 5: "hug" < "p", so hug ##s -> hugs, then 6. p ##ug -> pug
//  7. b ##un -> bun (4)
func courseCorpus() []string {
	var texts []string
	for w, n := range map[string]int{"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5} {
		texts = append(texts, strings.Repeat(w+" ", n))
	}
	return texts
}

func TestLearnByHand(t *testing.T) {
	tk, err := Train(courseCorpus(), TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	want = append(want, SpecialTokens...)
	want = append(want, "##b", "##g", "##h", "##n", "##p", "##s", "##u", "b", "g", "h", "n", "p", "s", "u")
	want = append(want, "##ug", "##un", "hug", "pun", "hugs", "pug", "bun")
	if !reflect.DeepEqual(tk.vocab, want) {
		t.Errorf("vocabulary\n got %q\nwant %q", tk.vocab, want)
	}
	if got := tk.Tokens("Hugs, bun! bug"); !reflect.DeepEqual(got, []string{"hugs", "[UNK]", "bun", "[UNK]", "b", "##ug"}) {
		t.Errorf("Tokens = %q", got)
	}
	// "," and "!" are not in the alphabet.
	if got := tk.Encode("hugs, bun"); !reflect.DeepEqual(got, []int32{26, UnkID, 28}) {
		t.Errorf("Encode = %v", got)
	}
}

func TestVocabSizeAndMinFrequency(t *testing.T) {
	tk, err := Train(courseCorpus(), TrainOptions{VocabSize: 8 + 14 + 3})
	if err != nil {
		t.Fatal(err)
	}
	if tk.VocabSize() != 25 || tk.Token(24) != "hug" {
		t.Errorf("VocabSize %d, last %q; want 25 ending with hug", tk.VocabSize(), tk.Token(24))
	}
	tk, err = Train(courseCorpus(), TrainOptions{MinFrequency: 13})
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.vocab[len(tk.vocab)-3:]; !reflect.DeepEqual(got, []string{"##ug", "##un", "hug"}) {
		t.Errorf("with MinFrequency 13 the last merges are %q", got)
	}
}

const corpusText = `The quick brown fox jumps over the lazy dog. A movie review: this film was
wonderful, the acting was great and the story moving! Another review said the movie was boring
and too long. What digit is this? It is a seven. Is it even? No. What piece of clothing is this?
An ankle boot. Which emoji category? Smileys & Emotion. Grinning face with big eyes.`

func sampleCorpus() []string {
	var texts []string
	for i := 0; i < 20; i++ {
		texts = append(texts, strings.Split(corpusText, "\n")...)
	}
	return texts
}

func TestDeterministicTraining(t *testing.T) {
	a, err := Train(sampleCorpus(), TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	// Go randomizes map iteration on every run: a second training must still agree exactly.
	for i := 0; i < 3; i++ {
		b, err := Train(sampleCorpus(), TrainOptions{VocabSize: 300})
		if err != nil {
			t.Fatal(err)
		}
		if a.Fingerprint() != b.Fingerprint() {
			t.Fatalf("two trainings on the same corpus differ:\n%q\n%q", a.vocab, b.vocab)
		}
	}
}

func TestRoundTripAndSpecialIDs(t *testing.T) {
	tk, err := Train(sampleCorpus(), TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range SpecialTokens {
		if got, ok := tk.ID(s); !ok || got != int32(id) {
			t.Errorf("ID(%q) = %d, %v; want %d", s, got, ok, id)
		}
	}
	if PadID != 0 {
		t.Error("PAD must be 0: batches are zero-padded")
	}
	for _, s := range []string{
		"The quick brown fox jumps over the lazy dog.",
		"What digit is this? It is a seven.",
		"Is it EVEN? no, an ankle boot!",
		"unseen words like zebra spell out from pieces",
	} {
		ids := tk.Encode(s)
		for _, id := range ids {
			if id == UnkID {
				t.Errorf("%q encodes with [UNK]: %q", s, tk.Tokens(s))
			}
		}
		want := strings.ToLower(s)
		if got := tk.Decode(ids); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	}
	// Special ids are dropped by Decode.
	ids := append(append([]int32{BosID}, tk.Encode("the dog")...), EosID, PadID, PadID)
	if got := tk.Decode(ids); got != "the dog" {
		t.Errorf("Decode with specials = %q", got)
	}
	if got := tk.Normalize("Café  NAÏVE,ok"); got != "cafe naive , ok" {
		t.Errorf("Normalize = %q", got)
	}
}

func TestSaveLoadKeepsIDs(t *testing.T) {
	tk, err := Train(sampleCorpus(), TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tk.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fingerprint() != tk.Fingerprint() || back.VocabSize() != tk.VocabSize() {
		t.Fatal("loaded tokenizer differs from the saved one")
	}
	for _, s := range strings.Split(corpusText, "\n") {
		if a, b := tk.Encode(s), back.Encode(s); !reflect.DeepEqual(a, b) {
			t.Errorf("ids changed after save/load for %q: %v vs %v", s, a, b)
		}
	}
	batch := back.EncodeBatch(strings.Split(corpusText, "\n"))
	for i, s := range strings.Split(corpusText, "\n") {
		if !reflect.DeepEqual(batch[i], tk.Encode(s)) {
			t.Errorf("EncodeBatch[%d] differs from Encode", i)
		}
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"not json":      "{",
		"no model":      `{"model": {"type": "WordPiece"}}`,
		"wrong special": strings.Replace(string(tokenizerJSON(nil)), `"[PAD]": 0`, `"[XXX]": 0`, 1),
		// The library panics on this one (a type assertion on a JSON value).
		"vocab of the wrong type": `{"model": {"type": "WordPiece", "vocab": 3}}`,
	}
	for name, body := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "tokenizer") {
			t.Errorf("%s: want an error about the tokenizer, got %v", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file loaded")
	}
}

// sugarme v0.3.0 panics when lower-casing changes a character's UTF-8 length; such characters
// occur in the SpamAssassin mails. They must encode like any other text.
func TestLengthChangingCase(t *testing.T) {
	tk, err := Train(sampleCorpus(), TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"the \u023a dog", "the \u0130 dog", "THE \u2C6F DOG"} {
		ids := tk.Encode(s)
		if len(ids) != 3 || tk.Decode([]int32{ids[0], ids[2]}) != "the dog" {
			t.Errorf("Encode(%q) = %v (%q)", s, ids, tk.Tokens(s))
		}
		if n := tk.Normalize(s); !strings.HasPrefix(n, "the ") || !strings.HasSuffix(n, " dog") {
			t.Errorf("Normalize(%q) = %q", s, n)
		}
	}
}
