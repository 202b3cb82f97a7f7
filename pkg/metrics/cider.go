package metrics

import (
	"fmt"
	"math"
)

// CIDErD is the CIDEr-D consensus score of candidate captions against their reference sets,
// following coco-caption's implementation: for n = 1..4, captions become TF-IDF vectors of
// their n-grams, with document frequencies counted over the reference sets of this corpus
// (idf = log(#images) - log(max(1, df))); each candidate is compared with each of its
// references by the cosine of the vectors, where the candidate's counts are clipped at the
// reference's (the "-D" clipping) and a Gaussian penalty exp(-(len_c-len_r)^2 / (2*6^2))
// discounts length differences. The per-image score is 10 x the mean over n and references;
// the result is the mean over images. Scores run from 0 to about 10 (identical to every
// reference and rare n-grams); 1 is a decent captioner on COCO.
//
// Because document frequencies come from the corpus, the score of one caption depends on the
// others: always score a whole evaluation split at once.
func CIDErD(candidates []string, references [][]string) (float64, error) {
	scores, err := CIDErDScores(candidates, references)
	if err != nil {
		return 0, err
	}
	if len(scores) == 0 {
		return 0, nil
	}
	sum := 0.0
	for _, s := range scores {
		sum += s
	}
	return sum / float64(len(scores)), nil
}

const (
	ciderN     = 4
	ciderSigma = 6.0
)

// CIDErDScores returns the CIDEr-D score of each candidate (see CIDErD).
func CIDErDScores(candidates []string, references [][]string) ([]float64, error) {
	if len(candidates) != len(references) {
		return nil, fmt.Errorf("CIDEr-D: %d candidates but %d reference sets", len(candidates), len(references))
	}
	// Document frequency: in how many images' reference sets each n-gram occurs.
	df := map[string]float64{}
	refCounts := make([][][]map[string]int, len(references))
	refLens := make([][]int, len(references))
	for i, refs := range references {
		if len(refs) == 0 {
			return nil, fmt.Errorf("CIDEr-D: candidate %d has no reference", i)
		}
		seen := map[string]bool{}
		for _, r := range refs {
			w := Words(r)
			c := ngramCounts(w, ciderN)
			refCounts[i] = append(refCounts[i], c)
			refLens[i] = append(refLens[i], len(w))
			for _, m := range c {
				for g := range m {
					seen[g] = true
				}
			}
		}
		for g := range seen {
			df[g]++
		}
	}
	logImages := math.Log(float64(len(references)))
	vec := func(counts []map[string]int) ([]map[string]float64, []float64) {
		v := make([]map[string]float64, ciderN)
		norms := make([]float64, ciderN)
		for n, m := range counts {
			v[n] = map[string]float64{}
			for g, tf := range m {
				w := float64(tf) * (logImages - math.Log(math.Max(1, df[g])))
				v[n][g] = w
				norms[n] += w * w
			}
			norms[n] = math.Sqrt(norms[n])
		}
		return v, norms
	}
	scores := make([]float64, len(candidates))
	for i, c := range candidates {
		cw := Words(c)
		cv, cn := vec(ngramCounts(cw, ciderN))
		total := 0.0
		for j, rc := range refCounts[i] {
			rv, rn := vec(rc)
			delta := float64(len(cw) - refLens[i][j])
			penalty := math.Exp(-delta * delta / (2 * ciderSigma * ciderSigma))
			for n := range ciderN {
				dot := 0.0
				for g, x := range cv[n] {
					if y, ok := rv[n][g]; ok {
						dot += math.Min(x, y) * y
					}
				}
				if cn[n] != 0 && rn[n] != 0 {
					dot /= cn[n] * rn[n]
				}
				total += dot * penalty
			}
		}
		scores[i] = 10 * total / float64(ciderN) / float64(len(refCounts[i]))
	}
	return scores, nil
}
