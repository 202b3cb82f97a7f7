package peft

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gomlx/gomlx/core/tensors"
)

// FileFormat is implemented by a method whose adapter files follow another
// tool's conventions rather than peftlab's default, which is the method's Go
// configuration as JSON and its weights under their names relative to the
// adapter scope ("block/0/attn/q/lora_A"), in peftlab's shapes. LoRA
// implements it to write exactly what Hugging Face PEFT writes, so that PEFT
// loads peftlab's LoRA adapters and peftlab loads PEFT's.
//
// The format applies to files of format_version 2 and later and to files
// with no format_version at all (written by the other tool); files of
// format_version 1 predate it and are read the default way.
type FileFormat interface {
	Method
	// FileConfig returns the method's fields of adapter_config.json, as one
	// JSON object, for the adapter as it resolved on a base (res).
	FileConfig(res Resolution) ([]byte, error)
	// FileFields lists every key of adapter_config.json the method reads,
	// besides the envelope's; any other key is refused as unknown.
	FileFields() []string
	// DecodeFileConfig returns the configuration decoded from the method's
	// fields, as FileConfig or the other tool wrote them.
	DecodeFileConfig(fields map[string]json.RawMessage) (Method, error)
	// FileWeight maps a weight the method creates (one of Resolution.New,
	// named relative to the adapter scope) to its key in
	// adapter_model.safetensors, and says whether the file stores the
	// matrix transposed (peftlab's [a, b] is [b, a] in the file).
	FileWeight(name string) (key string, transposed bool)
}

// fileFormat returns m's FileFormat when files of format_version fv use it.
func fileFormat(m Method, fv int) (FileFormat, bool) {
	ff, ok := m.(FileFormat)
	return ff, ok && fv != 1
}

// transpose2D returns the transpose of a Float32 matrix.
func transpose2D(name string, t *tensors.Tensor) (*tensors.Tensor, error) {
	dims := t.Shape().Dimensions
	if len(dims) != 2 {
		return nil, fmt.Errorf("weight %s is %s: only matrices can be stored transposed", name, t.Shape())
	}
	rows, cols := dims[0], dims[1]
	src, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, fmt.Errorf("weight %s: %w", name, err)
	}
	dst := make([]float32, len(src))
	for i := range rows {
		for j := range cols {
			dst[j*rows+i] = src[i*cols+j]
		}
	}
	return tensors.FromFlatDataAndDimensions(dst, cols, rows), nil
}

// IsOff reports whether a JSON value is null, false, 0, "" or an empty
// list or object: the value of an option that is not in use. FileFormat
// implementations use it to accept another tool's options that are off.
func IsOff(raw json.RawMessage) bool {
	var v any
	if err := json.Unmarshal(bytes.TrimSpace(raw), &v); err != nil {
		return false
	}
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case float64:
		return v == 0
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}
