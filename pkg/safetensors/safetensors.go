// Package safetensors reads and writes the safetensors weight format used by
// Hugging Face (https://github.com/huggingface/safetensors), so that peftlab's
// adapters and base weights are plain files other tools can open.
//
// A file is:
//
//	8 bytes    N, the header length, unsigned little-endian
//	N bytes    a JSON object {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//	           "__metadata__": {"key": "value", ...}}, padded with spaces
//	the rest   the tensors' raw little-endian bytes, row-major; offsets are relative to this buffer
//
// Reading is strict, because a weight file that is silently misread is worse
// than one that fails: Decode checks that the header length fits the file, that
// the header is one valid JSON object with unique names, that every dtype is
// known and every size equals shape × dtype size, and that the tensors cover
// the data buffer exactly (no gaps, no overlaps, nothing after the last one).
// Every failure is an error saying what is wrong; no input makes it panic.
//
// Writing follows the reference implementation's layout: the header is padded
// to a multiple of 8 bytes and tensors are ordered by decreasing element size,
// then name, so every tensor starts aligned to its element size. WriteFile is
// atomic (see package atomicfile).
//
// FromTensor and Tensor.ToTensor convert to and from GoMLX tensors.
package safetensors

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// DType is a safetensors element type, spelled as in the header.
type DType string

// The element types this package reads and writes: all whole-byte types of the
// format except the 8-bit floats.
const (
	BOOL DType = "BOOL"
	U8   DType = "U8"
	I8   DType = "I8"
	U16  DType = "U16"
	I16  DType = "I16"
	F16  DType = "F16"
	BF16 DType = "BF16"
	U32  DType = "U32"
	I32  DType = "I32"
	F32  DType = "F32"
	U64  DType = "U64"
	I64  DType = "I64"
	F64  DType = "F64"
	C64  DType = "C64"
)

var dtypeSizes = map[DType]int{
	BOOL: 1, U8: 1, I8: 1,
	U16: 2, I16: 2, F16: 2, BF16: 2,
	U32: 4, I32: 4, F32: 4,
	U64: 8, I64: 8, F64: 8, C64: 8,
}

// Size is the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

func knownDTypes() string {
	names := make([]string, 0, len(dtypeSizes))
	for d := range dtypeSizes {
		names = append(names, string(d))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Tensor is one named array of a file.
type Tensor struct {
	Name  string
	DType DType
	// Shape lists the dimensions; empty for a scalar.
	Shape []int
	// Data holds the elements, little-endian, row-major: exactly
	// NumElements()·DType.Size() bytes. Tensors returned by Decode share
	// their Data with the decoded buffer.
	Data []byte
}

// NumElements is the product of the dimensions (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check reports what makes t unwritable.
func (t Tensor) check() error {
	if t.Name == "" {
		return fmt.Errorf("tensor with an empty name")
	}
	if !utf8.ValidString(t.Name) {
		return fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
	}
	if t.Name == metadataKey {
		return fmt.Errorf("tensor name %q is reserved for the metadata", metadataKey)
	}
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("tensor %q: unknown dtype %q (known: %s)", t.Name, t.DType, knownDTypes())
	}
	n, err := numElements(t.Shape, maxInt)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if len(t.Data) != n*size {
		return fmt.Errorf("tensor %q: %s%v needs %d bytes, Data holds %d", t.Name, t.DType, t.Shape, n*size, len(t.Data))
	}
	return nil
}

const maxInt = int(^uint(0) >> 1)

// numElements multiplies the dimensions, failing on a negative dimension or
// when the product exceeds limit.
func numElements(shape []int, limit int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > limit/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return n, nil
}

// File is the content of a safetensors file.
type File struct {
	// Metadata is the free-form "__metadata__" string map (may be nil).
	Metadata map[string]string
	// Tensors in data order when decoded; any order when writing.
	Tensors []Tensor
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Names lists the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		names[i] = t.Name
	}
	slices.Sort(names)
	return names
}

const metadataKey = "__metadata__"

// MaxHeaderSize bounds the JSON header, as in the reference implementation,
// so a corrupted length cannot make a reader allocate gigabytes.
const MaxHeaderSize = 100_000_000
