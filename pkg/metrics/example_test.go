package metrics_test

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/metrics"
)

func ExampleCIDErD() {
	// Score a whole evaluation split at once: document frequencies come from its references.
	// BLEU-2 by hand: unigram precision 4/8, bigram 2/5, no brevity penalty: sqrt(0.2).
	predictions := []string{"a grinning face", "a red apple", "a cat"}
	references := [][]string{
		{"grinning face", "grinning"},
		{"red apple", "apple"},
		{"dog face", "dog"},
	}
	score, _ := metrics.CIDErD(predictions, references)
	bleu, _ := metrics.BLEU(predictions, references, 2)
	fmt.Printf("CIDEr-D %.3f, BLEU-2 %.3f\n", score, bleu)
	// Output: CIDEr-D 1.714, BLEU-2 0.447
}
