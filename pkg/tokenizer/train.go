package tokenizer

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// continuation marks a word piece that continues a word (WordPiece's "##").
const continuation = "##"

// maxWordChars: longer words are encoded as [UNK] (the WordPiece default).
const maxWordChars = 100

// TrainOptions configure Train. Zero values take the defaults.
type TrainOptions struct {
	// VocabSize is the total number of ids, special tokens included (default 4096).
	VocabSize int
	// MinFrequency is the fewest occurrences a pair of pieces needs to be merged (default 2).
	MinFrequency int
	// MaxAlphabet keeps only the most frequent characters (default 256); the others encode
	// as [UNK].
	MaxAlphabet int
}

func (o TrainOptions) withDefaults() TrainOptions {
	if o.VocabSize == 0 {
		o.VocabSize = 4096
	}
	if o.MinFrequency == 0 {
		o.MinFrequency = 2
	}
	if o.MaxAlphabet == 0 {
		o.MaxAlphabet = 256
	}
	return o
}

// Train learns a WordPiece vocabulary from texts, the way Hugging Face's WordPiece trainer does:
// start from the characters (word-initial "c" and continuing "##c"), then repeatedly merge the
// most frequent adjacent pair of pieces, until VocabSize ids exist or no pair occurs
// MinFrequency times. Ties go to the alphabetically first pair, so the same texts and options
// always give the same ids.
func Train(texts []string, opts TrainOptions) (*Tokenizer, error) {
	opts = opts.withDefaults()
	if opts.VocabSize < len(SpecialTokens)+2 {
		return nil, fmt.Errorf("train tokenizer: VocabSize %d is too small", opts.VocabSize)
	}
	base, err := FromJSON(tokenizerJSON(nil))
	if err != nil {
		return nil, fmt.Errorf("train tokenizer: %w", err)
	}
	counts := map[string]int{}
	for _, text := range texts {
		for _, w := range base.preTokens(text) {
			counts[w]++
		}
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("train tokenizer: the corpus has no words")
	}
	vocab := learn(counts, opts)
	return FromJSON(tokenizerJSON(vocab))
}

// learn returns the vocabulary (specials first) in id order.
func learn(counts map[string]int, opts TrainOptions) []string {
	// The alphabet: the MaxAlphabet most frequent characters.
	charFreq := map[rune]int{}
	for w, n := range counts {
		for _, r := range w {
			charFreq[r] += n
		}
	}
	chars := make([]rune, 0, len(charFreq))
	for r := range charFreq {
		chars = append(chars, r)
	}
	sort.Slice(chars, func(i, j int) bool {
		if charFreq[chars[i]] != charFreq[chars[j]] {
			return charFreq[chars[i]] > charFreq[chars[j]]
		}
		return chars[i] < chars[j]
	})
	if len(chars) > opts.MaxAlphabet {
		chars = chars[:opts.MaxAlphabet]
	}
	// Both forms of every character, so any spelling of known characters encodes.
	var alphabet []string
	kept := map[rune]bool{}
	for _, r := range chars {
		kept[r] = true
		alphabet = append(alphabet, string(r), continuation+string(r))
	}
	sort.Strings(alphabet)

	tokens := append(append([]string{}, SpecialTokens...), alphabet...)
	if len(tokens) > opts.VocabSize {
		tokens = tokens[:opts.VocabSize]
	}
	ids := map[string]int32{}
	for i, t := range tokens {
		ids[t] = int32(i)
	}

	// Words as piece ids, in a fixed order; words with characters outside the alphabet (they
	// would be [UNK]) or too long are left out.
	keys := make([]string, 0, len(counts))
	for w := range counts {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	type word struct {
		syms []int32
		n    int
	}
	var words []word
	for _, w := range keys {
		rs := []rune(w)
		if len(rs) < 2 || len(rs) > maxWordChars {
			continue
		}
		syms := make([]int32, 0, len(rs))
		ok := true
		for i, r := range rs {
			if !kept[r] {
				ok = false
				break
			}
			s := string(r)
			if i > 0 {
				s = continuation + s
			}
			id, found := ids[s]
			if !found {
				ok = false
				break
			}
			syms = append(syms, id)
		}
		if ok {
			words = append(words, word{syms, counts[w]})
		}
	}

	type pair [2]int32
	pairCount := map[pair]int{}
	where := map[pair][]int32{}
	for wi, w := range words {
		for i := 0; i+1 < len(w.syms); i++ {
			p := pair{w.syms[i], w.syms[i+1]}
			pairCount[p] += w.n
			where[p] = append(where[p], int32(wi))
		}
	}
	q := &pairHeap{tokens: &tokens}
	for p, n := range pairCount {
		q.items = append(q.items, pairItem{p[0], p[1], n})
	}
	heap.Init(q)

	seen := make([]int, len(words)) // merge number that last visited each word
	for merge := 1; len(tokens) < opts.VocabSize && q.Len() > 0; {
		top := heap.Pop(q).(pairItem)
		p := pair{top.a, top.b}
		if pairCount[p] != top.n || top.n == 0 {
			continue // stale entry
		}
		if top.n < opts.MinFrequency {
			break
		}
		newTok := tokens[top.a] + strings.TrimPrefix(tokens[top.b], continuation)
		c, exists := ids[newTok]
		if !exists {
			c = int32(len(tokens))
			tokens = append(tokens, newTok)
			ids[newTok] = c
		}
		changed := map[pair]bool{}
		for _, wi := range where[p] {
			if seen[wi] == merge {
				continue
			}
			seen[wi] = merge
			w := &words[wi]
			var out []int32
			for i := 0; i < len(w.syms); i++ {
				if i+1 < len(w.syms) && w.syms[i] == top.a && w.syms[i+1] == top.b {
					out = append(out, c)
					i++
				} else {
					out = append(out, w.syms[i])
				}
			}
			if len(out) == len(w.syms) {
				continue
			}
			for i := 0; i+1 < len(w.syms); i++ {
				o := pair{w.syms[i], w.syms[i+1]}
				pairCount[o] -= w.n
				changed[o] = true
			}
			for i := 0; i+1 < len(out); i++ {
				o := pair{out[i], out[i+1]}
				pairCount[o] += w.n
				changed[o] = true
				if out[i] == c || out[i+1] == c {
					where[o] = append(where[o], wi)
				}
			}
			w.syms = out
		}
		delete(where, p)
		for o := range changed {
			if n := pairCount[o]; n > 0 {
				heap.Push(q, pairItem{o[0], o[1], n})
			} else {
				delete(pairCount, o)
			}
		}
		merge++
	}
	return tokens
}

type pairItem struct {
	a, b int32
	n    int
}

// pairHeap pops the most frequent pair; ties go to the alphabetically first (a, b), which makes
// training independent of map iteration order.
type pairHeap struct {
	items  []pairItem
	tokens *[]string
}

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(i, j int) bool {
	x, y := h.items[i], h.items[j]
	if x.n != y.n {
		return x.n > y.n
	}
	t := *h.tokens
	if t[x.a] != t[y.a] {
		return t[x.a] < t[y.a]
	}
	return t[x.b] < t[y.b]
}
func (h *pairHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *pairHeap) Push(x any)    { h.items = append(h.items, x.(pairItem)) }
func (h *pairHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

// tokenizerJSON writes a Hugging Face tokenizer.json for a WordPiece vocabulary in id order
// (nil: the special tokens only). The output is canonical: the same vocabulary always gives
// the same bytes, so its hash identifies the vocabulary.
func tokenizerJSON(vocab []string) []byte {
	if vocab == nil {
		vocab = SpecialTokens
	}
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		Lstrip     bool   `json:"lstrip"`
		Rstrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var specials []added
	for i, s := range SpecialTokens {
		specials = append(specials, added{ID: i, Content: s, Special: true})
	}
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // only plain values are marshalled here
		}
		return string(b)
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	b.WriteString(`  "version": "1.0",` + "\n")
	b.WriteString(`  "truncation": null,` + "\n")
	b.WriteString(`  "padding": null,` + "\n")
	b.WriteString(`  "added_tokens": ` + js(specials) + ",\n")
	b.WriteString(`  "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": true, "lowercase": true}]},` + "\n")
	b.WriteString(`  "pre_tokenizer": {"type": "BertPreTokenizer"},` + "\n")
	b.WriteString(`  "post_processor": null,` + "\n")
	b.WriteString(`  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": false},` + "\n")
	b.WriteString(`  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": ` +
		fmt.Sprint(maxWordChars) + `, "vocab": {`)
	for i, tok := range vocab {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    %s: %d", js(tok), i)
	}
	b.WriteString("\n  }}\n}\n")
	return b.Bytes()
}
