package metrics

import (
	"fmt"
	"math"
)

// BLEU4 is corpus-level BLEU with n-grams up to 4, uniform weights and the brevity penalty,
// using for each candidate the reference length closest to its own (ties to the shorter), as
// coco-caption does. Clipped n-gram matches and lengths are summed over the corpus before the
// precisions are taken. There is no smoothing: a corpus without any matching 4-gram scores 0,
// which one- and two-word captions always do; prefer CIDErD for them.
func BLEU4(candidates []string, references [][]string) (float64, error) {
	return BLEU(candidates, references, 4)
}

// BLEU is BLEU4 with n-grams up to maxN.
func BLEU(candidates []string, references [][]string, maxN int) (float64, error) {
	if len(candidates) != len(references) {
		return 0, fmt.Errorf("BLEU: %d candidates but %d reference sets", len(candidates), len(references))
	}
	match := make([]float64, maxN)
	total := make([]float64, maxN)
	var candLen, refLen float64
	for i, c := range candidates {
		cw := Words(c)
		if len(references[i]) == 0 {
			return 0, fmt.Errorf("BLEU: candidate %d has no reference", i)
		}
		maxRef := make([]map[string]int, maxN)
		for n := range maxRef {
			maxRef[n] = map[string]int{}
		}
		best := -1
		for _, r := range references[i] {
			rw := Words(r)
			d, bd := abs(len(rw)-len(cw)), abs(best-len(cw))
			if best < 0 || d < bd || (d == bd && len(rw) < best) {
				best = len(rw)
			}
			for n, counts := range ngramCounts(rw, maxN) {
				for g, k := range counts {
					maxRef[n][g] = max(maxRef[n][g], k)
				}
			}
		}
		candLen += float64(len(cw))
		refLen += float64(best)
		for n, counts := range ngramCounts(cw, maxN) {
			for g, k := range counts {
				match[n] += float64(min(k, maxRef[n][g]))
				total[n] += float64(k)
			}
		}
	}
	logSum := 0.0
	for n := range maxN {
		if match[n] == 0 || total[n] == 0 {
			return 0, nil
		}
		logSum += math.Log(match[n] / total[n])
	}
	bp := 1.0
	if candLen < refLen {
		bp = math.Exp(1 - refLen/candLen)
	}
	return bp * math.Exp(logSum/float64(maxN)), nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
