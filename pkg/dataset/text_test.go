package dataset

import (
	"reflect"
	"testing"
)

func TestSplitFortunes(t *testing.T) {
	got := splitFortunes("A quote.\n\t-- Someone\n%\n\n%\nSecond\nline\n%\n")
	want := []string{"A quote.\n\t-- Someone", "Second\nline"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMailParts(t *testing.T) {
	m := Mail{Text: "From: a@b\r\nSubject: Hello\r\n  there\r\nTo: c@d\r\n\r\nBody line\r\n\r\nmore"}
	if s := m.Subject(); s != "Hello there" {
		t.Errorf("Subject() = %q", s)
	}
	if b := m.Body(); b != "Body line\n\nmore" {
		t.Errorf("Body() = %q", b)
	}
	if s := (Mail{Text: "no headers at all"}).Subject(); s != "" {
		t.Errorf("Subject of headerless mail = %q", s)
	}
}
