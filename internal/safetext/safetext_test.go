package safetext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	tests := []struct{ in, line, text string }{
		{"plain text", "plain text", "plain text"},
		{"año, café ✓ 日本", "año, café ✓ 日本", "año, café ✓ 日本"},
		{"\x1b[2J\x1b[Hclear screen", `\x1b[2J\x1b[Hclear screen`, `\x1b[2J\x1b[Hclear screen`},
		{"ok\rFAKE: all checks passed", `ok\rFAKE: all checks passed`, `ok\rFAKE: all checks passed`},
		{"two\nlines\tand tab", `two\nlines\tand tab`, "two\nlines\tand tab"},
		{"bell\a del\x7f nul\x00", `bell\x07 del\x7f nul\x00`, `bell\x07 del\x7f nul\x00`},
		{"c1 \u009b31m", `c1 \u009b31m`, `c1 \u009b31m`},
		{"rtl \u202egnp.exe", `rtl \u202egnp.exe`, `rtl \u202egnp.exe`},
		{"bad utf8 \xff\xfe", `bad utf8 \xff\xfe`, `bad utf8 \xff\xfe`},
		{"osc \x1b]0;title\x07", `osc \x1b]0;title\x07`, `osc \x1b]0;title\x07`},
	}
	for _, tt := range tests {
		if got := Line(tt.in); got != tt.line {
			t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.line)
		}
		if got := Text(tt.in); got != tt.text {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.text)
		}
	}
}

// FuzzEscape: whatever comes in, what goes out is valid UTF-8 with no
// control character (but newline and tab in Text), and clean text is
// returned unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31mred", "a\rb", "\xff", "\u202e", "x\ny\tz", "\u0085", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, multiline := range []bool{false, true} {
			out := escape(s, multiline)
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
			}
			for _, r := range out {
				if multiline && (r == '\n' || r == '\t') {
					continue
				}
				if unicode.IsControl(r) || unsafe(r) {
					t.Fatalf("%q left in %q (from %q)", r, out, s)
				}
			}
			if clean(s, multiline) && out != s {
				t.Fatalf("clean %q changed to %q", s, out)
			}
			if !strings.Contains(s, `\`) && out == s && !clean(s, multiline) {
				t.Fatalf("unclean %q unchanged", s)
			}
		}
	})
}
