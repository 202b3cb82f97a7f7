package catch

import (
	"errors"
	"io"
	"testing"
)

func TestError(t *testing.T) {
	if err := Error(func() error { return nil }); err != nil {
		t.Errorf("no panic, no error: got %v", err)
	}
	if err := Error(func() error { return io.EOF }); err != io.EOF {
		t.Errorf("returned error: got %v", err)
	}
	if err := Error(func() error { panic(io.ErrUnexpectedEOF) }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("panic with an error: got %v", err)
	}
	if err := Error(func() error { panic("shape mismatch") }); err == nil || err.Error() != "shape mismatch" {
		t.Errorf("panic with a string: got %v", err)
	}
}
