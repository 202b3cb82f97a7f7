package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDX is a decoded IDX file (the MNIST container format): an unsigned-byte tensor.
type IDX struct {
	Dims []int  // e.g. [60000 28 28] for images, [60000] for labels
	Data []byte // row-major, len = product of Dims
}

// ReadIDX decodes an IDX file of unsigned bytes (type code 0x08), gzip-compressed or not.
// A truncated file, a wrong magic number or an unsupported element type is an error.
func ReadIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReader(r)
	if head, err := br.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("bad gzip header: %w", err)
		}
		defer gz.Close()
		br = bufio.NewReader(gz)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("idx header: %w", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("not an IDX file (magic % x)", magic)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("IDX element type 0x%02x not supported (only unsigned bytes, 0x08)", magic[2])
	}
	nd := int(magic[3])
	if nd == 0 || nd > 4 {
		return nil, fmt.Errorf("IDX with %d dimensions not supported", nd)
	}
	dims := make([]int, nd)
	size := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("idx dimensions: %w", err)
		}
		if d == 0 || d > 1<<24 {
			return nil, fmt.Errorf("implausible IDX dimension %d", d)
		}
		dims[i] = int(d)
		size *= int(d)
		if size > 1<<31 {
			return nil, fmt.Errorf("IDX tensor %v too large", dims)
		}
	}
	data := make([]byte, size)
	if n, err := io.ReadFull(br, data); err != nil {
		return nil, fmt.Errorf("truncated IDX data: got %d of %d bytes (%v)", n, size, err)
	}
	// Trailing bytes mean the header lies about the size; reading one more byte also makes gzip
	// check its CRC, which catches corruption inside the compressed stream.
	n, err := io.Copy(io.Discard, br)
	if err != nil {
		return nil, fmt.Errorf("corrupt or truncated compressed data: %w", err)
	}
	if n != 0 {
		return nil, fmt.Errorf("IDX file has %d bytes beyond its %v tensor", n, dims)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// ReadIDXFile is ReadIDX on a file.
func ReadIDXFile(path string) (*IDX, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	idx, err := ReadIDX(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return idx, nil
}
