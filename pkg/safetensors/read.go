package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"unicode/utf8"
)

// ReadFile reads and decodes a safetensors file (see Decode), naming the
// file in errors.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// entry is one tensor's header record. Pointers tell a missing field from an
// empty one.
type entry struct {
	DType       *string   `json:"dtype"`
	Shape       *[]uint64 `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

type located struct {
	Tensor
	begin, end int
}

// Decode parses a whole safetensors file held in data, validating it
// strictly (see the package documentation). The returned tensors' Data share
// memory with data.
func Decode(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("not a safetensors file: %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	rest := uint64(len(data) - 8)
	switch {
	case n > MaxHeaderSize:
		return nil, fmt.Errorf("not a safetensors file, or corrupted: header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	case n > rest:
		return nil, fmt.Errorf("truncated or corrupted safetensors file: header length %d but only %d bytes follow", n, rest)
	case n < 2:
		return nil, fmt.Errorf("corrupted safetensors file: header length %d is too short for a JSON object", n)
	}
	header, buf := data[8:8+n], data[8+n:]

	if header[0] != '{' {
		return nil, fmt.Errorf("corrupted safetensors file: header does not start with '{'")
	}
	if !utf8.Valid(header) {
		return nil, fmt.Errorf("corrupted safetensors file: header is not valid UTF-8")
	}
	f := &File{}
	entries, err := parseHeader(header, f)
	if err != nil {
		return nil, fmt.Errorf("corrupted safetensors header: %w", err)
	}
	if err := locate(entries, buf); err != nil {
		return nil, err
	}
	f.Tensors = make([]Tensor, len(entries))
	for i, e := range entries {
		f.Tensors[i] = e.Tensor
	}
	return f, nil
}

// parseHeader decodes the header object, filling f.Metadata and returning
// the tensor records. It walks the top-level object token by token because
// encoding/json silently keeps the last of duplicate keys.
func parseHeader(header []byte, f *File) ([]located, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	var entries []located
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("unexpected %v where a tensor name belongs", tok)
		}
		if seen[name] {
			return nil, fmt.Errorf("name %q appears twice", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		if name == metadataKey {
			if err := json.Unmarshal(raw, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		e, err := parseEntry(name, raw)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the JSON object")
	}
	return entries, nil
}

func parseEntry(name string, raw json.RawMessage) (located, error) {
	var e entry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return located{}, err
	}
	if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
		return located{}, fmt.Errorf("needs dtype, shape and data_offsets")
	}
	if name == "" {
		return located{}, fmt.Errorf("empty tensor name")
	}
	t := Tensor{Name: name, DType: DType(*e.DType)}
	if t.DType.Size() == 0 {
		return located{}, fmt.Errorf("unknown dtype %q (known: %s)", *e.DType, knownDTypes())
	}
	for _, d := range *e.Shape {
		if d > uint64(maxInt) {
			return located{}, fmt.Errorf("dimension %d is too large", d)
		}
		t.Shape = append(t.Shape, int(d))
	}
	if t.Shape == nil {
		t.Shape = []int{}
	}
	offs := *e.DataOffsets
	if len(offs) != 2 {
		return located{}, fmt.Errorf("data_offsets must be [begin, end], got %d numbers", len(offs))
	}
	if offs[0] > offs[1] {
		return located{}, fmt.Errorf("data_offsets [%d, %d] end before they begin", offs[0], offs[1])
	}
	if offs[1] > uint64(maxInt) {
		return located{}, fmt.Errorf("data_offsets [%d, %d] are too large", offs[0], offs[1])
	}
	return located{Tensor: t, begin: int(offs[0]), end: int(offs[1])}, nil
}

// locate checks that the tensors tile buf exactly and that each one's byte
// range matches its shape, then points each tensor's Data into buf.
func locate(entries []located, buf []byte) error {
	slices.SortStableFunc(entries, func(a, b located) int {
		if a.begin != b.begin {
			return a.begin - b.begin
		}
		return a.end - b.end
	})
	pos := 0
	for i := range entries {
		e := &entries[i]
		if e.begin != pos {
			if e.begin < pos {
				return fmt.Errorf("corrupted safetensors file: tensor %q at bytes [%d, %d] overlaps the previous tensor, which ends at %d",
					e.Name, e.begin, e.end, pos)
			}
			return fmt.Errorf("corrupted safetensors file: %d unclaimed bytes before tensor %q at [%d, %d]",
				e.begin-pos, e.Name, e.begin, e.end)
		}
		if e.end > len(buf) {
			return fmt.Errorf("truncated safetensors file: tensor %q needs bytes [%d, %d] of the data, which has %d",
				e.Name, e.begin, e.end, len(buf))
		}
		size := e.DType.Size()
		n, err := numElements(e.Shape, maxInt/size)
		if err != nil {
			return fmt.Errorf("corrupted safetensors file: tensor %q: %w", e.Name, err)
		}
		if n*size != e.end-e.begin {
			return fmt.Errorf("corrupted safetensors file: tensor %q is %s%v, %d bytes, but its data_offsets span %d bytes",
				e.Name, e.DType, e.Shape, n*size, e.end-e.begin)
		}
		e.Data = buf[e.begin:e.end:e.end]
		pos = e.end
	}
	if pos != len(buf) {
		return fmt.Errorf("corrupted safetensors file: %d bytes after the last tensor", len(buf)-pos)
	}
	return nil
}
