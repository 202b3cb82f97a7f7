package metrics

import "strings"

// ngramCounts counts the n-grams of words for n = 1..maxN; keys join words with a space.
func ngramCounts(words []string, maxN int) []map[string]int {
	out := make([]map[string]int, maxN)
	for n := 1; n <= maxN; n++ {
		m := map[string]int{}
		for i := 0; i+n <= len(words); i++ {
			m[strings.Join(words[i:i+n], " ")]++
		}
		out[n-1] = m
	}
	return out
}
