package metrics

import (
	"math"
	"reflect"
	"testing"
)

func near(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.12f, want %.12f", name, got, want)
	}
}

func TestWords(t *testing.T) {
	if got := Words("A T-shirt, and an ANKLE boot!"); !reflect.DeepEqual(got, []string{"a", "t", "shirt", "and", "an", "ankle", "boot"}) {
		t.Errorf("Words = %q", got)
	}
}

func TestBLEUHandComputed(t *testing.T) {
	b, _ := BLEU4([]string{"the cat sat on the mat"}, [][]string{{"the cat sat on the mat"}})
	near(t, "identical", b, 1)

	// Precisions 5/5, 3/4, 2/3, 1/2; brevity penalty exp(1 - 6/5).
	b, _ = BLEU4([]string{"the cat sat on mat"}, [][]string{{"the cat sat on the mat"}})
	near(t, "short candidate", b, 0.5789300674674098) // = exp(-0.2) * (1 * 3/4 * 2/3 * 1/2)^(1/4)

	// Clipping: "the" counts at most as often as in the reference.
	b, _ = BLEU([]string{"the the the the"}, [][]string{{"the cat"}}, 1)
	near(t, "clipped unigram", b, 0.25)

	// Closest reference length: 4 (not 7) for a 5-word candidate, so no brevity penalty;
	// unigram matches are clipped by the maximum count over references.
	b, _ = BLEU([]string{"a b c d e"}, [][]string{{"a b c d", "a b c d e f g"}}, 1)
	near(t, "closest ref length", b, 1)

	// Corpus level: counts are summed before dividing. 1-grams (2+1)/(2+2); lengths 4 vs 4.
	b, _ = BLEU([]string{"a b", "c x"}, [][]string{{"a b"}, {"c d"}}, 1)
	near(t, "corpus sums", b, 0.75)

	// No 4-gram match anywhere: 0.
	b, _ = BLEU4([]string{"a cat"}, [][]string{{"a cat"}})
	near(t, "no 4-grams", b, 0)

	if _, err := BLEU4([]string{"a"}, nil); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestCIDErDHandComputed(t *testing.T) {
	// Two images. df: "a" 2, "cat" 1, "dog" 1, "a cat" 1, "a dog" 1; idf = ln 2 - ln df.
	// "a" has idf 0. Candidate 1 equals its reference: cosine 1 for n = 1, 2, and 0 for n = 3, 4
	// (no such n-grams) -> 10 * (1+1+0+0)/4 = 5. Candidate 2 shares only "a" (weight 0) -> 0.
	refs := [][]string{{"a cat"}, {"a dog"}}
	s, err := CIDErDScores([]string{"a cat", "a cat"}, refs)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "perfect", s[0], 5)
	near(t, "wrong", s[1], 0)
	mean, _ := CIDErD([]string{"a cat", "a cat"}, refs)
	near(t, "mean", mean, 2.5)

	// Clipping and length penalty: "a cat cat" against "a cat".
	// n=1: cand {a:0, cat:2 ln2}, ref {a:0, cat: ln2}: min(2ln2, ln2)*ln2 / (2ln2 * ln2) = 1/2.
	// n=2: cand {a cat: ln2, cat cat: ln2}, ref {a cat: ln2}: ln2^2 / (sqrt2 ln2 * ln2) = 1/sqrt2.
	// n=3: the reference has no trigram: 0. Penalty exp(-1/72) for one word more.
	s, _ = CIDErDScores([]string{"a cat cat", "a dog"}, refs)
	near(t, "clipped+penalized", s[0], 2.9761432456900363) // 2.5 * (0.5 + 1/sqrt2) * exp(-1/72)
	near(t, "other image", s[1], 5)

	// Several references: the score is the mean over them.
	s, _ = CIDErDScores([]string{"a cat", "a dog"}, [][]string{{"a cat", "a dog"}, {"a dog"}})
	// Image 1 refs {a cat, a dog} -> df: a 2, cat 1, a cat 1, dog 2, a dog 2.
	// vs "a cat": n=1 cand {a:0, cat:ln2} ref same -> 1; n=2 {a cat: ln2} -> 1 => 2.
	// vs "a dog": "dog" and "a dog" have idf 0, so the reference vectors are all zero -> 0.
	// Score 10 * (2 + 0) / 4 / 2 = 2.5.
	near(t, "two references", s[0], 2.5)

	if _, err := CIDErD([]string{"a"}, [][]string{{}}); err == nil {
		t.Error("empty reference set accepted")
	}
}

func TestAccuracyAndExactMatch(t *testing.T) {
	near(t, "accuracy", Accuracy([]int{1, 2, 3, 4}, []int{1, 2, 0, 4}), 0.75)
	near(t, "exact match", ExactMatch([]string{"t - shirt", "Ankle boot.", "bag"}, []string{"t-shirt", "ankle boot", "coat"}), 2.0/3)
}
