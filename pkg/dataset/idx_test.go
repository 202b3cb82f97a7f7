package dataset

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func idxBytes(dims []int, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = append(b, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
	}
	return append(b, data...)
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestReadIDX(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6}
	for _, raw := range [][]byte{idxBytes([]int{3, 2}, data), gzipped(idxBytes([]int{3, 2}, data))} {
		idx, err := ReadIDX(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if len(idx.Dims) != 2 || idx.Dims[0] != 3 || idx.Dims[1] != 2 || !bytes.Equal(idx.Data, data) {
			t.Errorf("got %v %v", idx.Dims, idx.Data)
		}
	}
}

func TestReadIDXRejectsDamage(t *testing.T) {
	good := idxBytes([]int{3, 2}, []byte{1, 2, 3, 4, 5, 6})
	gz := gzipped(good)
	flipped := bytes.Clone(gz)
	flipped[len(flipped)-6] ^= 0xff // inside the CRC/size trailer or last block
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"truncated":    {good[:len(good)-2], "truncated"},
		"trailing":     {append(bytes.Clone(good), 9), "beyond"},
		"bad magic":    {append([]byte{1, 2}, good[2:]...), "not an IDX"},
		"float type":   {append([]byte{0, 0, 0x0d}, good[3:]...), "not supported"},
		"truncated gz": {gz[:len(gz)-10], ""},
		"corrupt gz":   {flipped, ""},
		"empty":        {nil, "header"},
		"zero dim":     {idxBytes([]int{0}, nil), "implausible"},
	}
	for name, c := range cases {
		_, err := ReadIDX(bytes.NewReader(c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}
