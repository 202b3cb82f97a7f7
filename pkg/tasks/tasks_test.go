package tasks

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/dataset/datatest"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

func load(t *testing.T, name string) *Task {
	t.Helper()
	datatest.Require(t, Sets(name)...)
	task, err := Load(name, Options{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestEveryTaskFast(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			task := load(t, name)
			if len(task.Train) != FastTrain || len(task.Validation) != FastEval || len(task.Test) != FastEval {
				t.Errorf("fast sizes %d/%d/%d", len(task.Train), len(task.Validation), len(task.Test))
			}
			for _, split := range [][]Example{task.Train, task.Validation, task.Test} {
				for _, e := range split {
					checkExample(t, task, e)
				}
			}
			if task.Kind == Classification {
				seen := map[int]bool{}
				for _, e := range task.Train {
					seen[e.Label] = true
				}
				if len(seen) < min(2, len(task.Classes)) || len(seen) < len(task.Classes)/2 {
					t.Errorf("fast train split covers only %d of %d classes", len(seen), len(task.Classes))
				}
			}
		})
	}
}

func checkExample(t *testing.T, task *Task, e Example) {
	t.Helper()
	if e.Prompt == "" || e.Target == "" || len(e.References) == 0 || e.References[0] != e.Target {
		t.Fatalf("bad example %+v", e)
	}
	switch task.Kind {
	case Classification:
		if e.Label < 0 || e.Label >= len(task.Classes) || task.Classes[e.Label] != e.Target || task.ClassOf(e.Target) != e.Label {
			t.Fatalf("label %d / target %q do not match classes %v", e.Label, e.Target, task.Classes)
		}
	case Captioning:
		if e.Label != -1 {
			t.Fatalf("captioning example with label %d", e.Label)
		}
	}
	if e.HasImage() != task.Multimodal() {
		t.Fatalf("image presence %v in a task with Multimodal() %v", e.HasImage(), task.Multimodal())
	}
	if e.HasImage() {
		px, err := e.Image()
		if err != nil {
			t.Fatal(err)
		}
		if len(px) != task.ImageSize*task.ImageSize*task.Channels {
			t.Fatalf("image has %d values", len(px))
		}
		lo, hi := float32(2), float32(-1)
		for _, v := range px {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo < 0 || hi > 1 || hi-lo < 0.2 {
			t.Fatalf("image values in [%v, %v]: want within [0, 1] with contrast", lo, hi)
		}
	}
}

// TestSplitsFixedAndDisjoint loads full splits of the small sets and checks that they are
// disjoint and repeat exactly.
func TestSplitsFixedAndDisjoint(t *testing.T) {
	for _, name := range []string{"emoji-category", "spam", "mnist-digit"} {
		datatest.Require(t, Sets(name)...)
		a, err := Load(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Load(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		key := func(e Example) string {
			if e.img != nil {
				return fmt.Sprint(e.img.i, "|", typeName(e.img.src))
			}
			return e.Prompt
		}
		where := map[string]string{}
		for split, ex := range map[string][]Example{"train": a.Train, "validation": a.Validation} {
			for _, e := range ex {
				if s, dup := where[key(e)]; dup && !(e.img == nil) {
					t.Fatalf("%s: example in both %s and %s", name, s, split)
				}
				where[key(e)] = split
			}
		}
		if a.Multimodal() && a.Test[0].img.src == a.Train[0].img.src && strings.HasPrefix(name, "emoji") {
			for _, e := range a.Test {
				if s, dup := where[key(e)]; dup {
					t.Fatalf("%s: test example also in %s", name, s)
				}
			}
		}
		for i := range a.Test {
			if a.Test[i].Prompt != b.Test[i].Prompt || a.Test[i].Target != b.Test[i].Target ||
				(a.Test[i].img != nil && a.Test[i].img.i != b.Test[i].img.i) {
				t.Fatalf("%s: test split differs between two loads at %d", name, i)
			}
		}
		t.Logf("%s: %d/%d/%d", name, len(a.Train), len(a.Validation), len(a.Test))
	}
}

func typeName(s imageSource) string {
	switch s.(type) {
	case *emojiSource:
		return "emoji"
	case *graySource:
		return "gray"
	}
	return "?"
}

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	tokErr  error
)

// testTokenizer trains a small vocabulary on the fast tasks' corpus.
func testTokenizer(t *testing.T, tasks ...*Task) *tokenizer.Tokenizer {
	t.Helper()
	tokOnce.Do(func() {
		tok, tokErr = tokenizer.Train(Corpus(tasks, CorpusOptions{PerTask: 200}), tokenizer.TrainOptions{VocabSize: 1000})
	})
	if tokErr != nil {
		t.Fatal(tokErr)
	}
	return tok
}

func ints(t *tensors.Tensor) []int32     { return tensors.MustCopyFlatData[int32](t) }
func floats(t *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](t) }

func TestClassificationBatches(t *testing.T) {
	imdb, digits := load(t, "imdb"), load(t, "mnist-digit")
	tk := testTokenizer(t, imdb, digits, load(t, "emoji-caption"))
	src, err := NewSource(tk, BatchOptions{MaxLen: 64}, imdb)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.TrainBatch(0, 8, 7)
	if err != nil {
		t.Fatal(err)
	}
	if obj, _ := b.Objective(); obj != trainer.Classification || b.Images != nil {
		t.Fatalf("objective %q, images %v", obj, b.Images)
	}
	toks := ints(b.Tokens)
	if b.Tokens.Shape().Dimensions[0] != 8 || b.Tokens.Shape().Dimensions[1] != 64 {
		t.Fatalf("tokens %v", b.Tokens.Shape())
	}
	for r := 0; r < 8; r++ {
		row := toks[r*64 : (r+1)*64]
		if row[0] != tokenizer.BosID || !strings.HasPrefix(tk.Decode(row), "is this movie review positive or negative") {
			t.Errorf("row %d starts %v: %q", r, row[:4], tk.Decode(row))
		}
	}
	for _, l := range ints(b.Labels) {
		if l != 0 && l != 1 {
			t.Errorf("label %d", l)
		}
	}
	// The same step and seed give the same batch; an epoch visits every example once.
	again, _ := src.TrainBatch(0, 8, 7)
	if !equal(ints(again.Tokens), toks) {
		t.Error("TrainBatch is not deterministic")
	}
	seen := map[string]int{}
	for step := 0; step < FastTrain/16; step++ {
		b, _ := src.TrainBatch(step, 16, 3)
		tt := ints(b.Tokens)
		for r := 0; r < 16; r++ {
			seen[string(runes(tt[r*64:(r+1)*64]))]++
		}
	}
	if len(seen) < FastTrain-5 { // identical truncated reviews may collide; nearly all distinct
		t.Errorf("one epoch visited %d distinct examples of %d", len(seen), FastTrain)
	}

	// Images: a VQA batch carries [B, 32, 32, 3] pixels.
	vsrc, err := NewSource(tk, BatchOptions{MaxLen: 16}, digits)
	if err != nil {
		t.Fatal(err)
	}
	evals, err := vsrc.EvalBatches(50)
	if err != nil {
		t.Fatal(err)
	}
	if len(evals) != 2 || evals[1].Labels.Shape().Dimensions[0] != FastEval-50 {
		t.Fatalf("eval batches: %d", len(evals))
	}
	if d := evals[0].Images.Shape().Dimensions; d[0] != 50 || d[1] != 32 || d[2] != 32 || d[3] != 3 {
		t.Fatalf("images %v", d)
	}
	if n, err := evals[0].Size(); err != nil || n != 50 {
		t.Fatalf("Size() = %d, %v", n, err)
	}
}

func TestLanguageModelBatches(t *testing.T) {
	caps := load(t, "emoji-caption")
	tk := testTokenizer(t, load(t, "imdb"), load(t, "mnist-digit"), caps)
	src, err := NewSource(tk, BatchOptions{MaxLen: 24}, caps)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.Batch(caps.Validation[:4])
	if err != nil {
		t.Fatal(err)
	}
	toks, tg := ints(b.Tokens), ints(b.Targets)
	for r := 0; r < 4; r++ {
		row, trow := toks[r*24:(r+1)*24], tg[r*24:(r+1)*24]
		sep := index(row, tokenizer.SepID)
		eos := index(row, tokenizer.EosID)
		if row[0] != tokenizer.BosID || sep < 1 || eos <= sep {
			t.Fatalf("row %v", row)
		}
		for i := range trow {
			switch {
			case i < sep || i >= eos:
				if trow[i] != 0 {
					t.Fatalf("target %d at position %d outside the answer", trow[i], i)
				}
			default:
				if trow[i] != row[i+1] {
					t.Fatalf("target at %d is %d, want next token %d", i, trow[i], row[i+1])
				}
			}
		}
		answer := tk.Decode(row[sep+1 : eos])
		if answer != tk.Normalize(caps.Validation[r].Target) {
			t.Errorf("answer %q, want %q", answer, caps.Validation[r].Target)
		}
	}
	// Generation prompts end in [SEP] and leave room for maxNew tokens.
	prompts, images, err := src.Prompts(caps.Test[:3], 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prompts {
		if p[0] != tokenizer.BosID || p[len(p)-1] != tokenizer.SepID || len(p)+8-1 > 24 {
			t.Errorf("prompt %v", p)
		}
	}
	if images.Shape().Dimensions[0] != 3 {
		t.Errorf("prompt images %v", images.Shape())
	}
	// A mixture of tasks with images trains as language modelling; text and images do not mix.
	digits := load(t, "mnist-digit")
	mix, err := NewSource(tk, BatchOptions{}, caps, digits)
	if err != nil {
		t.Fatal(err)
	}
	if mix.Len() != 2*FastTrain {
		t.Errorf("mixture has %d examples", mix.Len())
	}
	if _, err := NewSource(tk, BatchOptions{}, caps, load(t, "imdb")); err == nil {
		t.Error("mixing text-only and image tasks accepted")
	}
	if _, err := NewSource(tk, BatchOptions{Objective: trainer.Classification}, caps); err == nil {
		t.Error("classification objective on a captioning task accepted")
	}
}

func TestScore(t *testing.T) {
	caps, item := load(t, "fashion-caption"), load(t, "fashion-item")
	ex := caps.Test
	perfect := make([]string, len(ex))
	wrong := make([]string, len(ex))
	for i, e := range ex {
		perfect[i] = e.Target
		wrong[i] = "a purple elephant"
	}
	good, err := caps.Score(ex, perfect)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := caps.Score(ex, wrong)
	if good < 1 || bad != 0 {
		t.Errorf("CIDEr-D perfect %.3f, wrong %.3f", good, bad)
	}
	answers := make([]string, len(item.Test))
	labels := make([]int, len(item.Test))
	for i, e := range item.Test {
		answers[i] = strings.ToUpper(e.Target) + "."
		labels[i] = e.Label
		if i%4 == 0 {
			answers[i] = "a purple elephant"
			labels[i] = (e.Label + 1) % 10
		}
	}
	acc, _ := item.Score(item.Test, answers)
	acc2, _ := item.ScoreLabels(item.Test, labels)
	if math.Abs(acc-0.75) > 1e-9 || math.Abs(acc2-0.75) > 1e-9 {
		t.Errorf("accuracy %v / %v, want 0.75", acc, acc2)
	}
}

func TestHTMLPreview(t *testing.T) {
	for _, name := range []string{"emoji-caption", "spam"} {
		task := load(t, name)
		h, err := task.Preview("train", 3)
		if err != nil {
			t.Fatal(err)
		}
		rows := strings.Count(h, "<tr>") - 1
		imgs := strings.Count(h, `src="data:image/png;base64,`)
		if rows != 3 || (task.Multimodal() && imgs != 3) || (!task.Multimodal() && imgs != 0) {
			t.Errorf("%s: %d rows, %d images", name, rows, imgs)
		}
		if strings.Contains(h, `src="http`) || strings.Contains(h, `href="http`) {
			t.Errorf("%s: preview refers to the network", name)
		}
	}
	task := load(t, "fashion-item")
	h, err := task.HTML(task.Test[:2], []string{task.Test[0].Target, "<script>"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "<script>") || !strings.Contains(h, "#070") || !strings.Contains(h, "#a00") {
		t.Error("predictions not escaped or not coloured right/wrong")
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func runes(x []int32) []rune {
	r := make([]rune, len(x))
	for i, v := range x {
		r[i] = rune(v)
	}
	return r
}

func index(x []int32, v int32) int {
	for i, y := range x {
		if y == v {
			return i
		}
	}
	return -1
}
