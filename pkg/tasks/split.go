package tasks

import "math/rand/v2"

// permutation is a Fisher-Yates shuffle driven by PCG, whose output sequence Go keeps stable
// across releases; it is written out here (rather than rand.Perm) so that the splits cannot
// change with the Go version.
func permutation(n int, seed uint64) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r := rand.NewPCG(seed, 0x9e3779b97f4a7c15)
	for i := n - 1; i > 0; i-- {
		j := int(r.Uint64() % uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// Seeds of the splits, one per data source, fixed forever: changing one changes every result
// measured on that source.
const (
	seedMNIST    = 1001
	seedFashion  = 1002
	seedIMDB     = 1003
	seedSpam     = 1004
	seedFortunes = 1005
	seedEmoji    = 1006
)

// threeWay splits n items (shuffled with seed) into test, validation and train, the first
// two of the given sizes. Returned are index lists.
func threeWay(n int, seed uint64, nTest, nVal int) (train, val, test []int) {
	p := permutation(n, seed)
	return p[nTest+nVal:], p[nTest : nTest+nVal], p[:nTest]
}
