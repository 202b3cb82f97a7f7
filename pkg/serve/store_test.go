package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// writeRun makes one run of the lab's run store by hand: <store>/<id>/summary.json, the
// adapters under adapters/<name>/, and done.json when the run is complete.
func writeRun(t *testing.T, store, id, name, baseName string, base *bases.Base, done bool, adapters ...string) {
	t.Helper()
	run := filepath.Join(store, id)
	for i, a := range adapters {
		if err := SyntheticAdapter(filepath.Join(run, "adapters", a), base, a, lora.Config{Rank: 2 + i}, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := json.Marshal(map[string]any{"name": name, "base": baseName, "task": "spam", "method": "lora", "scores": map[string]float64{"test": 0.5}})
	if err := os.WriteFile(filepath.Join(run, "summary.json"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	if done {
		if err := os.WriteFile(filepath.Join(run, "done.json"), []byte(`{"finished": "now"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestScanStore(t *testing.T) {
	lab := t.TempDir()
	store := filepath.Join(lab, "runs") // a lab directory: -store accepts it or its runs/
	text, raw := loadBase(t, bases.Text), loadBase(t, bases.VLMRaw)
	writeRun(t, store, "a1", "LoRA r=2", bases.Text, text, true, "spam")
	writeRun(t, store, "b2", "two", bases.Text, text, true, "x", "y")
	writeRun(t, store, "c3", "running", bases.Text, text, false, "spam")
	writeRun(t, store, "d4", "LoRA r=2", bases.Text, text, true, "spam") // the same name again
	writeRun(t, store, "e5", "raw run", bases.VLMRaw, raw, true, "spam")
	if err := os.MkdirAll(filepath.Join(store, "f6"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "f6", "done.json"), nil, 0o644); err != nil { // done, no summary
		t.Fatal(err)
	}
	for _, dir := range []string{lab, store} {
		found, bad, err := ScanStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range found {
			names = append(names, f.Name)
		}
		want := []string{"LoRA r=2", "b2/x", "b2/y", "d4/spam", "raw run"}
		if !slices.Equal(names, want) {
			t.Errorf("ScanStore(%s) = %v, want %v", dir, names, want)
		}
		if len(bad) != 1 || !strings.Contains(bad[0].Error(), "f6") {
			t.Errorf("ScanStore(%s) skipped %v, want the run without a summary", dir, bad)
		}
		if found[0].Task != "spam" || found[0].Run != "a1" || found[0].Base != bases.Text {
			t.Errorf("found[0] = %+v", found[0])
		}
	}
	e, err := New(text, Options{Backend: backendtest.Backend(t)})
	if err != nil {
		t.Fatal(err)
	}
	found, _, _ := ScanStore(lab)
	loaded, skipped := e.LoadFound(found)
	if len(loaded) != 4 || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), `trained on base "vlm-raw"`) {
		t.Errorf("LoadFound: loaded %v, skipped %v", loaded, skipped)
	}
	if info, ok := e.Adapter("b2/y"); !ok || info.Rank != 3 || info.Method != lora.PeftType {
		t.Errorf("b2/y: %+v", info)
	}
	if _, err := StoreRun(lab, "c3"); err == nil || !strings.Contains(err.Error(), "not complete") {
		t.Errorf("StoreRun of an incomplete run: %v", err)
	}
	if fs, err := StoreRun(lab, "b2"); err != nil || len(fs) != 2 || fs[1].Name != "b2/y" {
		t.Errorf("StoreRun(b2) = %v, %v", fs, err)
	}
	if _, err := StoreRun(lab, "../runs"); err == nil {
		t.Error("StoreRun accepted a path")
	}
}

func TestScanDir(t *testing.T) {
	text := loadBase(t, bases.Text)
	dir := t.TempDir()
	for _, n := range []string{"spam-adalink", "vlm/footwear"} {
		if err := SyntheticAdapter(filepath.Join(dir, n), text, "x", adalink.Config{Rank: 2}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	found, err := ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Name != "spam-adalink" || found[1].Name != "vlm/footwear" {
		t.Errorf("ScanDir = %+v", found)
	}
	one, err := ScanDir(filepath.Join(dir, "spam-adalink"))
	if err != nil || len(one) != 1 || one[0].Name != "spam-adalink" {
		t.Errorf("ScanDir of an adapter directory = %+v, %v", one, err)
	}
	if _, err := ScanDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("ScanDir of a missing directory succeeded")
	}
}

func TestPNG(t *testing.T) {
	px := make([]float32, 4*4*3)
	for i := range px {
		px[i] = float32(i%256) / 255
	}
	data, err := EncodePNG(px, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodePNG(data, 4, 3)
	if err != nil || !slices.Equal(back, px) {
		t.Errorf("round trip: %v, %v", back, err)
	}
	gray := []float32{0, 1, 0.2, 0.4}
	g, _ := EncodePNG(gray, 2, 1)
	as3, err := DecodePNG(g, 2, 3)
	if err != nil || as3[3] != 1 || as3[4] != 1 || as3[5] != 1 {
		t.Errorf("gray as RGB: %v, %v", as3, err)
	}
	if _, err := DecodePNG(data, 8, 3); err == nil || !strings.Contains(err.Error(), "4x4") {
		t.Errorf("wrong size: %v", err)
	}
	if _, err := DecodePNG([]byte("GIF89a...."), 4, 3); err == nil || !strings.Contains(err.Error(), "not a PNG") {
		t.Errorf("GIF: %v", err)
	}
	if _, err := DecodePNG(data[:len(data)-20], 4, 3); err == nil {
		t.Error("a truncated PNG decoded")
	}
}

// TestPromptCutMatchesTasks checks that PromptCut lays a prompt out exactly as the lab's
// task sources do for scoring (tasks.Source.Prompts), long prompts cut alike.
func TestPromptCutMatchesTasks(t *testing.T) {
	base := loadBase(t, bases.Text)
	e, err := New(base, Options{Backend: backendtest.Backend(t)})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("the quick brown fox jumps over the lazy dog; ", 30)
	task := &tasks.Task{Name: "t", Kind: tasks.Captioning, Metric: tasks.MetricCIDErD,
		Train: []tasks.Example{{Prompt: "x", Target: "y", Label: -1}}}
	const T, maxNew = 48, 5
	src, err := tasks.NewSource(base.Tokenizer, tasks.BatchOptions{MaxLen: T, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	examples := []tasks.Example{{Prompt: "is this spam?"}, {Prompt: long}}
	want, _, err := src.Prompts(examples, maxNew)
	if err != nil {
		t.Fatal(err)
	}
	for i, ex := range examples {
		if got := e.PromptCut(ex.Prompt, T-maxNew-1); !slices.Equal(got, want[i]) {
			t.Errorf("example %d: PromptCut = %v, tasks.Source.Prompts = %v", i, got, want[i])
		}
	}
}
