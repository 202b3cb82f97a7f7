// Package tokenizer is peftlab's text tokenizer: a WordPiece vocabulary of a few thousand
// entries, learned here on the project's own corpus, stored as a Hugging Face tokenizer.json and
// run by github.com/sugarme/tokenizer (NFD then the BERT normalizer: clean text, lower case,
// strip accents; BERT pre-tokenizer: split on white space and punctuation; greedy longest-match WordPiece).
//
// Why learn the vocabulary here: the pretrained vocabularies (BERT 30,522, GPT-2 50,257)
// would make the embedding table dominate a tiny model. Why not with sugarme's own trainer:
// in v0.3.0 it breaks ties by wall-clock time (non-deterministic), drops the special tokens,
// mis-counts pairs when the corpus has more than 10,000 distinct words, and cannot save
// (Tokenizer.Save is a stub). So Train learns the merges itself (deterministically, ties broken
// by token text), writes the standard tokenizer.json, and every tokenizer, freshly trained or
// loaded, is built by the library's own loader from that JSON: there is one code path.
//
// Special tokens have fixed ids (PAD = 0, so zero-padded batches need no mapping).
package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unicode"

	"github.com/peftlab/peftlab/pkg/internal/catch"
	hf "github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// Special token ids, the same in every peftlab vocabulary.
const (
	PadID  int32 = 0 // padding; batches are zero-padded
	UnkID  int32 = 1 // unknown character
	BosID  int32 = 2 // begin of sequence
	EosID  int32 = 3 // end of sequence
	SepID  int32 = 4 // separates a prompt from its answer, or two segments
	MaskID int32 = 5 // masked-LM target
	ClsID  int32 = 6 // classification summary position
	ImgID  int32 = 7 // stands for an image in a multimodal sequence
)

// SpecialTokens are the special tokens' strings, indexed by id.
var SpecialTokens = []string{"[PAD]", "[UNK]", "[BOS]", "[EOS]", "[SEP]", "[MASK]", "[CLS]", "[IMG]"}

// Tokenizer encodes text to token ids and back. It is safe for concurrent use once built.
type Tokenizer struct {
	// retry serializes second attempts: sugarme v0.3.0 has been seen to panic
	// ("slice bounds out of range") once in a long parallel EncodeBatch and not
	// on the same text again, so a failed encoding is retried alone before any
	// fallback changes the text.
	retry  sync.Mutex
	hf     *hf.Tokenizer
	json   []byte // the canonical tokenizer.json it was built from
	vocab  []string
	single map[rune]bool // characters the vocabulary can spell on their own
}

// FromJSON builds a tokenizer from tokenizer.json content, checking that it is a peftlab
// vocabulary (the special tokens at their fixed ids).
func FromJSON(data []byte) (*Tokenizer, error) {
	var tk *hf.Tokenizer
	// The library panics on some malformed inputs (type assertions on JSON values).
	err := catch.Error(func() error {
		var err error
		tk, err = pretrained.FromReader(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json is not a valid tokenizer: %w", err)
	}
	n := tk.GetVocabSize(true)
	vocab := make([]string, n)
	for tok, id := range tk.GetVocab(true) {
		if id < 0 || id >= n || vocab[id] != "" {
			return nil, fmt.Errorf("tokenizer.json: token ids are not 0..%d without gaps", n-1)
		}
		vocab[id] = tok
	}
	for id, s := range SpecialTokens {
		if vocab[id] != s {
			return nil, fmt.Errorf("tokenizer.json: id %d is %q, want the special token %q (not a peftlab vocabulary)", id, vocab[id], s)
		}
	}
	t := &Tokenizer{hf: tk, json: bytes.Clone(data), vocab: vocab, single: map[rune]bool{}}
	for _, tok := range vocab {
		if r := []rune(tok); len(r) == 1 {
			t.single[r[0]] = true
		}
	}
	return t, nil
}

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := FromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Save writes the tokenizer.json atomically (temporary file, then rename).
func (t *Tokenizer) Save(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("save tokenizer: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(t.json); err != nil {
		f.Close()
		return fmt.Errorf("save tokenizer: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save tokenizer: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// JSON returns the tokenizer.json content.
func (t *Tokenizer) JSON() []byte { return bytes.Clone(t.json) }

// Fingerprint identifies the vocabulary: the hex SHA-256 of its tokenizer.json. A checkpoint
// records it so that loading a model with another tokenizer fails clearly.
func (t *Tokenizer) Fingerprint() string {
	s := sha256.Sum256(t.json)
	return hex.EncodeToString(s[:])
}

// VocabSize is the number of token ids, special tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// Token returns the string of an id ("" when out of range).
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.vocab) {
		return ""
	}
	return t.vocab[id]
}

// ID returns the id of a token string.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.hf.TokenToId(token)
	return int32(id), ok
}

// Encode returns the token ids of text, without special tokens (add BOS/EOS/SEP yourself).
// Text the library cannot encode even as ASCII is encoded word by word, a word that still
// fails becoming UNK, so one bad character never turns a whole text into a single UNK.
func (t *Tokenizer) Encode(text string) []int32 {
	enc, err := t.encode(text)
	if err != nil {
		var ids []int32
		for _, w := range strings.Fields(text) {
			if e, err := t.encode(w); err == nil {
				for _, id := range e.Ids {
					ids = append(ids, int32(id))
				}
			} else {
				ids = append(ids, UnkID)
			}
		}
		return ids
	}
	ids := make([]int32, len(enc.Ids))
	for i, id := range enc.Ids {
		ids[i] = int32(id)
	}
	return ids
}

// EncodeBatch encodes many texts, spreading the work over the CPU cores.
func (t *Tokenizer) EncodeBatch(texts []string) [][]int32 {
	out := make([][]int32, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = t.Encode(texts[i])
			}
		}()
	}
	for i := range texts {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// Tokens returns the token strings of text (for display and debugging).
func (t *Tokenizer) Tokens(text string) []string {
	enc, err := t.encode(text)
	if err != nil {
		return []string{SpecialTokens[UnkID]}
	}
	return enc.Tokens
}

func (t *Tokenizer) encode(text string) (*hf.Encoding, error) {
	enc, err := t.tryEncode(prepare(text))
	if err != nil {
		t.retry.Lock()
		enc, err = t.tryEncode(prepare(text))
		t.retry.Unlock()
	}
	if err != nil {
		// Last resort for text the library cannot align: drop the non-ASCII characters.
		enc, err = t.tryEncode(asciiOnly(prepare(text)))
	}
	return enc, err
}

func (t *Tokenizer) tryEncode(text string) (enc *hf.Encoding, err error) {
	err = catch.Error(func() error {
		enc, err = t.hf.EncodeSingle(text, false)
		return err
	})
	return enc, err
}

// prepare lower-cases text before the library sees it. The normalizer lower-cases too (so the
// result is the same), but sugarme v0.3.0 panics when lower-casing changes a character's
// UTF-8 length (e.g. U+023A), which happens in real mail; lower-cased input avoids it.
func prepare(text string) string {
	return strings.ToLower(strings.ToValidUTF8(text, " "))
}

func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII {
			return ' '
		}
		return r
	}, s)
}

// Decode turns ids back into text: special tokens are dropped, word pieces joined, and the
// space the pre-tokenizer put before punctuation removed. Text round-trips up to
// normalization (lower case, no accents, single spaces).
func (t *Tokenizer) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.vocab) || int(id) < len(SpecialTokens) {
			continue
		}
		tok := t.vocab[id]
		switch {
		case strings.HasPrefix(tok, continuation):
			b.WriteString(tok[len(continuation):])
		case b.Len() == 0 || attachesLeft(tok):
			b.WriteString(tok)
		default:
			b.WriteByte(' ')
			b.WriteString(tok)
		}
	}
	return b.String()
}

// attachesLeft reports whether a token is punctuation written without a space before it.
func attachesLeft(tok string) bool {
	switch tok {
	case ".", ",", "!", "?", ";", ":", ")", "]", "}", "'", "%":
		return true
	}
	return false
}

// Normalize returns text as the tokenizer sees it (lower case, accents stripped, single spaces
// between pre-tokens): the form Decode(Encode(text)) gives back when no character is unknown.
func (t *Tokenizer) Normalize(text string) string {
	return strings.Join(t.preTokens(text), " ")
}

func (t *Tokenizer) preTokens(text string) []string {
	words, ok := t.tryPreTokens(prepare(text))
	if !ok { // the same fallback as encode
		words, _ = t.tryPreTokens(asciiOnly(prepare(text)))
	}
	return words
}

func (t *Tokenizer) tryPreTokens(text string) (words []string, ok bool) {
	err := catch.Error(func() error {
		words = preTokenize(t.hf, text)
		return nil
	})
	return words, err == nil
}
