package tasks

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"

	"github.com/peftlab/peftlab/pkg/dataset"
)

var (
	brTag    = regexp.MustCompile(`(?i)<br\s*/?>`)
	anyTag   = regexp.MustCompile(`(?s)<[^>]*>`)
	htmlHead = regexp.MustCompile(`(?is)<(style|script|head)[^>]*>.*?</(style|script|head)>`)
	spaces   = regexp.MustCompile(`\s+`)
)

// cleanReview removes IMDB's HTML line breaks and extra white space.
func cleanReview(s string) string {
	return strings.TrimSpace(spaces.ReplaceAllString(brTag.ReplaceAllString(s, " "), " "))
}

// maxMailChars bounds a mail's text: beyond it nothing reaches a 128-token model anyway, and
// tokenizing it would only cost time.
const maxMailChars = 2000

// mailText is a mail as a model reads it: "subject: ..." and the body text. MIME is decoded
// (multipart: the first text/plain part, else the first text/html part; base64 and
// quoted-printable transfer encodings), HTML is stripped and white space collapsed. Mails that
// do not parse are used raw after the headers, stripped the same way.
func mailText(m dataset.Mail) string {
	body := m.Body()
	if msg, err := mail.ReadMessage(strings.NewReader(strings.ReplaceAll(m.Text, "\r\n", "\n"))); err == nil {
		if text, ok := mimeText(textproto.MIMEHeader(msg.Header), msg.Body, 0); ok {
			body = text
		}
	}
	body = htmlHead.ReplaceAllString(body, " ")
	body = anyTag.ReplaceAllString(body, " ")
	body = html.UnescapeString(body)
	subject := m.Subject()
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec // =?iso-8859-1?Q?...?= encoded words
	}
	text := "subject: " + subject + " " + body
	text = strings.TrimSpace(spaces.ReplaceAllString(text, " "))
	return truncateText(text, maxMailChars)
}

// mimeText extracts the readable text of a MIME entity (see mailText).
func mimeText(h textproto.MIMEHeader, body io.Reader, depth int) (string, bool) {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mediaType = "text/plain" // RFC 2045's default, and what most 2002 mails without the header are
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth > 4 || params["boundary"] == "" {
			return "", false
		}
		mr := multipart.NewReader(body, params["boundary"])
		var htmlText string
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				break
			}
			text, ok := mimeText(part.Header, part, depth+1)
			if !ok {
				continue
			}
			pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
			if pt == "text/html" {
				if htmlText == "" {
					htmlText = text
				}
				continue
			}
			return text, true
		}
		return htmlText, htmlText != ""
	}
	if !strings.HasPrefix(mediaType, "text/") {
		return "", false
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // it skips the line breaks itself
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil && len(b) == 0 {
		return "", false
	}
	return string(bytes.ToValidUTF8(b, []byte(" "))), true
}

// truncateText cuts s to at most n bytes, at a space when there is one near the end.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	if sp := strings.LastIndexByte(s[:cut], ' '); sp > n*3/4 {
		cut = sp
	}
	return s[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
