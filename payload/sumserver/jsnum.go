package sumserver

import (
	"context"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Cap is the largest n the app sums to, as in the practice's app.
const Cap = 5000000000

// checkEvery is how many loop iterations run between two looks at the
// request's context: about a millisecond of work.
const checkEvery = 1 << 20

// isJSSpace reports whether r is a StrWhiteSpaceChar of ECMA-262: WhiteSpace
// (TAB, VT, FF, ZWNBSP, any Zs) or LineTerminator (LF, CR, LS, PS).
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ',
		0x00A0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// ParseInt is JavaScript's parseInt(s) with no radix (ECMA-262 §19.2.5):
// leading white space, an optional sign, an optional 0x/0X prefix (radix 16),
// then the longest prefix of digits; NaN when there are none. Numbers too
// large for a float64 are ±Inf, and zero keeps its sign (parseInt("-0") is -0).
func ParseInt(s string) float64 {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isJSSpace(r) {
			break
		}
		i += size
	}
	s = s[i:]
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	hex := false
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		hex = true
		s = s[2:]
	}
	end := 0
	for end < len(s) && isDigit(s[end], hex) {
		end++
	}
	if end == 0 {
		return math.NaN()
	}
	z := s[:end]
	var v float64
	if hex {
		// ParseFloat rounds hexadecimal mantissas correctly (to nearest, ties
		// to even), as V8 does; an overflow gives +Inf, which JS gives too.
		v, _ = strconv.ParseFloat("0x"+z+"p0", 64)
	} else {
		v, _ = strconv.ParseFloat(z, 64)
	}
	if neg {
		return -v // -0 for "-0", as in JS
	}
	return v
}

func isDigit(c byte, hex bool) bool {
	if c >= '0' && c <= '9' {
		return true
	}
	if !hex {
		return false
	}
	c |= 0x20 // lower case
	return c >= 'a' && c <= 'f'
}

// FormatNumber formats x as JavaScript's Number::toString(10) does
// (ECMA-262 §6.1.6.1.20): the shortest digits that round-trip, in fixed
// notation when 1e-7 <= |x| < 1e21 and in exponent notation ("1.2e+21",
// "5e-324") otherwise; "NaN", "Infinity", "-Infinity"; both zeros are "0".
func FormatNumber(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	case x == 0:
		return "0"
	}
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
		x = -x
	}
	// Shortest round-trip digits: "d.ddde±XX".
	e := strconv.FormatFloat(x, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	k := len(digits)
	p, _ := strconv.Atoi(exp)
	n := p + 1 // the decimal point sits after n digits
	switch {
	case k <= n && n <= 21:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", n-k))
	case 0 < n && n <= 21:
		b.WriteString(digits[:n])
		b.WriteByte('.')
		b.WriteString(digits[n:])
	case -6 < n && n <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -n))
		b.WriteString(digits)
	default:
		b.WriteByte(digits[0])
		if k > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteByte('e')
		if n-1 >= 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(n - 1))
	}
	return b.String()
}

// Sum runs the practice's loop, capped like the app:
//
//	if (n > 5000000000) n = 5000000000;
//	for (let i = 0; i <= n; i++) { count += i; }
//
// with the same float64 arithmetic, so the result is what Node prints
// (12500000000066986000 for the cap, not the exact 12500000002500000000).
// The loop is the simulated CPU work and is never replaced by a formula.
// It looks at ctx every 2^20 iterations and stops with ctx's error when it is
// done; iterations is how many times the loop body ran.
func Sum(ctx context.Context, n float64) (count float64, iterations int64, err error) {
	if n > Cap {
		n = Cap
	}
	i := 0.0
	for i <= n { // false at once for NaN and negative n
		lim := i + (checkEvery - 1) // exact: i is an integer below 2^33
		if lim > n {
			lim = n
		}
		start := i
		for ; i <= lim; i++ {
			count += i
		}
		iterations += int64(i - start)
		if i <= n {
			if err := ctx.Err(); err != nil {
				return count, iterations, err
			}
		}
	}
	return count, iterations, nil
}
