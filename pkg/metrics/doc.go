// Package metrics scores predictions: accuracy for classification, and the captioning metrics
// BLEU-4 (Papineni et al. 2002) and CIDEr-D (Vedantam et al. 2015), computed as the
// coco-caption toolkit does, on captions tokenized by Words.
package metrics

import (
	"strings"
	"unicode"
)

// Words lower-cases s and splits it into words of letters and digits, dropping punctuation
// (as coco-caption's PTB tokenizer step does): "A T-shirt!" -> [a t shirt]. Predictions and
// references go through it, so the tokenizer's spacing around punctuation does not matter.
func Words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Accuracy is the fraction of predictions equal to their labels (0 for no predictions).
func Accuracy(pred, labels []int) float64 {
	if len(pred) == 0 || len(pred) != len(labels) {
		return 0
	}
	ok := 0
	for i := range pred {
		if pred[i] == labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(pred))
}

// ExactMatch is the fraction of predicted texts whose Words equal those of the target.
func ExactMatch(pred, target []string) float64 {
	if len(pred) == 0 || len(pred) != len(target) {
		return 0
	}
	ok := 0
	for i := range pred {
		if strings.Join(Words(pred[i]), " ") == strings.Join(Words(target[i]), " ") {
			ok++
		}
	}
	return float64(ok) / float64(len(pred))
}
