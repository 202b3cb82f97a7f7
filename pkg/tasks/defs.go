package tasks

import (
	"fmt"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/dataset"
)

type taskDef struct {
	name  string
	about string
	sets  []string
	load  func(Options) (*Task, error)
}

var defs = []taskDef{
	{"imdb", "IMDB movie review sentiment: negative or positive (50k reviews; 40k/5k/5k)", []string{"imdb"}, loadIMDB},
	{"spam", "SpamAssassin mail: ham or spam (6,046 mails; 80/10/10)", []string{"spam"}, loadSpam},
	{"fortune-topic", "fortune quote topic among 8 (computers, food, law, love, politics, science, sports, work)", []string{"fortunes"}, loadFortunes},

	{"mnist-digit", "VQA on MNIST: what digit is this? (zero..nine)", []string{"mnist"}, mnistTask(digitQuestion)},
	{"mnist-parity", "VQA on MNIST: is this digit even or odd?", []string{"mnist"}, mnistTask(parityQuestion)},
	{"mnist-large", "VQA on MNIST: is this digit greater than four? (yes/no)", []string{"mnist"}, mnistTask(largeQuestion)},
	{"fashion-item", "VQA on Fashion-MNIST: what piece of clothing is this? (10 classes)", []string{"fashion-mnist"}, fashionTask(itemQuestion)},
	{"fashion-footwear", "VQA on Fashion-MNIST: is this footwear? (yes/no)", []string{"fashion-mnist"}, fashionTask(footwearQuestion)},
	{"emoji-category", "VQA on Noto emoji: which emoji category is this? (9 categories)", []string{"emoji"}, emojiTask(categoryQuestion)},

	{"emoji-caption", "captioning Noto emoji with their Unicode names (CIDEr-D)", []string{"emoji"}, emojiTask(emojiCaption)},
	{"fashion-caption", "captioning Fashion-MNIST with clothing names (CIDEr-D)", []string{"fashion-mnist"}, fashionTask(fashionCaption)},
	{"mnist-caption", "captioning MNIST: a handwritten seven (CIDEr-D)", []string{"mnist"}, mnistTask(mnistCaption)},
}

// ---- text tasks

func loadIMDB(o Options) (*Task, error) {
	reviews, err := cached("imdb", dataset.IMDB)
	if err != nil {
		return nil, err
	}
	t := &Task{Kind: Classification, Classes: []string{"negative", "positive"}, Metric: MetricAccuracy}
	mk := func(idx []int) []Example {
		out := make([]Example, len(idx))
		for k, i := range idx {
			label := 0
			if reviews[i].Positive {
				label = 1
			}
			out[k] = classExample("is this movie review positive or negative? "+cleanReview(reviews[i].Text), t.Classes, label)
		}
		return out
	}
	train, val, test := threeWay(len(reviews), seedIMDB, 5000, 5000)
	t.Train, t.Validation, t.Test = mk(o.trainCap(train)), mk(o.evalCap(val)), mk(o.evalCap(test))
	return t, nil
}

func loadSpam(o Options) (*Task, error) {
	mails, err := cached("spam", dataset.SpamAssassin)
	if err != nil {
		return nil, err
	}
	t := &Task{Kind: Classification, Classes: []string{"ham", "spam"}, Metric: MetricAccuracy}
	mk := func(idx []int) []Example {
		out := make([]Example, len(idx))
		for k, i := range idx {
			label := 0
			if mails[i].Spam {
				label = 1
			}
			out[k] = classExample("is this email spam or ham? "+mailText(mails[i]), t.Classes, label)
		}
		return out
	}
	tenth := len(mails) / 10
	train, val, test := threeWay(len(mails), seedSpam, tenth, tenth)
	t.Train, t.Validation, t.Test = mk(o.trainCap(train)), mk(o.evalCap(val)), mk(o.evalCap(test))
	return t, nil
}

var fortuneTopics = []string{"computers", "food", "law", "love", "politics", "science", "sports", "work"}

func loadFortunes(o Options) (*Task, error) {
	all, err := cached("fortunes", dataset.Fortunes)
	if err != nil {
		return nil, err
	}
	var quotes []dataset.Fortune
	for _, q := range all {
		if slices.Contains(fortuneTopics, q.Category) {
			quotes = append(quotes, q)
		}
	}
	t := &Task{Kind: Classification, Classes: fortuneTopics, Metric: MetricAccuracy}
	mk := func(idx []int) []Example {
		out := make([]Example, len(idx))
		for k, i := range idx {
			text := strings.Join(strings.Fields(quotes[i].Text), " ")
			out[k] = classExample("what is the topic of this quote? "+text, t.Classes, slices.Index(t.Classes, quotes[i].Category))
		}
		return out
	}
	tenth := len(quotes) / 10
	train, val, test := threeWay(len(quotes), seedFortunes, tenth, tenth)
	t.Train, t.Validation, t.Test = mk(o.trainCap(train)), mk(o.evalCap(val)), mk(o.evalCap(test))
	return t, nil
}

func classExample(prompt string, classes []string, label int) Example {
	return Example{Prompt: prompt, Target: classes[label], References: []string{classes[label]}, Label: label}
}

// ---- image tasks

// question turns a source class index into an example of a task.
type question struct {
	prompt  string
	classes []string                 // nil for captioning
	answer  func(class int) int      // class index of the answer (classification)
	caption func(class int) []string // references (captioning)
	keep    func(class int) bool     // nil: every image
}

var digitQuestion = question{prompt: "what digit is this?", classes: dataset.DigitNames, answer: func(c int) int { return c }}
var parityQuestion = question{prompt: "is this digit even or odd?", classes: []string{"even", "odd"}, answer: func(c int) int { return c % 2 }}
var largeQuestion = question{prompt: "is this digit greater than four?", classes: []string{"no", "yes"},
	answer: func(c int) int {
		if c > 4 {
			return 1
		}
		return 0
	}}
var mnistCaption = question{prompt: "describe the image.", caption: func(c int) []string {
	d := dataset.DigitNames[c]
	return []string{"a handwritten " + d, "the digit " + d, "a handwritten digit " + d}
}}

var itemQuestion = question{prompt: "what piece of clothing is this?", classes: dataset.FashionNames, answer: func(c int) int { return c }}
var footwearQuestion = question{prompt: "is this footwear?", classes: []string{"no", "yes"},
	answer: func(c int) int {
		if c == 5 || c == 7 || c == 9 { // sandal, sneaker, ankle boot
			return 1
		}
		return 0
	}}

// fashionCaptions are reference captions per Fashion-MNIST class (the first is the target).
var fashionCaptions = [][]string{
	{"a t-shirt", "a top", "a short sleeved t-shirt"},
	{"a pair of trousers", "trousers", "pants"},
	{"a pullover", "a sweater", "a long sleeved pullover"},
	{"a dress", "a woman's dress"},
	{"a coat", "a jacket", "a long sleeved coat"},
	{"a sandal", "an open shoe", "a summer sandal"},
	{"a shirt", "a button shirt", "a long sleeved shirt"},
	{"a sneaker", "a running shoe", "a sports shoe"},
	{"a bag", "a handbag", "a purse"},
	{"an ankle boot", "a boot", "a short boot"},
}
var fashionCaption = question{prompt: "describe the image.", caption: func(c int) []string { return fashionCaptions[c] }}

func grayTask(set string, load func(dataset.Split) (*dataset.Images, error), seed uint64, q question) func(Options) (*Task, error) {
	return func(o Options) (*Task, error) {
		trainIm, err := cached(set+"/train", func() (*dataset.Images, error) { return load(dataset.Train) })
		if err != nil {
			return nil, err
		}
		testIm, err := cached(set+"/test", func() (*dataset.Images, error) { return load(dataset.Test) })
		if err != nil {
			return nil, err
		}
		t := newImageTask(q, o)
		trainSrc := &graySource{im: trainIm, size: o.ImageSize, ch: o.Channels}
		testSrc := &graySource{im: testIm, size: o.ImageSize, ch: o.Channels}
		mk := func(src *graySource, idx []int) []Example {
			out := make([]Example, len(idx))
			for k, i := range idx {
				out[k] = q.example(int(src.im.Labels[i]), &imageRef{src: src, i: i})
			}
			return out
		}
		perm := permutation(trainIm.N, seed)
		t.Validation, t.Train = mk(trainSrc, o.evalCap(perm[:5000])), mk(trainSrc, o.trainCap(perm[5000:]))
		t.Test = mk(testSrc, o.evalCap(permutation(testIm.N, seed+1)))
		return t, nil
	}
}

func mnistTask(q question) func(Options) (*Task, error) {
	return grayTask("mnist", dataset.MNIST, seedMNIST, q)
}

func fashionTask(q question) func(Options) (*Task, error) {
	return grayTask("fashion-mnist", dataset.FashionMNIST, seedFashion, q)
}

func newImageTask(q question, o Options) *Task {
	t := &Task{ImageSize: o.ImageSize, Channels: o.Channels}
	if q.caption != nil {
		t.Kind, t.Metric = Captioning, MetricCIDErD
	} else {
		t.Kind, t.Metric, t.Classes = Classification, MetricAccuracy, q.classes
	}
	return t
}

func (q question) example(class int, img *imageRef) Example {
	if q.caption != nil {
		refs := q.caption(class)
		return Example{Prompt: q.prompt, Target: refs[0], References: refs, Label: -1, img: img}
	}
	e := classExample(q.prompt, q.classes, q.answer(class))
	e.img = img
	return e
}

// ---- emoji

// emojiCategories are the answers of emoji-category, in dataset.EmojiCategories order
// without "Component" (5 skin-tone and hair swatches).
var emojiCategories = []string{"smileys and emotion", "people and body", "animals and nature", "food and drink",
	"travel and places", "activities", "objects", "symbols", "flags"}

func emojiCategoryIndex(c string) int {
	return slices.Index(emojiCategories, strings.ToLower(strings.ReplaceAll(c, "&", "and")))
}

var categoryQuestion = question{prompt: "which emoji category is this?", classes: emojiCategories, answer: func(c int) int { return c }}

// emojiCaption is marked by caption != nil; the references come from the emoji's names.
var emojiCaption = question{prompt: "describe the image.", caption: func(int) []string { return nil }}

func emojiTask(q question) func(Options) (*Task, error) {
	return func(o Options) (*Task, error) {
		all, err := cached("emoji", dataset.Emojis)
		if err != nil {
			return nil, err
		}
		var emojis []dataset.Emoji
		for _, e := range all {
			if emojiCategoryIndex(e.Category) >= 0 {
				emojis = append(emojis, e)
			}
		}
		if len(emojis) == 0 {
			return nil, fmt.Errorf("no emoji in the known categories")
		}
		src := &emojiSource{emojis: emojis, size: o.ImageSize, ch: o.Channels}
		t := newImageTask(q, o)
		mk := func(idx []int) []Example {
			out := make([]Example, len(idx))
			for k, i := range idx {
				img := &imageRef{src: src, i: i}
				if q.caption != nil {
					refs := emojiReferences(emojis[i])
					out[k] = Example{Prompt: q.prompt, Target: refs[0], References: refs, Label: -1, img: img}
				} else {
					out[k] = q.example(emojiCategoryIndex(emojis[i].Category), img)
				}
			}
			return out
		}
		tenth := len(emojis) / 10
		train, val, test := threeWay(len(emojis), seedEmoji, tenth, tenth)
		t.Train, t.Validation, t.Test = mk(o.trainCap(train)), mk(o.evalCap(val)), mk(o.evalCap(test))
		return t, nil
	}
}

// emojiReferences: the Unicode name, then the short names with separators as spaces.
func emojiReferences(e dataset.Emoji) []string {
	refs := []string{e.Caption()}
	for _, s := range e.ShortNames {
		s = strings.NewReplacer("_", " ", "-", " ").Replace(strings.ToLower(s))
		if !slices.Contains(refs, s) {
			refs = append(refs, s)
		}
	}
	return refs
}
