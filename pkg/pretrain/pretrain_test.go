package pretrain

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

func TestInstructionPrefix(t *testing.T) {
	task := &tasks.Task{Name: "toy", Train: []tasks.Example{
		{Prompt: "is this review good? it is. great? yes"},
		{Prompt: "is this review good? it was bad"},
		{Prompt: "is this review good? it is fine"},
	}}
	got, err := instructionPrefix(task)
	if err != nil {
		t.Fatal(err)
	}
	if got != "is this review good? " {
		t.Fatalf("prefix %q, want %q", got, "is this review good? ")
	}
	task.Test = []tasks.Example{{Prompt: "is this review good? unseen text"}, {Prompt: "another instruction? x"}}
	if _, err := taskContents(task, "test"); err == nil || !strings.Contains(err.Error(), "does not start with") {
		t.Fatalf("a prompt without the instruction must be an error, got %v", err)
	}
	task.Test = task.Test[:1]
	c, err := taskContents(task, "test")
	if err != nil || !slices.Equal(c, []string{"unseen text"}) {
		t.Fatalf("contents %q, %v", c, err)
	}
	if _, err := instructionPrefix(&tasks.Task{Name: "q", Train: []tasks.Example{{Prompt: "abc"}, {Prompt: "abd"}}}); err == nil {
		t.Fatal("prompts without a shared question must be an error")
	}
}

func toyTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Train([]string{"the cat sat on the mat", "the dog sat on the log", "a cat and a dog"}, tokenizer.TrainOptions{VocabSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Every token of a document (and its [EOS]) must be a target exactly once, in order, and
// each window's inputs must be the targets shifted by one.
func TestWindowsPredictEveryTokenOnce(t *testing.T) {
	tok := toyTokenizer(t)
	docs := []Doc{{"a", "the cat sat on the mat and the dog sat on the log"}, {"b", "a cat"}, {"c", "the dog"}}
	const T = 4
	w, err := Windows(tok, docs, T, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := w.All()
	toks, targets := all.Tokens.Value().([][]int32), all.Targets.Value().([][]int32)
	var gotTargets, want []int32
	for _, d := range docs {
		want = append(want, tok.Encode(d.Text)...)
		want = append(want, tokenizer.EosID)
	}
	for i := range toks {
		for j := range T {
			if targets[i][j] != 0 {
				gotTargets = append(gotTargets, targets[i][j])
				if j+1 < T && targets[i][j+1] != 0 && toks[i][j+1] != targets[i][j] {
					t.Fatalf("window %d: input %d is %d, want the previous target %d", i, j+1, toks[i][j+1], targets[i][j])
				}
			}
		}
	}
	if !slices.Equal(gotTargets, want) {
		t.Fatalf("targets %v\nwant    %v", gotTargets, want)
	}
	if w.Targets != len(want) {
		t.Fatalf("Targets = %d, want %d", w.Targets, len(want))
	}
	if toks[0][0] != tokenizer.BosID {
		t.Fatalf("first window starts with %d, want [BOS]", toks[0][0])
	}
	// The first document has 14 tokens with [BOS] and [EOS]: windows of 5 overlapping by one.
	n0 := len(tok.Encode(docs[0].Text)) + 2
	if want := (n0 - 1 + T - 1) / T; w.N != want+2 {
		t.Fatalf("%d windows, want %d", w.N, want+2)
	}
	capped, _ := Windows(tok, docs, T, 1)
	if capped.N != 3 {
		t.Fatalf("maxWindows 1 gave %d windows, want one per document", capped.N)
	}
	if b := w.Batches(2); len(b) != (w.N+1)/2 {
		t.Fatalf("%d batches of 2 for %d windows", len(b), w.N)
	}
	if _, err := Windows(tok, nil, T, 0); err == nil {
		t.Fatal("no documents must be an error")
	}
}

func TestBalanceAndSample(t *testing.T) {
	ex := []tasks.Example{{Target: "a"}, {Target: "b"}, {Target: "c"}}
	got := balance(ex, 7)
	var s string
	for _, e := range got {
		s += e.Target
	}
	if s != "abcabca" {
		t.Fatalf("balance(3 → 7) = %s", s)
	}
	if len(balance(ex, 2)) != 2 || len(balance(ex, 0)) != 3 {
		t.Fatal("balance must cut to n, and keep everything for n <= 0")
	}
	items := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	a, b := sample(items, 4, 7), sample(items, 4, 7)
	if !slices.Equal(a, b) || len(a) != 4 || !slices.IsSorted(a) {
		t.Fatalf("sample must be seeded, of size n and in the original order: %v %v", a, b)
	}
	if c := sample(items, 4, 8); slices.Equal(a, c) {
		t.Fatalf("another seed gave the same sample %v", a)
	}
	if len(sample(items, 0, 1)) != 10 {
		t.Fatal("n = 0 keeps all")
	}
}

func TestRecipes(t *testing.T) {
	if !slices.Equal(Names(), []string{Text, VLMRaw, VLMInstruct}) {
		t.Fatalf("names %v", Names())
	}
	rs := Recipes()
	for i, r := range rs {
		if r.Name != Names()[i] {
			t.Fatalf("recipe %d is %s, want %s", i, r.Name, Names()[i])
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if r.Model.Vocab != VocabSize {
			t.Fatalf("%s: vocabulary %d, want the shared %d", r.Name, r.Model.Vocab, VocabSize)
		}
	}
	raw, instruct := rs[1], rs[2]
	// The two regimes differ only in their data.
	rawM, instM := raw.Model, instruct.Model
	rawM.Name, instM.Name = "", ""
	if rawM != instM || raw.Train != instruct.Train || raw.Mixture != instruct.Mixture {
		t.Fatal("vlm-raw and vlm-instruct must share architecture and training settings")
	}
	for _, task := range raw.Tasks {
		if !slices.Contains(instruct.Tasks, task) {
			t.Fatalf("the instructed base must also caption: %s missing", task)
		}
		if tasksKind(t, task) != "captioning" {
			t.Fatalf("the raw base must pretrain on captioning alone, not %s", task)
		}
	}
	for _, h := range HeldOutTasks {
		if slices.Contains(instruct.Tasks, h) || slices.Contains(raw.Tasks, h) {
			t.Fatalf("held-out task %s is pretrained on", h)
		}
		if !slices.Contains(tasks.Names(), h) {
			t.Fatalf("held-out task %s is not a pkg/tasks task", h)
		}
	}
	bad := instruct
	bad.HeldOutTasks = []string{"mnist-digit"}
	if err := bad.Validate(); err == nil {
		t.Fatal("a task both trained and held out must fail validation")
	}
	if _, err := RecipeFor("nope"); err == nil || !strings.Contains(err.Error(), "vlm-instruct") {
		t.Fatalf("unknown base: %v", err)
	}
}

// tasksKind says whether a task is captioning by its name (the data may not be installed).
func tasksKind(t *testing.T, name string) string {
	if strings.HasSuffix(name, "-caption") {
		return "captioning"
	}
	return "vqa"
}

func TestReplaceDir(t *testing.T) {
	root := t.TempDir()
	to, from := filepath.Join(root, "base"), filepath.Join(root, "new")
	for dir, content := range map[string]string{to: "old", from: "new"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := replaceDir(from, to); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(to, "f")); string(b) != "new" {
		t.Fatalf("content %q after replace", b)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	// A missing source leaves the old directory in place.
	if err := replaceDir(filepath.Join(root, "missing"), to); err == nil {
		t.Fatal("replacing from a missing directory must fail")
	}
	if b, _ := os.ReadFile(filepath.Join(to, "f")); string(b) != "new" {
		t.Fatalf("old checkpoint lost after a failed replace: %q", b)
	}
}
