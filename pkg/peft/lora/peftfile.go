package lora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/peft"
)

// Hugging Face PEFT's file format (peft.FileFormat).
//
// SaveAdapter writes a LoRA adapter exactly as PEFT's save_pretrained does,
// so PeftModel.from_pretrained loads it onto a PyTorch twin of the base whose
// module names follow the sites (see ModuleName):
//
//   - adapter_model.safetensors holds, for each adapted site,
//     "base_model.model.<module>.lora_A.weight" [r, in] and
//     "base_model.model.<module>.lora_B.weight" [out, r]: the transposes of
//     peftlab's lora_A [in, r] and lora_B [r, out] (PyTorch's nn.Linear keeps
//     its weight as [out, in]).
//   - adapter_config.json holds PEFT's LoraConfig fields: target_modules lists
//     the module name of every adapted site, bias "none", fan_in_fan_out
//     false, inference_mode true, and so on. peftlab's own fields
//     (base_model_hash, adapter_name, format_version, ...) and the site
//     patterns the adapter was configured with ("peftlab_target_sites") are
//     extra keys, which PEFT ignores with a warning.
//
// LoadAdapter reads such files, from peftlab or from PEFT. Of a PEFT file it
// maps target_modules back to sites (a module name, or a dotted suffix as
// PEFT matches it: "q" is every site ending in "/q") and refuses the PEFT
// options peftlab's LoRA does not have (DoRA, bias other than "none",
// fan_in_fan_out, rank and alpha patterns, modules_to_save, ...) unless they
// are off.

// keyPrefix starts every key of a PEFT adapter's weights.
const keyPrefix = "base_model.model."

// PeftTargetsField is the extra adapter_config.json key holding the site
// patterns (Config.Targets) of an adapter saved by peftlab.
const PeftTargetsField = "peftlab_target_sites"

// ModuleName is the PyTorch module name of a site: its path with "." for
// "/", e.g. site "block/0/attn/q" is module "block.0.attn.q" and
// "embed/image/patch" is "embed.image.patch". A PyTorch twin of a peftlab
// base nests its modules that way (bench/interop/twin.py).
func ModuleName(site string) string { return strings.ReplaceAll(site, "/", ".") }

// SiteName is the site of a PyTorch module name, the inverse of ModuleName.
func SiteName(module string) string { return strings.ReplaceAll(module, ".", "/") }

// peftFields are the keys of PEFT 0.21's LoraConfig.to_dict besides the
// envelope's (peft_type, base_model_name_or_path), and peftlab's extra one.
var peftFields = []string{
	"r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora",
	"bias", "fan_in_fan_out", "inference_mode", "init_lora_weights", "modules_to_save", "task_type",
	"revision", "peft_version", "auto_mapping", "use_dora", "lora_bias", "rank_pattern", "alpha_pattern",
	"layers_to_transform", "layers_pattern", "layer_replication", "exclude_modules", "target_parameters",
	"trainable_token_indices", "megatron_config", "megatron_core", "loftq_config", "eva_config",
	"corda_config", "use_qalora", "qalora_group_size", "alora_invocation_tokens", "arrow_config",
	"ensure_weight_tying", "kasa_config", "lora_ga_config", "monteclora_config", "use_bdlora", "velora_config",
	PeftTargetsField,
}

// Fields whose value does not change what a loaded adapter computes.
var peftAnyValue = []string{"inference_mode", "init_lora_weights", "task_type", "revision", "peft_version",
	"auto_mapping", "megatron_core", "qalora_group_size"}

// peftFile is what FileConfig writes (PEFT's LoraConfig, its values for
// what peftlab's LoRA computes), in PEFT's field order.
type peftFile struct {
	TaskType          *string            `json:"task_type"`
	Revision          *string            `json:"revision"`
	InferenceMode     bool               `json:"inference_mode"`
	R                 int                `json:"r"`
	TargetModules     []string           `json:"target_modules"`
	ExcludeModules    []string           `json:"exclude_modules"`
	LoraAlpha         float64            `json:"lora_alpha"`
	LoraDropout       float64            `json:"lora_dropout"`
	FanInFanOut       bool               `json:"fan_in_fan_out"`
	Bias              string             `json:"bias"`
	UseRSLoRA         bool               `json:"use_rslora"`
	ModulesToSave     []string           `json:"modules_to_save"`
	InitLoraWeights   bool               `json:"init_lora_weights"`
	LayersToTransform []int              `json:"layers_to_transform"`
	LayersPattern     []string           `json:"layers_pattern"`
	RankPattern       map[string]int     `json:"rank_pattern"`
	AlphaPattern      map[string]float64 `json:"alpha_pattern"`
	UseDoRA           bool               `json:"use_dora"`
	LoraBias          bool               `json:"lora_bias"`
	PeftlabTargets    []string           `json:"peftlab_target_sites"`
}

// FileConfig implements peft.FileFormat: PEFT's LoraConfig fields, with
// target_modules the module names of the adapted sites (sorted, as PEFT
// writes its set).
func (c Config) FileConfig(res peft.Resolution) ([]byte, error) {
	d := c.WithDefaults()
	modules := make([]string, 0, len(res.Sites))
	for _, s := range res.Sites {
		if strings.Contains(s.Name, ".") {
			return nil, fmt.Errorf("site %s has a '.' in its name, which a PyTorch module name cannot hold", s.Name)
		}
		modules = append(modules, ModuleName(s.Name))
	}
	slices.Sort(modules)
	return json.Marshal(peftFile{
		InferenceMode: true, R: d.Rank, TargetModules: modules, LoraAlpha: d.Alpha, LoraDropout: d.Dropout,
		Bias: "none", UseRSLoRA: d.RSLoRA, InitLoraWeights: true,
		RankPattern: map[string]int{}, AlphaPattern: map[string]float64{}, PeftlabTargets: d.Targets,
	})
}

// FileFields implements peft.FileFormat.
func (Config) FileFields() []string { return peftFields }

// FileWeight implements peft.FileFormat: "block/0/attn/q/lora_A" is stored
// transposed as "base_model.model.block.0.attn.q.lora_A.weight".
func (Config) FileWeight(name string) (string, bool) {
	i := strings.LastIndexByte(name, '/')
	return keyPrefix + ModuleName(name[:i]) + "." + name[i+1:] + ".weight", true
}

// DecodeFileConfig implements peft.FileFormat. Missing fields take PEFT's
// defaults (r 8, lora_alpha 8), as PEFT itself would.
func (Config) DecodeFileConfig(fields map[string]json.RawMessage) (peft.Method, error) {
	get := func(key string, into any) error {
		raw, ok := fields[key]
		if !ok || string(raw) == "null" {
			return nil
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(into); err != nil {
			return fmt.Errorf("field %q: %s is not a valid value (%v)", key, raw, err)
		}
		return nil
	}
	c := Config{Rank: 8, Alpha: 8}
	var bias string
	for _, f := range []struct {
		key  string
		into any
	}{{"r", &c.Rank}, {"lora_alpha", &c.Alpha}, {"lora_dropout", &c.Dropout}, {"use_rslora", &c.RSLoRA}, {"bias", &bias}} {
		if err := get(f.key, f.into); err != nil {
			return nil, err
		}
	}
	if c.Rank <= 0 {
		return nil, fmt.Errorf("r = %d: a LoRA adapter's rank must be positive", c.Rank)
	}
	if c.Alpha == 0 {
		// PEFT scales such an adapter by 0, peftlab would read 0 as its default: refuse it.
		return nil, fmt.Errorf("lora_alpha = 0: the adapter's update is scaled to nothing, and peftlab reads 0 as the default (%g)", DefaultAlpha)
	}
	if bias != "" && bias != "none" {
		return nil, fmt.Errorf("bias = %q: peftlab's LoRA trains no biases, only bias \"none\" is supported", bias)
	}
	for key, raw := range fields {
		if slices.Contains(peftAnyValue, key) || slices.Contains([]string{"r", "lora_alpha", "lora_dropout", "use_rslora", "bias", "target_modules", PeftTargetsField}, key) {
			continue
		}
		if !peft.IsOff(raw) {
			return nil, fmt.Errorf("%s = %s: peftlab's LoRA does not support this PEFT option; only adapters with it off (null, false or empty) load", key, raw)
		}
	}
	var sites []string
	if err := get(PeftTargetsField, &sites); err != nil {
		return nil, err
	}
	if len(sites) > 0 {
		c.Targets = sites // saved by peftlab: its own patterns, which target_modules resolves to
		return c, nil
	}
	raw, ok := fields["target_modules"]
	if !ok || string(raw) == "null" {
		return nil, fmt.Errorf("field \"target_modules\" is missing: it says which modules the adapter adapts")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == AllLinear {
			c.Targets = []string{AllLinear}
			return c, nil
		}
		return nil, fmt.Errorf("target_modules = %q: a regular expression over module names is not supported; list the module names instead", one)
	}
	var modules []string
	if err := json.Unmarshal(raw, &modules); err != nil || len(modules) == 0 {
		return nil, fmt.Errorf("target_modules = %s: want a non-empty list of module names", raw)
	}
	slices.Sort(modules)
	for _, m := range modules {
		if m == "" || strings.ContainsAny(m, "/*?[]{}\\") {
			return nil, fmt.Errorf("target_modules: %q is not a module name", m)
		}
		// PEFT matches a module whose name is m or ends in "."+m.
		c.Targets = append(c.Targets, "**/"+SiteName(m))
	}
	return c, nil
}
