// Package safetext makes text that came from a VM (a student controls it)
// safe to show: on a terminal line, in a spreadsheet cell, in a feedback
// file. Control characters (C0 and C1, DEL, carriage return, escape
// sequences' ESC), Unicode direction overrides and invalid UTF-8 become
// visible escapes (\x1b, \u202e, \xff), so such text can neither clear the
// teacher's screen, move the cursor, forge lines of output nor reorder what
// is shown. Printable text, accents included, is left as it is.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line escapes s for one line: newlines and tabs are escaped too.
func Line(s string) string { return escape(s, false) }

// Text escapes s for a multi-line text (a feedback file, a sheet cell that
// wraps): newlines and tabs are kept, everything else as in Line.
func Text(s string) string { return escape(s, true) }

// Lines escapes each of lines with Line.
func Lines(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = Line(l)
	}
	return out
}

func escape(s string, multiline bool) string {
	if clean(s, multiline) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && unsafe(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clean reports whether s needs no escaping (the common case: no copy).
func clean(s string, multiline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return cleanUnicode(s[i:], multiline)
		}
		if c < 0x20 || c == 0x7f {
			if multiline && (c == '\n' || c == '\t') {
				continue
			}
			return false
		}
	}
	return true
}

func cleanUnicode(s string, multiline bool) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return false
			}
		}
		if (r == '\n' || r == '\t') && multiline {
			continue
		}
		if r == '\n' || r == '\t' || r == '\r' || unsafe(r) {
			return false
		}
	}
	return true
}

// unsafe: controls, and the format characters that change how text around
// them is shown (direction overrides and isolates, zero-width joiners
// used to hide text are harmless and kept).
func unsafe(r rune) bool {
	if unicode.IsControl(r) {
		return true
	}
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r == 0xfeff:
		return true
	}
	return false
}
