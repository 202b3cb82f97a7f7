package peft

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
)

// Checks shared by every method, done once here at the package's boundary
// (New, SaveAdapter, LoadAdapter) so that no method can forget one: a name
// that is a safe path element, a configuration without NaN or ±Inf, a
// config file without unknown fields, weights that are all finite.

// MaxNameLen bounds adapter names: a name becomes a directory name and a
// variable scope, and file systems limit names to 255 bytes.
const MaxNameLen = 128

var adapterName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)

// CheckName reports whether name can name an adapter: 1 to MaxNameLen
// letters, digits, '_', '-' or '.', not starting with '.'. The name is a
// GoMLX scope ("/adapters/<name>") and a directory name (checkpoints), so
// "..", "." or "a/b" would put weights or files somewhere else, and a hidden
// name (".x") would hide them. Every entry point that takes a name checks it.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("adapter name is empty: give the adapter a name of letters, digits, '_', '-' or '.'")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("adapter name %.20q... is %d bytes long, at most %d are allowed", name, len(name), MaxNameLen)
	}
	if !adapterName.MatchString(name) {
		return fmt.Errorf("adapter name %q is not a valid adapter name: use letters, digits, '_', '-' or '.', not starting with '.'", name)
	}
	return nil
}

// checkFinite reports the first float field of a method's configuration
// (searched through structs, pointers, slices, arrays and maps) that is NaN
// or ±Inf. No method has a use for one: NaN passes every range check written
// as "x < 0", and either one only surfaces later, as a NaN loss or a failed
// save, far from its cause. JSON cannot even encode them.
func checkFinite(m Method) error {
	var bad string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if bad != "" || !v.IsValid() {
			return
		}
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				bad = fmt.Sprintf("%s is %v", path, f)
			}
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() {
					name := jsonName(f)
					if name == "" || f.Anonymous && f.Tag.Get("json") == "" {
						name = path
					} else if path != "" {
						name = path + "." + name
					}
					walk(v.Field(i), name)
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Map:
			iter := v.MapRange()
			for iter.Next() {
				walk(iter.Value(), fmt.Sprintf("%s[%v]", path, iter.Key()))
			}
		}
	}
	walk(reflect.ValueOf(m), "")
	if bad == "" {
		return nil
	}
	return fmt.Errorf("%s: configuration values must be finite numbers", bad)
}

// jsonName is the key encoding/json uses for a struct field, "" when the
// field is not encoded ("-").
func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return f.Name
}

// jsonFields lists the keys a method's configuration type decodes from, in
// field order: the json names of its exported fields, those of embedded
// structs included. It is what adapter_config.json may hold besides the
// envelope, whatever the method's own UnmarshalJSON does with the rest.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			names = append(names, jsonFields(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name := jsonName(f); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// unknownFields returns an error naming the keys of fields that are neither
// the method's nor the envelope's, and listing the known ones. Matching is
// exact: encoding/json would also accept "Lora_Alpha" for "lora_alpha", and
// a method with its own UnmarshalJSON may ignore unknown keys altogether, so
// a misspelt field could otherwise load without a word and change nothing.
func unknownFields(peftType string, method Method, fields map[string]json.RawMessage) error {
	t := reflect.TypeOf(method)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil // not a struct: its own decoding is all there is to judge by
	}
	return unknownKeys(peftType, jsonFields(t), fields)
}

// unknownKeys returns an error naming the keys of fields that are neither in
// known nor the envelope's, listing the known ones.
func unknownKeys(peftType string, known []string, fields map[string]json.RawMessage) error {
	var unknown []string
	for k := range fields {
		if !slices.Contains(known, k) {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	what := "unknown field " + unknown[0]
	if len(unknown) > 1 {
		what = "unknown fields " + strings.Join(unknown, ", ")
	}
	return fmt.Errorf("%s (a %s configuration has: %s; and every adapter_config.json: %s)",
		what, peftType, strings.Join(known, ", "), strings.Join(envelopeKeys, ", "))
}

// finiteWeight reports the first NaN or ±Inf in a Float32 weight. A
// non-finite adapter weight makes every logit NaN, and generation then
// returns a run of one token id without any error; so none is ever
// written, and none is ever loaded.
func finiteWeight(name string, t *tensors.Tensor) error {
	var bad error
	if err := tensors.ConstFlatData(t, func(flat []float32) {
		for i, v := range flat {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				bad = fmt.Errorf("weight %s holds %v (at flat index %d of %d): an adapter's weights must be finite; "+
					"a NaN or Inf weight usually comes from a diverged run (lower the learning rate and restart from an earlier checkpoint)",
					name, v, i, len(flat))
				return
			}
		}
	}); err != nil {
		return fmt.Errorf("weight %s: %w", name, err)
	}
	return bad
}
