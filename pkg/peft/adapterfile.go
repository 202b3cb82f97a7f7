package peft

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/safetensors"
	"github.com/peftlab/peftlab/pkg/site"
	"github.com/peftlab/peftlab/pkg/version"
)

// An adapter directory holds the same two files as a Hugging Face PEFT adapter.
const (
	// ConfigFile is the method's configuration plus the adapter's identity.
	ConfigFile = "adapter_config.json"
	// WeightsFile holds the adapter's weights, never the frozen base's.
	WeightsFile = "adapter_model.safetensors"
)

// FormatVersion is the version of the adapter directory layout that
// SaveAdapter writes. LoadAdapter reads versions 1 to FormatVersion, and
// files without a format_version (written by Hugging Face PEFT), and
// refuses newer ones instead of misreading them.
//
// Version 2 stores the adapters of methods that implement FileFormat in
// their own format: LoRA exactly as Hugging Face PEFT does (see package
// lora). Version 1 stored every method's weights under peftlab's names and
// shapes; LoadAdapter still reads it.
const FormatVersion = 2

// DefaultForeignName is the name LoadAdapter gives an adapter written by
// Hugging Face PEFT, whose files do not name it: PEFT's own default.
const DefaultForeignName = "default"

// maxConfigSize bounds adapter_config.json; a config is a few hundred bytes.
const maxConfigSize = 1 << 20

// AdapterConfig is a decoded adapter_config.json.
//
// The file is one flat JSON object, as in Hugging Face PEFT: "peft_type",
// then the method's own configuration fields (its Go struct encoded with
// encoding/json, or its FileFormat's fields: LoRA writes all of PEFT's
// LoraConfig), then "base_model_name_or_path" and peftlab's fields, which
// PEFT ignores:
//
//	{
//	  "peft_type": "LORA",
//	  "r": 8, "lora_alpha": 16, "target_modules": ["block.0.attn.q", "block.0.attn.v"], ...,
//	  "base_model_name_or_path": "tiny-lm",
//	  "base_model_hash": "sha256:4f1c...",
//	  "adapter_name": "sentiment",
//	  "peftlab_version": "v0.1.0",
//	  "format_version": 2,
//	  "adapter_model_sha256": "9b2e..."
//	}
type AdapterConfig struct {
	// Name is the adapter's name ("adapter_name"): its weights load into "/adapters/<Name>".
	Name string
	// Method is the decoded method configuration, of the type registered for
	// "peft_type" (a value, like the configs users write, when the type's
	// value implements Method).
	Method Method
	// BaseModel ("base_model_name_or_path") is the base's human name (site.Layout.Model).
	BaseModel string
	// BaseHash ("base_model_hash") is BaseHash of the base the adapter was
	// trained on, leaving out the base weights the adapter itself stores
	// (full fine-tuning); for all other methods it equals BaseHash exactly.
	BaseHash string
	// PeftlabVersion is the peftlab module version that wrote the file.
	PeftlabVersion string
	// FormatVersion is the layout version of the directory (see the
	// constant); 0 for a file written by Hugging Face PEFT, which has none.
	// Such a file records no BaseHash and no adapter name (Name is then
	// DefaultForeignName).
	FormatVersion int
	// WeightsSHA256 ("adapter_model_sha256") is the hex SHA-256 of
	// adapter_model.safetensors when it was written; empty skips the check.
	WeightsSHA256 string
}

// envelope is adapter_config.json minus the method's own fields.
type envelope struct {
	PeftType       string `json:"peft_type,omitempty"`
	BaseModel      string `json:"base_model_name_or_path"`
	BaseHash       string `json:"base_model_hash"`
	AdapterName    string `json:"adapter_name"`
	PeftlabVersion string `json:"peftlab_version"`
	FormatVersion  int    `json:"format_version"`
	WeightsSHA256  string `json:"adapter_model_sha256,omitempty"`
}

var envelopeKeys = []string{"peft_type", "base_model_name_or_path", "base_model_hash", "adapter_name",
	"peftlab_version", "format_version", "adapter_model_sha256"}

// fileWeight is one tensor of adapter_model.safetensors.
type fileWeight struct {
	key        string // name in the file
	path       string // variable scope and name in the context
	shape      []int  // shape in the context
	fileShape  []int  // shape in the file
	transposed bool   // the file holds the transpose
}

// fileWeights lists what an adapter's file of format_version fv holds: the
// method's own weights under their names relative to the adapter scope
// ("block/0/attn/q/lora_A"), or under the keys of the method's FileFormat
// ("base_model.model.block.0.attn.q.lora_A.weight"), and the base weights it
// trains (full fine-tuning) under their base names without the leading "/"
// ("head/cls/weights").
func fileWeights(a Adapter, res Resolution, fv int) ([]fileWeight, error) {
	var ws []fileWeight
	seen := map[string]string{}
	add := func(w fileWeight) error {
		if prev, dup := seen[w.key]; dup {
			return fmt.Errorf("weights %s and %s would both be stored as %q", prev, w.path, w.key)
		}
		seen[w.key] = w.path
		if w.fileShape == nil {
			w.fileShape = w.shape
		}
		ws = append(ws, w)
		return nil
	}
	ff, own := fileFormat(a.Method, fv)
	for _, p := range res.New {
		name := strings.TrimPrefix(p.Name, "/")
		w := fileWeight{key: name, path: a.Scope() + "/" + name, shape: p.Shape}
		if own {
			w.key, w.transposed = ff.FileWeight(name)
			if w.transposed {
				if len(p.Shape) != 2 {
					return nil, fmt.Errorf("weight %s is %v: only matrices can be stored transposed", w.path, p.Shape)
				}
				w.fileShape = []int{p.Shape[1], p.Shape[0]}
			}
		}
		if err := add(w); err != nil {
			return nil, err
		}
	}
	for _, p := range res.Base {
		name := strings.TrimPrefix(p.Name, "/")
		if err := add(fileWeight{key: name, path: "/" + name, shape: p.Shape}); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

func baseSkip(res Resolution) map[string]bool {
	skip := map[string]bool{}
	for _, p := range res.Base {
		skip["/"+strings.TrimPrefix(p.Name, "/")] = true
	}
	return skip
}

// SaveAdapter writes the adapter named name of m to dir (created if
// missing): adapter_config.json with the method's configuration and the
// base's identity (BaseHash), and adapter_model.safetensors with the
// adapter's weights as they are in sc. A method that implements FileFormat
// writes both in its own format: LoRA exactly as Hugging Face PEFT does, so
// PEFT's PeftModel.from_pretrained loads it (see package lora). The frozen base is never written,
// except by full fine-tuning, whose "adapter" is the set of base weights it
// trains: those are stored under their base names ("head/cls/weights").
// Save LoRA unmerged: merged weights change the base's hash.
//
// Each file is replaced atomically, the weights first and the config last;
// the config records the weights' SHA-256, so a reader never pairs a config
// with weights from another save without noticing.
func SaveAdapter(dir string, sc *mlmodel.Scope, m *Model, name string) error {
	fail := func(err error) error { return fmt.Errorf("save adapter %q to %s: %w", name, dir, err) }
	if m == nil || sc == nil {
		return fail(errors.New("no model or no context given"))
	}
	if err := CheckName(name); err != nil {
		return fail(err)
	}
	a, ok := m.Adapter(name)
	if !ok {
		var names []string
		for _, other := range m.Adapters() {
			names = append(names, other.Name)
		}
		return fail(fmt.Errorf("no adapter of that name is attached (attached: %s)", strings.Join(names, ", ")))
	}
	res, _ := m.Resolution(name)
	weights, err := fileWeights(a, res, FormatVersion)
	if err != nil {
		return fail(err)
	}

	file := &safetensors.File{Metadata: map[string]string{"format": "pt"}}
	var missing []string
	for _, w := range weights {
		scope, vname := mlmodel.SplitPath(w.path)
		v := sc.Store().GetVariable(mlmodel.JoinPath(scope, vname))
		if v == nil || !v.HasValue() {
			missing = append(missing, w.path)
			continue
		}
		if !slices.Equal(v.Shape().Dimensions, w.shape) || v.DType() != dtypes.Float32 {
			return fail(fmt.Errorf("weight %s is %s in the context, but the method declares Float32%v", w.path, v.Shape(), w.shape))
		}
		value, err := v.Value()
		if err != nil {
			return fail(fmt.Errorf("weight %s: %w", w.path, err))
		}
		if err := finiteWeight(w.path, value); err != nil {
			return fail(fmt.Errorf("%w; nothing was written", err))
		}
		if w.transposed {
			if value, err = transpose2D(w.path, value); err != nil {
				return fail(err)
			}
		}
		t, err := safetensors.FromTensor(w.key, value)
		if err != nil {
			return fail(err)
		}
		file.Tensors = append(file.Tensors, t)
	}
	if len(missing) > 0 {
		return fail(fmt.Errorf("weights not in the context: %s (a method creates its weights when the model's graph is first built: build it once before saving)",
			strings.Join(missing, ", ")))
	}

	hash, n, err := baseHash(sc, baseSkip(res))
	if err != nil {
		return fail(err)
	}
	if n == 0 && len(res.Base) == 0 {
		return fail(errors.New("the context holds no base-model weights to identify the base by"))
	}
	data, err := file.Bytes()
	if err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(data)
	var fields []byte
	if ff, own := fileFormat(a.Method, FormatVersion); own {
		fields, err = ff.FileConfig(res)
	} else {
		fields, err = json.Marshal(a.Method)
	}
	if err != nil {
		return fail(fmt.Errorf("encode the %s configuration: %w", a.Method.Type(), err))
	}
	cfg, err := encodeConfig(a.Method.Type(), fields, envelope{
		BaseModel:      m.Layout.Model,
		BaseHash:       hash,
		AdapterName:    a.Name,
		PeftlabVersion: version.Current().Peftlab,
		FormatVersion:  FormatVersion,
		WeightsSHA256:  hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return fail(err)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, WeightsFile), data); err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, ConfigFile), cfg); err != nil {
		return fail(err)
	}
	return nil
}

// encodeConfig writes peft_type, the method's fields (mj, a JSON object),
// then the envelope, as one indented JSON object.
func encodeConfig(peftType string, mj []byte, env envelope) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(mj, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("the %s configuration must encode as a JSON object, got %s", peftType, mj)
	}
	for k := range fields {
		if slices.Contains(envelopeKeys, k) {
			return nil, fmt.Errorf("the %s configuration has a field %q, which adapter_config.json reserves", peftType, k)
		}
	}
	typ, _ := json.Marshal(peftType)
	rest, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"peft_type":`)
	b.Write(typ)
	for _, obj := range [][]byte{mj, rest} {
		if inner := bytes.TrimSpace(obj[1 : len(obj)-1]); len(inner) > 0 {
			b.WriteByte(',')
			b.Write(inner)
		}
	}
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// ReadAdapterConfig reads dir/adapter_config.json without touching the
// weights: enough to list saved adapters, or to see which base one needs.
func ReadAdapterConfig(dir string) (AdapterConfig, error) {
	path := filepath.Join(dir, ConfigFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return AdapterConfig{}, fmt.Errorf("%s is not an adapter directory: it has no %s", dir, ConfigFile)
	}
	if err != nil {
		return AdapterConfig{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return AdapterConfig{}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return AdapterConfig{}, fmt.Errorf("%s is larger than %d bytes: not an adapter config", path, maxConfigSize)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return AdapterConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func parseConfig(data []byte) (AdapterConfig, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		if err == nil {
			err = errors.New("null")
		}
		return AdapterConfig{}, fmt.Errorf("not a JSON object: %w", err)
	}
	// A file without format_version was written by Hugging Face PEFT (or
	// another tool): it has no name and no base hash of peftlab's.
	_, ours := fields["format_version"]
	required := []string{"peft_type"}
	if ours {
		required = append(required, "adapter_name", "base_model_hash")
	}
	for _, k := range required {
		if _, ok := fields[k]; !ok {
			return AdapterConfig{}, fmt.Errorf("field %q is missing", k)
		}
	}
	var env envelope
	for _, k := range envelopeKeys {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		// Decode field by field so the error names the bad one.
		single, _ := json.Marshal(map[string]json.RawMessage{k: raw})
		if err := json.Unmarshal(single, &env); err != nil {
			return AdapterConfig{}, fmt.Errorf("field %q: %s is not a valid value", k, raw)
		}
		delete(fields, k)
	}
	if !ours {
		env.AdapterName = DefaultForeignName
	} else if env.FormatVersion < 1 || env.FormatVersion > FormatVersion {
		return AdapterConfig{}, fmt.Errorf("format_version %d is not one this peftlab reads (1 to %d); it was written by peftlab %s",
			env.FormatVersion, FormatVersion, env.PeftlabVersion)
	}
	if err := CheckName(env.AdapterName); err != nil {
		return AdapterConfig{}, fmt.Errorf("adapter_name: %w", err)
	}
	method, err := NewConfig(env.PeftType)
	if err != nil {
		return AdapterConfig{}, err
	}
	if ff, own := fileFormat(method, env.FormatVersion); own {
		if !ours {
			// Written by PEFT: a newer PEFT adds options, off by default. An
			// unknown key that is off changes nothing; one that is on is refused.
			for k, raw := range fields {
				if !slices.Contains(ff.FileFields(), k) && IsOff(raw) {
					delete(fields, k)
				}
			}
		}
		if err := unknownKeys(env.PeftType, ff.FileFields(), fields); err != nil {
			return AdapterConfig{}, fmt.Errorf("%w%s", err, writtenBy(env))
		}
		if method, err = ff.DecodeFileConfig(fields); err != nil {
			return AdapterConfig{}, fmt.Errorf("%s configuration: %w%s", env.PeftType, err, writtenBy(env))
		}
		return finishConfig(env, method)
	}
	if !ours {
		return AdapterConfig{}, fmt.Errorf("it has no format_version, so peftlab did not write it, and %s adapters are read only in peftlab's own format", env.PeftType)
	}
	if reflect.ValueOf(method).Kind() != reflect.Pointer {
		return AdapterConfig{}, fmt.Errorf("peft_type %q is registered with a config that is not a pointer, so it cannot be decoded", env.PeftType)
	}
	if err := unknownFields(env.PeftType, method, fields); err != nil {
		return AdapterConfig{}, fmt.Errorf("%w (the file was written by peftlab %s, this is %s)", err, env.PeftlabVersion, version.Current().Peftlab)
	}
	rest, _ := json.Marshal(fields)
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := catch.Error(func() error { return dec.Decode(method) }); err != nil {
		hint := ""
		if strings.Contains(err.Error(), "unknown field") {
			hint = fmt.Sprintf(" (the file was written by peftlab %s, this is %s)", env.PeftlabVersion, version.Current().Peftlab)
		}
		return AdapterConfig{}, fmt.Errorf("%s configuration: %w%s", env.PeftType, err, hint)
	}
	return finishConfig(env, method)
}

// writtenBy says which peftlab wrote a file, for messages about fields.
func writtenBy(env envelope) string {
	if env.FormatVersion == 0 {
		return " (the file was written by Hugging Face PEFT or another tool, not by peftlab)"
	}
	return fmt.Sprintf(" (the file was written by peftlab %s, this is %s)", env.PeftlabVersion, version.Current().Peftlab)
}

// finishConfig returns the decoded config with the envelope's fields.
func finishConfig(env envelope, method Method) (AdapterConfig, error) {
	// Return a value when the value implements Method, like the configs users write.
	if rv := reflect.ValueOf(method); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if v, ok := rv.Elem().Interface().(Method); ok {
			method = v
		}
	}
	if typ := method.Type(); typ != env.PeftType {
		return AdapterConfig{}, fmt.Errorf("peft_type %q decoded into a config of type %q", env.PeftType, typ)
	}
	return AdapterConfig{
		Name:           env.AdapterName,
		Method:         method,
		BaseModel:      env.BaseModel,
		BaseHash:       env.BaseHash,
		PeftlabVersion: env.PeftlabVersion,
		FormatVersion:  env.FormatVersion,
		WeightsSHA256:  env.WeightsSHA256,
	}, nil
}

// LoadAdapter reads the adapter saved in dir and puts its weights into sc
// under "/adapters/<name>", after checking, before changing anything in sc:
//
//   - that its peft_type is a known method (its package must be imported) and
//     its configuration fits the base described by layout;
//   - that adapter_model.safetensors is intact (strict format checks, and the
//     SHA-256 recorded in the config) and holds exactly the weights the
//     method declares for this base, with the right shapes (missing, extra
//     and misshapen weights are all listed);
//   - that the base weights in sc are the ones the adapter was trained on
//     (BaseHash, see AdapterConfig.BaseHash).
//
// It also reads LoRA adapters saved by Hugging Face PEFT (save_pretrained of
// a PyTorch twin whose module names follow the sites, see lora.ModuleName):
// such a file has no format_version, no adapter name (the adapter is named
// DefaultForeignName) and no base hash, so of the base only its layout can
// be checked. Files of every format_version from 1 on load.
//
// A full fine-tuning adapter replaces the base weights it trained.
//
// The returned Adapter is Frozen, because loading is mostly for inference and
// a loaded adapter should not start training by accident when stacked under a
// new one; set Frozen to false before peft.New to continue training it.
// Attach it with peft.New(layout, adapter, ...).
func LoadAdapter(dir string, sc *mlmodel.Scope, layout site.Layout) (Adapter, error) {
	fail := func(err error) (Adapter, error) { return Adapter{}, fmt.Errorf("load adapter from %s: %w", dir, err) }
	if sc == nil {
		return fail(errors.New("no context given"))
	}
	cfg, err := ReadAdapterConfig(dir)
	if err != nil {
		return Adapter{}, fmt.Errorf("load adapter: %w", err)
	}
	a := Adapter{Name: cfg.Name, Method: cfg.Method, Frozen: true}
	// Say what is wrong, not what is missing: on another base the method's
	// sites or weights will not match either, but the cause is the base.
	otherBase := func(err error) error {
		if cfg.BaseModel == "" || cfg.BaseModel == layout.Model {
			return err
		}
		return fmt.Errorf("adapter %q was trained on base model %q, this base is %q: load it onto %s (%v)",
			a.Name, cfg.BaseModel, layout.Model, cfg.BaseModel, err)
	}
	if err := checkFinite(cfg.Method); err != nil {
		return fail(fmt.Errorf("adapter %q (%s): %w", a.Name, cfg.Method.Type(), err))
	}
	var res Resolution
	if err := catch.Error(func() (err error) { res, err = cfg.Method.Resolve(layout); return }); err != nil {
		return fail(otherBase(fmt.Errorf("adapter %q (%s) does not fit base model %s: %w", a.Name, cfg.Method.Type(), layout.Model, err)))
	}
	weights, err := fileWeights(a, res, cfg.FormatVersion)
	if err != nil {
		return fail(err)
	}

	path := filepath.Join(dir, WeightsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("%s is missing", WeightsFile))
	}
	if err != nil {
		return fail(err)
	}
	file, err := safetensors.Decode(data)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", WeightsFile, err))
	}
	if cfg.WeightsSHA256 != "" {
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != cfg.WeightsSHA256 {
			return fail(fmt.Errorf("%s has SHA-256 %s, not the %s recorded in %s: it changed after the adapter was saved (or a save was interrupted)",
				WeightsFile, hex.EncodeToString(sum[:]), cfg.WeightsSHA256, ConfigFile))
		}
	}
	values, err := matchWeights(a, weights, file)
	if err != nil {
		return fail(otherBase(err))
	}

	hash, n, err := baseHash(sc, baseSkip(res))
	if err != nil {
		return fail(err)
	}
	if n == 0 && cfg.FormatVersion == 0 {
		return fail(fmt.Errorf("adapter %q needs a base model, but the context holds no base weights: load the base first", a.Name))
	}
	// A file written by Hugging Face PEFT records no hash: the weights fitting
	// the layout is all that can be checked.
	if hash != cfg.BaseHash && !(cfg.FormatVersion == 0 && cfg.BaseHash == "") {
		what := "the base weights in this context"
		if len(res.Base) > 0 {
			what = fmt.Sprintf("the base weights in this context, not counting the %d the adapter replaces,", len(res.Base))
		}
		if n == 0 {
			return fail(fmt.Errorf("adapter %q needs base model %q, but the context holds no base weights: load the base first", a.Name, cfg.BaseModel))
		}
		return fail(fmt.Errorf("adapter %q was trained on base model %q with weights %s, but %s (model %q) hash to %s: load the base model the adapter was trained on%s",
			a.Name, cfg.BaseModel, cfg.BaseHash, what, layout.Model, hash, strayNote(sc, layout)))
	}

	// Every check has passed: only now change sc.
	type target struct {
		v    *mlmodel.Variable
		path string
	}
	targets := make([]target, len(weights))
	for i, w := range weights {
		v := sc.Store().GetVariable(w.path)
		if v != nil && !v.Shape().Equal(values[i].Shape()) {
			return fail(fmt.Errorf("the context already has %s with shape %s, the file has %s: load into a fresh context or under another name",
				w.path, v.Shape(), values[i].Shape()))
		}
		targets[i] = target{v: v, path: w.path}
	}
	for i, t := range targets {
		err := catch.Error(func() error {
			if t.v == nil {
				_, err := sc.Store().CreateVariable(t.path, values[i])
				return err
			}
			return t.v.SetValue(values[i])
		})
		if err != nil {
			return fail(fmt.Errorf("set %s: %w", weights[i].path, err))
		}
	}
	return a, nil
}

// strayNote explains a hash mismatch that comes from the context rather
// than from the weights: variables BaseHash counts that are not weights of
// the layout (a probe, state of an unfamiliar trainer), or layout weights the
// context lacks.
func strayNote(sc *mlmodel.Scope, layout site.Layout) string {
	want := map[string]bool{}
	for _, p := range layout.Params {
		want[p.Name] = true
	}
	var stray, absent []string
	for v := range sc.Store().IterVariables() {
		if path := v.Path(); IsBaseVariable(path) && !want[path] {
			stray = append(stray, path)
		}
	}
	for _, p := range layout.Params {
		if sc.Store().GetVariable(p.Name) == nil {
			absent = append(absent, p.Name)
		}
	}
	var notes []string
	if len(stray) > 0 {
		notes = append(notes, fmt.Sprintf("the context also holds %s, which %s does not list as weights but the hash counts", strings.Join(stray, ", "), layout.Model))
	}
	if len(absent) > 0 && len(absent) < len(layout.Params) {
		notes = append(notes, fmt.Sprintf("the context lacks %s", strings.Join(absent, ", ")))
	}
	if len(notes) == 0 {
		return ""
	}
	return " (note: " + strings.Join(notes, "; ") + ")"
}

// matchWeights checks the file against the weights the method declares and
// converts them, listing every missing, extra or misshapen tensor at once.
func matchWeights(a Adapter, weights []fileWeight, file *safetensors.File) ([]*tensors.Tensor, error) {
	var missing, wrong []string
	values := make([]*tensors.Tensor, len(weights))
	want := map[string]bool{}
	for i, w := range weights {
		want[w.key] = true
		t, ok := file.Tensor(w.key)
		if !ok {
			missing = append(missing, fmt.Sprintf("%s %v", w.key, w.shape))
			continue
		}
		if t.DType != safetensors.F32 || !slices.Equal(t.Shape, w.fileShape) {
			wrong = append(wrong, fmt.Sprintf("%s is %s%v, want F32%v", w.key, t.DType, t.Shape, w.fileShape))
			continue
		}
		v, err := t.ToTensor()
		if err != nil {
			return nil, err
		}
		if err := finiteWeight(w.key, v); err != nil {
			return nil, fmt.Errorf("%s: %w", WeightsFile, err)
		}
		if w.transposed {
			if v, err = transpose2D(w.key, v); err != nil {
				return nil, err
			}
		}
		values[i] = v
	}
	var extra []string
	for _, name := range file.Names() {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(missing)+len(wrong)+len(extra) == 0 {
		return values, nil
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing: "+strings.Join(missing, ", "))
	}
	if len(wrong) > 0 {
		problems = append(problems, "wrong shape or dtype: "+strings.Join(wrong, "; "))
	}
	if len(extra) > 0 {
		problems = append(problems, "not expected by the method: "+strings.Join(extra, ", "))
	}
	return nil, fmt.Errorf("%s does not hold the weights adapter %q (%s) needs on this base: %s",
		WeightsFile, a.Name, a.Method.Type(), strings.Join(problems, "; "))
}
