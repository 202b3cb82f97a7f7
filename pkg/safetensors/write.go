package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/peftlab/peftlab/pkg/atomicfile"
)

// WriteFile writes f to path atomically: readers see the old file or the
// complete new one.
func WriteFile(path string, f *File) error {
	if _, err := f.layout(); err != nil { // fail before creating anything
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
}

// Bytes returns the encoded file.
func (f *File) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteTo encodes f to w. It fails without writing when a tensor is
// malformed (empty or duplicate name, unknown dtype, Data size not matching
// the shape).
func (f *File) WriteTo(w io.Writer) (int64, error) {
	header, err := f.layout()
	if err != nil {
		return 0, err
	}
	var written int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header.json)))
	for _, chunk := range [][]byte{lenBuf[:], header.json} {
		n, err := w.Write(chunk)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	for _, t := range header.order {
		n, err := w.Write(t.Data)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

type encoded struct {
	json  []byte
	order []Tensor
}

// layout validates f and builds the padded header as the reference writer
// does: data ordered by decreasing element size, then name, so that each
// tensor's offset is a multiple of its element size; header entries sorted by
// name after the metadata.
func (f *File) layout() (encoded, error) {
	order := slices.Clone(f.Tensors)
	seen := map[string]bool{}
	for _, t := range order {
		if err := t.check(); err != nil {
			return encoded{}, err
		}
		if seen[t.Name] {
			return encoded{}, fmt.Errorf("tensor name %q appears twice", t.Name)
		}
		seen[t.Name] = true
	}
	slices.SortFunc(order, func(a, b Tensor) int {
		if c := cmp.Compare(b.DType.Size(), a.DType.Size()); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})

	var h bytes.Buffer
	h.WriteByte('{')
	sep := func() {
		if h.Len() > 1 {
			h.WriteByte(',')
		}
	}
	if len(f.Metadata) > 0 {
		for k, v := range f.Metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return encoded{}, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
			}
		}
		meta, err := json.Marshal(f.Metadata) // encoding/json sorts map keys
		if err != nil {
			return encoded{}, err
		}
		h.WriteString(`"` + metadataKey + `":`)
		h.Write(meta)
	}
	begin := make(map[string]int, len(order))
	offset := 0
	for _, t := range order {
		begin[t.Name] = offset
		offset += len(t.Data)
	}
	byName := slices.Clone(order)
	slices.SortFunc(byName, func(a, b Tensor) int { return cmp.Compare(a.Name, b.Name) })
	for _, t := range byName {
		sep()
		name, _ := json.Marshal(t.Name)
		dtype, _ := json.Marshal(string(t.DType))
		shape, _ := json.Marshal(append([]int{}, t.Shape...))
		h.Write(name)
		h.WriteString(`:{"dtype":`)
		h.Write(dtype)
		h.WriteString(`,"shape":`)
		h.Write(shape)
		b := begin[t.Name]
		h.WriteString(`,"data_offsets":[` + strconv.Itoa(b) + "," + strconv.Itoa(b+len(t.Data)) + "]}")
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > MaxHeaderSize {
		return encoded{}, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", h.Len(), MaxHeaderSize)
	}
	return encoded{json: h.Bytes(), order: order}, nil
}
