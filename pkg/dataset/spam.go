package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mail is one message of the SpamAssassin public corpus.
type Mail struct {
	ID    string // e.g. "00001"
	Group string // easy-ham-1, easy-ham-2, hard-ham-1, spam-1 or spam-2
	Spam  bool
	Text  string // the raw message: headers, blank line, body (possibly HTML or quoted-printable)
}

// Subject returns the Subject header, unfolded.
func (m Mail) Subject() string {
	head, _ := splitMail(m.Text)
	lines := strings.Split(head, "\n")
	for i, l := range lines {
		if len(l) >= 8 && strings.EqualFold(l[:8], "subject:") {
			s := strings.TrimSpace(l[8:])
			for _, cont := range lines[i+1:] {
				if cont == "" || (cont[0] != ' ' && cont[0] != '\t') {
					break
				}
				s += " " + strings.TrimSpace(cont)
			}
			return s
		}
	}
	return ""
}

// Body returns the message after its headers, undecoded.
func (m Mail) Body() string {
	_, body := splitMail(m.Text)
	return body
}

func splitMail(text string) (head, body string) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if h, b, ok := strings.Cut(text, "\n\n"); ok {
		return h, b
	}
	return text, ""
}

// SpamAssassin loads the 6,046 mails (4,150 ham, 1,896 spam) in the package's file order. (The
// per-message MD5s in the corpus are of the original bytes, which the package decoded lossily
// for 501 messages, so they cannot be checked; the install's tarball checksum covers the files.)
func SpamAssassin() ([]Mail, error) {
	dir, err := open("spam")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", "file_list.json"))
	if err != nil {
		return nil, damaged("spam", err)
	}
	var files []string
	if err := json.Unmarshal(b, &files); err != nil {
		return nil, damaged("spam", fmt.Errorf("file_list.json: %w", err))
	}
	out := make([]Mail, 0, len(files))
	for _, f := range files {
		name := strings.TrimSuffix(f, ".txt") + ".json"
		if strings.Contains(name, "..") {
			return nil, damaged("spam", fmt.Errorf("file_list.json: bad name %q", f))
		}
		b, err := os.ReadFile(filepath.Join(dir, "data", filepath.FromSlash(name)))
		if err != nil {
			return nil, damaged("spam", err)
		}
		var raw struct {
			ID    string `json:"id"`
			Group string `json:"group"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, damaged("spam", fmt.Errorf("%s: %w", name, err))
		}
		if raw.Group == "" || raw.Text == "" {
			return nil, damaged("spam", fmt.Errorf("%s: no group or no text", name))
		}
		out = append(out, Mail{ID: raw.ID, Group: raw.Group, Spam: strings.HasPrefix(raw.Group, "spam"), Text: raw.Text})
	}
	return out, nil
}
