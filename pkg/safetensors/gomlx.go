package safetensors

import (
	"encoding/binary"
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

var toGoMLX = map[DType]dtypes.DType{
	BOOL: dtypes.Bool, U8: dtypes.Uint8, I8: dtypes.Int8,
	U16: dtypes.Uint16, I16: dtypes.Int16, F16: dtypes.Float16, BF16: dtypes.BFloat16,
	U32: dtypes.Uint32, I32: dtypes.Int32, F32: dtypes.Float32,
	U64: dtypes.Uint64, I64: dtypes.Int64, F64: dtypes.Float64, C64: dtypes.Complex64,
}

// DTypeOf returns the safetensors dtype of a GoMLX dtype.
func DTypeOf(d dtypes.DType) (DType, error) {
	for st, g := range toGoMLX {
		if g == d {
			return st, nil
		}
	}
	return "", fmt.Errorf("GoMLX dtype %s has no safetensors equivalent here (known: %s)", d, knownDTypes())
}

// GoMLX returns the GoMLX dtype of d.
func (d DType) GoMLX() (dtypes.DType, error) {
	g, ok := toGoMLX[d]
	if !ok {
		return dtypes.InvalidDType, fmt.Errorf("unknown dtype %q (known: %s)", d, knownDTypes())
	}
	return g, nil
}

// hostLittleEndian is true on the machines GoMLX runs on (amd64, arm64);
// on a big-endian host, conversions swap bytes.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// FromTensor copies a GoMLX tensor into a named safetensors Tensor.
func FromTensor(name string, t *tensors.Tensor) (Tensor, error) {
	if t == nil {
		return Tensor{}, fmt.Errorf("tensor %q is nil", name)
	}
	d, err := DTypeOf(t.DType())
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	out := Tensor{Name: name, DType: d, Shape: append([]int{}, t.Shape().Dimensions...)}
	out.Data = make([]byte, t.Size()*d.Size())
	if t.Size() > 0 { // ConstBytes cannot view an empty tensor
		err = t.ConstBytes(func(b []byte) { copy(out.Data, b) })
		if err != nil {
			return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
		}
	}
	if !hostLittleEndian {
		swapBytes(out.Data, d.Size(), d == C64)
	}
	return out, nil
}

// ToTensor copies t into a new GoMLX tensor of the same dtype and shape.
// It fails on a malformed t (see WriteTo) and on BOOL bytes other than 0 and 1.
func (t Tensor) ToTensor() (*tensors.Tensor, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	g, _ := t.DType.GoMLX()
	if t.DType == BOOL {
		for i, b := range t.Data {
			if b > 1 {
				return nil, fmt.Errorf("tensor %q: BOOL element %d is %d, not 0 or 1", t.Name, i, b)
			}
		}
	}
	out := tensors.FromShape(shapes.Make(g, t.Shape...))
	if len(t.Data) == 0 {
		return out, nil
	}
	err := out.MutableBytes(func(b []byte) {
		copy(b, t.Data)
		if !hostLittleEndian {
			swapBytes(b, t.DType.Size(), t.DType == C64)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}

// swapBytes reverses the byte order of each element in place; a complex
// number is two floats, swapped separately.
func swapBytes(b []byte, size int, complex bool) {
	if complex {
		size /= 2
	}
	for i := 0; i+size <= len(b); i += size {
		e := b[i : i+size]
		for l, r := 0, size-1; l < r; l, r = l+1, r-1 {
			e[l], e[r] = e[r], e[l]
		}
	}
}
