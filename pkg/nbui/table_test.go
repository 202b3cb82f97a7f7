package nbui

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

func TestTableHTMLEscapes(t *testing.T) {
	got := TableHTML([]string{"name", "<b>params</b>"},
		[][]string{{`<script>alert("x")</script>`, "1024"}, {"a & b", "12.5%"}, {"short"}})
	for _, bad := range []string{"<script>", "<b>params", "a & b"} {
		if strings.Contains(got, bad) {
			t.Errorf("unescaped %q in\n%s", bad, got)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
		"&lt;b&gt;params&lt;/b&gt;",
		"a &amp; b",
		`<td style="text-align:right;padding:2px 10px">1024</td>`,  // numbers right-aligned
		`<td style="text-align:right;padding:2px 10px">12.5%</td>`, // percentages too
		`<td style="text-align:left;padding:2px 10px">short</td><td style="text-align:left;padding:2px 10px"></td></tr>`, // padded
	} {
		if !strings.Contains(got, want) {
			t.Errorf("TableHTML lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "<tr>"); n != 4 {
		t.Errorf("%d rows, want 4 (header and 3)", n)
	}
}

func TestTableText(t *testing.T) {
	var b bytes.Buffer
	WriteTableText(&b, []string{"adapter", "params"}, [][]string{{"lora", "512"}, {"tab\there", "8"}})
	want := "adapter   params\nlora      512\ntab here  8\n"
	if b.String() != want {
		t.Errorf("text table:\n%q\nwant\n%q", b.String(), want)
	}
}

// Outside a notebook Table prints the text table to stdout.
func TestTableOutsideNotebook(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	Table([]string{"a"}, [][]string{{"1"}})
	os.Stdout = saved
	w.Close()
	got, _ := io.ReadAll(r)
	if string(got) != "a\n1\n" {
		t.Errorf("Table outside a notebook printed %q", got)
	}
}
