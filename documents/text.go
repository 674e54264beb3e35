package documents

import (
	"fmt"
	"html"
	"io"
	"os"
	"regexp"
	"strings"
)

var (
	mdHeadingRe   = regexp.MustCompile(`^(#{1,6})\s+(.+?)\s*#*\s*$`)
	mdImageRe     = regexp.MustCompile(`!\[([^\]]*)\]\(([^)\s]+)`)
	htmlDropRe    = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	htmlHeadingRe = regexp.MustCompile(`(?is)<h([1-6])\b[^>]*>(.*?)</h[1-6]\s*>`)
	htmlBlockRe   = regexp.MustCompile(`(?i)</?(p|div|br|li|tr|h[1-6]|pre|table|ul|ol|section|article|figure|figcaption|blockquote)\b[^>]*>`)
	htmlTagRe     = regexp.MustCompile(`(?s)<[^>]*>`)
	htmlCaptionRe = regexp.MustCompile(`(?is)<figcaption\b[^>]*>(.*?)</figcaption\s*>`)
)

// extractText reads Markdown, plain text and HTML: one page; a form feed
// starts a new one.
func extractText(f File, doc *Document, o ExtractOptions) {
	fh, err := os.Open(f.Path)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: %v", f.Name, err))
		return
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(o.MaxTextBytes)))
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: %v", f.Name, err))
		return
	}
	s := string(b)
	switch doc.Format {
	case "html":
		s = htmlText(s, doc)
	case "md":
		for _, l := range strings.Split(s, "\n") {
			if m := mdHeadingRe.FindStringSubmatch(l); m != nil {
				doc.Headings = append(doc.Headings, Heading{Text: strings.TrimSpace(m[2]), Page: 1, Level: len(m[1])})
			}
		}
	}
	for i, p := range strings.Split(s, "\f") {
		doc.Pages = append(doc.Pages, Page{N: i + 1, Text: sanitize(p)})
	}
	if doc.Format == "md" {
		for _, m := range mdImageRe.FindAllStringSubmatch(s, -1) {
			// Pictures referenced by a Markdown file are not inside it: their
			// alt text is the caption.
			if strings.TrimSpace(m[1]) != "" {
				doc.Captions = append(doc.Captions, Line{Text: strings.TrimSpace(m[1]), Page: 1})
			}
		}
	}
	doc.TextLayer = doc.Words() > 0
}

// htmlText turns HTML into text (Moodle's online text is HTML), recording
// headings and captions.
func htmlText(s string, doc *Document) string {
	s = htmlDropRe.ReplaceAllString(s, " ")
	for _, m := range htmlHeadingRe.FindAllStringSubmatch(s, 200) {
		t := strings.TrimSpace(html.UnescapeString(htmlTagRe.ReplaceAllString(m[2], " ")))
		if t != "" {
			doc.Headings = append(doc.Headings, Heading{Text: strings.Join(strings.Fields(t), " "), Page: 1, Level: int(m[1][0] - '0')})
		}
	}
	for _, m := range htmlCaptionRe.FindAllStringSubmatch(s, 500) {
		t := strings.TrimSpace(html.UnescapeString(htmlTagRe.ReplaceAllString(m[1], " ")))
		if t != "" && !captionRe.MatchString(t) {
			doc.Captions = append(doc.Captions, Line{Text: strings.Join(strings.Fields(t), " "), Page: 1})
		}
	}
	s = htmlBlockRe.ReplaceAllString(s, "\n")
	s = htmlTagRe.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}
