package adalink

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/internal/peftest"
	"github.com/peftlab/peftlab/pkg/site"
)

// Parameter counts are 2·d·r per adapted modality, or 2·d·r in all when shared.
func TestParamCountsClosedForm(t *testing.T) {
	for _, d := range []int{8, 16, 24} {
		c := peftest.MM
		c.Width = d
		l := c.Layout()
		for _, r := range []int{1, 4, d} {
			cases := []struct {
				cfg     Config
				modules int
			}{
				{Config{Rank: r}, 2},
				{Config{Rank: r, Modalities: []string{"text"}}, 1},
				{Config{Rank: r, Modalities: []string{"image"}}, 1},
				{Config{Rank: r, Modalities: []string{"image", "text"}}, 2},
				{Config{Rank: r, Shared: true}, 1},
			}
			for _, tc := range cases {
				m, err := peft.New(l, peft.Adapter{Name: "ada", Method: tc.cfg})
				if err != nil {
					t.Fatalf("d=%d %v: %v", d, tc.cfg, err)
				}
				p := m.Plan()
				want := 2 * d * r * tc.modules
				if p.Trainable != want || p.Total != l.NumParams()+want || p.Frozen != l.NumParams() {
					t.Errorf("d=%d %v: trainable %d total %d frozen %d, want %d, %d, %d",
						d, tc.cfg, p.Trainable, p.Total, p.Frozen, want, l.NumParams()+want, l.NumParams())
				}
			}
		}
	}
	// The paper's example: d=4096, r=128 gives 1,048,576 per modality.
	big := site.Layout{Model: "big", Width: 4096, Sites: []site.Site{{Name: "input/text", Kind: site.Input, In: 4096, Out: 4096, Modality: "text"}}}
	res, err := Config{Rank: 128}.Resolve(big)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range res.New {
		n += p.Size()
	}
	if n != 1_048_576 {
		t.Errorf("d=4096 r=128: %d params, want 1048576", n)
	}
}

func TestResolveSitesAndNames(t *testing.T) {
	res, err := Config{Rank: 2}.Resolve(peftest.MM.Layout())
	if err != nil {
		t.Fatal(err)
	}
	var sites, names []string
	for _, s := range res.Sites {
		if s.Kind != site.Input {
			t.Errorf("AdaLink resolved non-input site %s", s.Name)
		}
		sites = append(sites, s.Name)
	}
	for _, p := range res.New {
		names = append(names, fmt.Sprint(p.Name, p.Shape))
	}
	if got, want := strings.Join(sites, ","), "input/text,input/image"; got != want {
		t.Errorf("sites = %s, want %s", got, want)
	}
	if got, want := strings.Join(names, ","), "input/text/A[8 2],input/text/B[2 8],input/image/A[8 2],input/image/B[2 8]"; got != want {
		t.Errorf("weights = %s, want %s", got, want)
	}
	res, err = Config{Rank: 2, Shared: true}.Resolve(peftest.MM.Layout())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sites) != 2 || len(res.New) != 2 || res.New[0].Name != "shared/A" || res.New[1].Name != "shared/B" {
		t.Errorf("shared resolution = %+v", res)
	}
}

// The zero Config is a working adapter with the documented defaults, and its JSON and String
// show them.
func TestZeroConfigTakesDefaults(t *testing.T) {
	res, err := Config{}.Resolve(peftest.MM.Layout())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.New {
		if !slices.Contains(p.Shape, DefaultRank) {
			t.Errorf("%s is %v, want rank %d", p.Name, p.Shape, DefaultRank)
		}
	}
	raw, err := json.Marshal(Config{})
	if err != nil || string(raw) != `{"rank":8,"activation":"identity"}` {
		t.Errorf("JSON of the zero Config: %s (%v)", raw, err)
	}
	if s := (Config{}).String(); s != "AdaLink(r=8, all modalities)" {
		t.Errorf("String() = %q", s)
	}
}

func TestResolveErrors(t *testing.T) {
	imageOnly := model.Config{Width: 8, Heads: 2, Blocks: 1, MLPDim: 8, ImageSize: 4, PatchSize: 2, Channels: 3}
	noInputs := site.Layout{Model: "headless", Width: 8, Sites: []site.Site{{Name: "block/0/attn/q", Kind: site.Linear, In: 8, Out: 8}}}
	narrow := model.Config{Vocab: 16, Width: 4, Heads: 2, Blocks: 1, MLPDim: 8, MaxLen: 8}
	cases := []struct {
		cfg    Config
		layout site.Layout
		want   []string
	}{
		{Config{}, narrow.Layout(), []string{"rank 8", "between 1 and the model width 4", "0 means the default, 8"}},
		{Config{Rank: -3}, peftest.MM.Layout(), []string{"rank -3"}},
		{Config{Rank: 9}, peftest.MM.Layout(), []string{"rank 9", "width 8"}},
		{Config{Rank: 2, Modalities: []string{"audio"}}, peftest.MM.Layout(), []string{`"audio"`, "it has: text, image"}},
		{Config{Rank: 2, Modalities: []string{"image"}}, peftest.Text.Layout(), []string{`no "image" modality`, "it has: text"}},
		{Config{Rank: 2, Modalities: []string{"text"}}, imageOnly.Layout(), []string{`no "text" modality`, "it has: image"}},
		{Config{Rank: 2, Modalities: []string{"text", "text"}}, peftest.MM.Layout(), []string{"twice"}},
		{Config{Rank: 2, Activation: "softmax"}, peftest.MM.Layout(), []string{`"softmax"`, "relu, gelu, tanh"}},
		{Config{Rank: 2, InitStd: -1}, peftest.MM.Layout(), []string{"init_std"}},
		{Config{Rank: 2}, noInputs, []string{"no input embedding site"}},
	}
	for _, tc := range cases {
		_, err := tc.cfg.Resolve(tc.layout)
		if err == nil {
			t.Errorf("%v on %s: no error", tc.cfg, tc.layout.Model)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v on %s: error %q does not mention %q", tc.cfg, tc.layout.Model, err, w)
			}
		}
	}
	// Through peft.New the error names the adapter.
	_, err := peft.New(peftest.MM.Layout(), peft.Adapter{Name: "ada", Method: Config{Rank: 100}})
	if err == nil || !strings.Contains(err.Error(), `adapter "ada" (ADALINK)`) {
		t.Errorf("peft.New error = %v", err)
	}
}

// With B = 0 the adapted model computes exactly what the base computes, for
// every activation, shared or not; once B is non-zero it does not.
func TestInitIdenticalToBase(t *testing.T) {
	variants := []Config{
		{Rank: 4},
		{Rank: 4, Activation: "relu"},
		{Rank: 4, Activation: "gelu", Modalities: []string{"text"}},
		{Rank: 8, Activation: "tanh", Modalities: []string{"image"}, InitStd: 0.5},
		{Rank: 2, Shared: true},
	}
	for _, cfg := range variants {
		t.Run(cfg.String(), func(t *testing.T) {
			sc := peftest.NewCtx(t)
			baseCls, baseLM := peftest.Forward(t, sc, peftest.MM, nil)
			m, err := peft.New(peftest.MM.Layout(), peft.Adapter{Name: "ada", Method: cfg})
			if err != nil {
				t.Fatal(err)
			}
			cls, lm := peftest.Forward(t, sc, peftest.MM, m)
			if d := max(peftest.MaxDiff(cls, baseCls), peftest.MaxDiff(lm, baseLM)); d != 0 {
				t.Fatalf("adapted model at init differs from the base by %g", d)
			}
			checkVariablesMatchPlan(t, sc, m, "ada")

			// Planted change: B non-zero must change the outputs.
			res, _ := m.Resolution("ada")
			for _, p := range res.New {
				if strings.HasSuffix(p.Name, "/B") {
					v := variable(t, sc, "/adapters/ada/"+p.Name)
					if err := v.SetValue(tensors.FromFlatDataAndDimensions(ramp(p.Size(), 0.05), p.Shape...)); err != nil {
						t.Fatal(err)
					}
				}
			}
			cls, lm = peftest.Forward(t, sc, peftest.MM, m)
			if d := max(peftest.MaxDiff(cls, baseCls), peftest.MaxDiff(lm, baseLM)); d < 1e-4 {
				t.Errorf("with B != 0 the outputs moved only %g from the base", d)
			}
		})
	}
}

// checkVariablesMatchPlan checks that the variables the graph created in the
// adapter's scope are exactly the weights its Resolution declared, with the
// same shapes, and that ApplyTrainable made exactly them trainable.
func checkVariablesMatchPlan(t *testing.T, sc *mlmodel.Scope, m *peft.Model, name string) {
	t.Helper()
	res, _ := m.Resolution(name)
	want := map[string]string{}
	for _, p := range res.New {
		want[peft.AdapterScope+"/"+name+"/"+p.Name] = fmt.Sprint(p.Shape)
	}
	got := map[string]string{}
	for v := range sc.IterVariables() {
		inAdapter := strings.HasPrefix(v.Path(), peft.AdapterScope+"/")
		if inAdapter {
			got[v.Path()] = fmt.Sprint(v.Shape().Dimensions)
		}
		if v.Trainable != inAdapter {
			t.Errorf("%s: trainable = %v, want %v", v.Path(), v.Trainable, inAdapter)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adapter variables %v, plan declared %v", got, want)
	}
}

func variable(t *testing.T, sc *mlmodel.Scope, path string) *mlmodel.Variable {
	t.Helper()
	scope, name := mlmodel.SplitPath(path)
	v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
	if v == nil {
		t.Fatalf("no variable %s", path)
	}
	return v
}

func ramp(n int, step float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = step * float32(i%7-3)
	}
	return out
}

// A starts Kaiming-uniform (|a| <= 1/√d, not all equal) or normal with InitStd.
func TestInitOfA(t *testing.T) {
	c := peftest.MM
	c.Width = 32
	c.Heads = 4
	sc := peftest.NewCtx(t)
	m, err := peft.New(c.Layout(),
		peft.Adapter{Name: "k", Method: Config{Rank: 16, Modalities: []string{"text"}}},
		peft.Adapter{Name: "n", Method: Config{Rank: 16, Modalities: []string{"image"}, InitStd: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	peftest.Forward(t, sc, c, m)
	kaiming := peftest.Flat(t, variable(t, sc, "/adapters/k/input/text/A").MustValue())
	bound := 1 / math.Sqrt(32)
	lo, hi := 0.0, 0.0
	for _, a := range kaiming {
		if math.Abs(float64(a)) > bound {
			t.Fatalf("Kaiming-uniform A has %g outside ±%g", a, bound)
		}
		lo, hi = min(lo, float64(a)), max(hi, float64(a))
	}
	if lo > -bound/2 || hi < bound/2 {
		t.Errorf("Kaiming-uniform A spans only [%g, %g] of ±%g", lo, hi, bound)
	}
	normal := peftest.Flat(t, variable(t, sc, "/adapters/n/input/image/A").MustValue())
	var ss float64
	for _, a := range normal {
		ss += float64(a) * float64(a)
	}
	if std := math.Sqrt(ss / float64(len(normal))); std < 0.17 || std > 0.23 {
		t.Errorf("A with init_std 0.2 has std %g over %d values", std, len(normal))
	}
	for _, p := range []string{"/adapters/k/input/text/B", "/adapters/n/input/image/B"} {
		for _, b := range peftest.Flat(t, variable(t, sc, p).MustValue()) {
			if b != 0 {
				t.Fatalf("%s is not zero at init", p)
			}
		}
	}
}

// hostAdaLink computes x + φ(x·A)·B in float64 with plain loops.
func hostAdaLink(x, a, b []float64, n, d, r int, act string) []float64 {
	out := slices.Clone(x)
	for i := 0; i < n; i++ {
		for k := 0; k < r; k++ {
			h := 0.0
			for j := 0; j < d; j++ {
				h += x[i*d+j] * a[j*r+k]
			}
			h = hostAct(h, act)
			for j := 0; j < d; j++ {
				out[i*d+j] += h * b[k*d+j]
			}
		}
	}
	return out
}

func hostAct(h float64, act string) float64 {
	switch act {
	case "relu":
		return max(h, 0)
	case "gelu":
		return h * 0.5 * (1 + math.Erf(h/math.Sqrt2))
	case "tanh":
		return math.Tanh(h)
	}
	return h
}

func randSlice(r *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = r.NormFloat64()
	}
	return out
}

// Apply agrees with a loop implementation, and its gradients with finite
// differences of that implementation, for every activation.
func TestApplyMatchesReference(t *testing.T) {
	const batch, seq, d, r = 2, 3, 5, 3
	rng := rand.New(rand.NewPCG(3, 4))
	x, a, b := randSlice(rng, batch*seq*d), randSlice(rng, d*r), randSlice(rng, r*d)
	for _, act := range Activations {
		exec, err := graph.NewExec(peftest.Backend(t), func(xn, an, bn *graph.Node) []*graph.Node {
			out := Apply(xn, an, bn, act)
			loss := graph.ReduceAllSum(graph.Mul(out, out))
			return append([]*graph.Node{out}, graph.Gradient(loss, an, bn)...)
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, batch, seq, d),
			tensors.FromFlatDataAndDimensions(a, d, r), tensors.FromFlatDataAndDimensions(b, r, d))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := tensors.CopyFlatData[float64](outs[0])
		want := hostAdaLink(x, a, b, batch*seq, d, r, act)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-9 {
				t.Fatalf("%s: out[%d] = %g, want %g", act, i, got[i], want[i])
			}
		}
		loss := func(a, b []float64) float64 {
			s := 0.0
			for _, v := range hostAdaLink(x, a, b, batch*seq, d, r, act) {
				s += v * v
			}
			return s
		}
		for gi, param := range [][]float64{a, b} {
			grad, _ := tensors.CopyFlatData[float64](outs[1+gi])
			for i := range param {
				const eps = 1e-6
				old := param[i]
				param[i] = old + eps
				up := loss(a, b)
				param[i] = old - eps
				down := loss(a, b)
				param[i] = old
				fd := (up - down) / (2 * eps)
				if math.Abs(fd-grad[i]) > 1e-4*(1+math.Abs(fd)) {
					t.Errorf("%s: d loss/d %c[%d] = %g, finite difference %g", act, "AB"[gi], i, grad[i], fd)
				}
			}
		}
	}
}

func TestRegistryAndJSON(t *testing.T) {
	m, err := peft.NewConfig(PeftType)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"rank":4,"modalities":["text"],"shared":true,"activation":"relu","init_std":0.1}`), m); err != nil {
		t.Fatal(err)
	}
	want := Config{Rank: 4, Modalities: []string{"text"}, Shared: true, Activation: "relu", InitStd: 0.1}
	if got := *m.(*Config); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if m.Type() != "ADALINK" {
		t.Errorf("Type = %q", m.Type())
	}
	out, _ := json.Marshal(Config{Rank: 2})
	if string(out) != `{"rank":2,"activation":"identity"}` {
		t.Errorf("minimal config encodes as %s", out)
	}
}
