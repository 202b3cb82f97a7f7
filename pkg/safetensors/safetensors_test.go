package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/gomlx/core/tensors"
)

// handBuilt assembles a file byte by byte, the way the format description
// reads, independently of the writer.
func handBuilt(header string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

const handHeader = `{"__metadata__":{"format":"pt"},` +
	`"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
	`"step":{"dtype":"I64","shape":[],"data_offsets":[8,16]},` +
	`"mask":{"dtype":"BOOL","shape":[1,3],"data_offsets":[16,19]}}`

var handData = []byte{
	0x00, 0x00, 0xC0, 0x3F, // 1.5
	0x00, 0x00, 0x00, 0xC0, // -2
	0x07, 0, 0, 0, 0, 0, 0, 0, // 7
	1, 0, 1,
}

func TestDecodeHandBuilt(t *testing.T) {
	f, err := Decode(handBuilt(handHeader, handData))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || len(f.Metadata) != 1 {
		t.Errorf("metadata = %v", f.Metadata)
	}
	if got := f.Names(); !slices.Equal(got, []string{"mask", "step", "w"}) {
		t.Errorf("names = %v", got)
	}
	w, _ := f.Tensor("w")
	wt, err := w.ToTensor()
	if err != nil {
		t.Fatal(err)
	}
	if got := tensors.MustCopyFlatData[float32](wt); !slices.Equal(got, []float32{1.5, -2}) || wt.DType() != dtypes.Float32 {
		t.Errorf("w = %v %s, want [1.5 -2] float32", got, wt.DType())
	}
	step, _ := f.Tensor("step")
	st, err := step.ToTensor()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rank() != 0 || tensors.ToScalar[int64](st) != 7 {
		t.Errorf("step = %v, want scalar 7", st)
	}
	mask, _ := f.Tensor("mask")
	mt, err := mask.ToTensor()
	if err != nil {
		t.Fatal(err)
	}
	if got := tensors.MustCopyFlatData[bool](mt); !slices.Equal(got, []bool{true, false, true}) || !slices.Equal(mt.Shape().Dimensions, []int{1, 3}) {
		t.Errorf("mask = %v %v", got, mt.Shape())
	}
}

// TestWriteExactBytes pins the writer's layout: in the header, metadata
// first, then entries by name; in the data, 8-byte elements before 4-byte
// ones, then by name; header padded with spaces to a multiple of 8. (The Go
// port of the reference implementation, nlpodyssey/safetensors, writes the
// same bytes; checked by hand, it is not a dependency.)
func TestWriteExactBytes(t *testing.T) {
	f := &File{
		Metadata: map[string]string{"format": "pt"},
		Tensors: []Tensor{
			{Name: "w", DType: F32, Shape: []int{2}, Data: handData[:8]},
			{Name: "step", DType: I64, Shape: []int{}, Data: handData[8:16]},
			{Name: "a", DType: F32, Shape: []int{0, 4}, Data: nil},
		},
	}
	got, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"format":"pt"},` +
		`"a":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]},` +
		`"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
		`"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`
	header += strings.Repeat(" ", (8-len(header)%8)%8)
	want := handBuilt(header, append(slices.Clone(handData[8:16]), handData[:8]...))
	if !bytes.Equal(got, want) {
		t.Errorf("encoded file:\n got %q\nwant %q", got, want)
	}
	back, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := back.Tensor("a"); !ok || a.NumElements() != 0 || !slices.Equal(a.Shape, []int{0, 4}) {
		t.Errorf("empty tensor round trip: %+v", a)
	}
}

func TestGoMLXRoundTrip(t *testing.T) {
	in := map[string]*tensors.Tensor{
		"f32":   tensors.FromValue([][]float32{{1, 2, 3}, {4, 5, float32(math.Inf(-1))}}),
		"f64":   tensors.FromValue([]float64{math.Pi, -0.0}),
		"i32":   tensors.FromValue([]int32{-1, 1 << 30}),
		"i64":   tensors.FromScalar(int64(-1) << 40),
		"u8":    tensors.FromValue([]uint8{0, 255}),
		"bool":  tensors.FromValue([]bool{true, false}),
		"bf16":  tensors.FromFlatDataAndDimensions([]bfloat16.BFloat16{bfloat16.FromFloat32(1.5), bfloat16.FromFloat32(-3)}, 2, 1),
		"empty": tensors.FromFlatDataAndDimensions([]float32{}, 0, 3),
	}
	f := &File{}
	for name, tt := range in {
		st, err := FromTensor(name, tt)
		if err != nil {
			t.Fatal(err)
		}
		f.Tensors = append(f.Tensors, st)
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range in {
		st, ok := back.Tensor(name)
		if !ok {
			t.Errorf("%s missing after round trip", name)
			continue
		}
		got, err := st.ToTensor()
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shape().Equal(want.Shape()) || !got.Equal(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	if _, err := DTypeOf(dtypes.Float16); err != nil {
		t.Errorf("Float16 has no dtype: %v", err)
	}
	if _, err := DTypeOf(dtypes.Complex128); err == nil {
		t.Error("Complex128 mapped to a safetensors dtype")
	}
}

func TestAlignment(t *testing.T) {
	f := &File{Tensors: []Tensor{
		{Name: "b", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}},
		{Name: "h", DType: BF16, Shape: []int{1}, Data: []byte{0, 0}},
		{Name: "s", DType: F32, Shape: []int{1}, Data: []byte{0, 0, 0, 0}},
		{Name: "d", DType: F64, Shape: []int{1}, Data: make([]byte, 8)},
	}}
	raw, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	base := 8 + int(binary.LittleEndian.Uint64(raw))
	if base%8 != 0 {
		t.Errorf("data starts at byte %d, not a multiple of 8", base)
	}
	want := []string{"d", "s", "h", "b"}
	pos := base
	for i, st := range back.Tensors {
		if st.Name != want[i] {
			t.Errorf("tensor %d is %s, want %s", i, st.Name, want[i])
		}
		if pos%st.DType.Size() != 0 {
			t.Errorf("tensor %s starts at byte %d, not aligned to %d", st.Name, pos, st.DType.Size())
		}
		pos += len(st.Data)
	}
}

// TestDecodeRejects checks that each kind of damage gives an error that says
// what is wrong.
func TestDecodeRejects(t *testing.T) {
	valid := handBuilt(handHeader, handData)
	entry := func(s string) []byte { return handBuilt(s, nil) }
	lengthSays := func(n uint64, rest []byte) []byte {
		b := binary.LittleEndian.AppendUint64(nil, n)
		return append(b, rest...)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than the 8-byte"},
		{"truncated header", valid[:40], "only 32 bytes follow"},
		{"truncated data", valid[:len(valid)-1], "truncated safetensors file: tensor \"mask\""},
		{"trailing garbage", append(slices.Clone(valid), 0), "1 bytes after the last tensor"},
		{"huge header length", lengthSays(1<<62, []byte("{}")), "exceeds"},
		{"tiny header length", lengthSays(1, []byte("{")), "too short"},
		{"not json", entry("{not json}"), "corrupted safetensors header"},
		{"not an object", entry("[1,2,3]   "), "does not start with '{'"},
		{"two objects", entry("{}{}"), "after the JSON object"},
		{"duplicate name", handBuilt(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), "appears twice"},
		{"unknown dtype", entry(`{"a":{"dtype":"F8_E4M3","shape":[0],"data_offsets":[0,0]}}`), "unknown dtype \"F8_E4M3\""},
		{"unknown field", entry(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":1}}`), "unknown field"},
		{"missing offsets", entry(`{"a":{"dtype":"U8","shape":[0]}}`), "needs dtype, shape and data_offsets"},
		{"negative dim", entry(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`), "tensor \"a\""},
		{"three offsets", entry(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0,0]}}`), "must be [begin, end]"},
		{"reversed offsets", entry(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}`), "end before they begin"},
		{"size mismatch", handBuilt(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "8 bytes, but its data_offsets span 4"},
		{"gap", handBuilt(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), "1 unclaimed bytes"},
		{"overlap", handBuilt(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), "overlaps"},
		{"overflowing shape", handBuilt(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, make([]byte, 8)), "too large"},
		{"metadata not strings", entry(`{"__metadata__":{"a":1}}`), "must map strings to strings"},
		{"empty name", entry(`{"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`), "empty tensor name"},
		{"bad utf8", entry("{\"\xff\":{}}"), "not valid UTF-8"},
	}
	for _, c := range cases {
		_, err := Decode(c.data)
		if err == nil {
			t.Errorf("%s: Decode succeeded, want an error containing %q", c.name, c.want)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %q, want it to contain %q", c.name, err, c.want)
		}
	}
	// A header padded with spaces and an empty file are valid.
	if _, err := Decode(entry("{}      ")); err != nil {
		t.Errorf("padded empty header: %v", err)
	}
}

func TestToTensorRejectsBadBool(t *testing.T) {
	_, err := Tensor{Name: "m", DType: BOOL, Shape: []int{2}, Data: []byte{1, 2}}.ToTensor()
	if err == nil || !strings.Contains(err.Error(), "not 0 or 1") {
		t.Errorf("err = %v", err)
	}
}

func TestWriteRejects(t *testing.T) {
	cases := map[string]*File{
		"appears twice": {Tensors: []Tensor{{Name: "a", DType: U8, Shape: []int{0}}, {Name: "a", DType: U8, Shape: []int{0}}}},
		"empty name":    {Tensors: []Tensor{{DType: U8, Shape: []int{0}}}},
		"unknown dtype": {Tensors: []Tensor{{Name: "a", DType: "F128", Shape: []int{0}}}},
		"needs 8 bytes": {Tensors: []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}},
		"reserved":      {Tensors: []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}},
		"negative":      {Tensors: []Tensor{{Name: "a", DType: U8, Shape: []int{-1}}}},
	}
	dir := t.TempDir()
	for want, f := range cases {
		path := filepath.Join(dir, "x.safetensors")
		err := WriteFile(path, f)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("WriteFile: err = %v, want it to contain %q", err, want)
		}
		if _, statErr := os.Stat(path); statErr == nil {
			t.Errorf("a failed write (%s) left a file behind", want)
		}
	}
}

// FuzzRead feeds Decode valid files, truncations and bit flips: it must never
// panic, and whatever it accepts must survive a write and a second read
// unchanged.
func FuzzRead(f *testing.F) {
	valid := handBuilt(handHeader, handData)
	f.Add(valid)
	for _, n := range []int{0, 7, 8, 20, len(valid) - 1} {
		f.Add(valid[:n])
	}
	for _, i := range []int{0, 3, 7, 9, 30, 60, len(valid) - 2} {
		flipped := slices.Clone(valid)
		flipped[i] ^= 0x10
		f.Add(flipped)
	}
	written, _ := (&File{Tensors: []Tensor{{Name: "x", DType: BF16, Shape: []int{2, 1}, Data: []byte{1, 2, 3, 4}}}}).Bytes()
	f.Add(written)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			return
		}
		for _, st := range file.Tensors {
			if len(st.Data) != st.NumElements()*st.DType.Size() {
				t.Fatalf("accepted tensor %q with %d bytes for %s%v", st.Name, len(st.Data), st.DType, st.Shape)
			}
			if _, err := st.ToTensor(); err != nil && st.DType != BOOL {
				t.Fatalf("accepted tensor %q does not convert: %v", st.Name, err)
			}
		}
		again, err := file.Bytes()
		if err != nil {
			t.Fatalf("accepted file does not re-encode: %v", err)
		}
		file2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if len(file2.Tensors) != len(file.Tensors) || len(file2.Metadata) != len(file.Metadata) {
			t.Fatalf("round trip changed the file")
		}
		for _, st := range file.Tensors {
			st2, ok := file2.Tensor(st.Name)
			if !ok || st2.DType != st.DType || !slices.Equal(st2.Shape, st.Shape) || !bytes.Equal(st2.Data, st.Data) {
				t.Fatalf("round trip changed tensor %q", st.Name)
			}
		}
	})
}
