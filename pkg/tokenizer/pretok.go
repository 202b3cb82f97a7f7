package tokenizer

import (
	hf "github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/normalizer"
)

// preTokenize normalizes and pre-tokenizes text with the tokenizer's own components, so that
// training sees exactly the words encoding will see.
func preTokenize(tk *hf.Tokenizer, text string) []string {
	ns := normalizer.NewNormalizedFrom(text)
	if n := tk.GetNormalizer(); n != nil {
		var err error
		if ns, err = n.Normalize(ns); err != nil {
			return nil
		}
	}
	pt := hf.NewPreTokenizedStringFromNS(ns)
	if p := tk.GetPreTokenizer(); p != nil {
		var err error
		if pt, err = p.PreTokenize(pt); err != nil {
			return nil
		}
	}
	splits := pt.GetSplits(normalizer.NormalizedTarget, hf.Byte)
	words := make([]string, 0, len(splits))
	for _, s := range splits {
		if s.Value != "" {
			words = append(words, s.Value)
		}
	}
	return words
}
