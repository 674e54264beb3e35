package sumserver

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseInt(t *testing.T) {
	negZero := math.Copysign(0, -1)
	nan := math.NaN()
	tests := []struct {
		in   string
		want float64
	}{
		{"0", 0},
		{"42", 42},
		{"12abc", 12},
		{"0x10", 16},
		{"0X1f", 31},
		{"0x", nan},
		{"0xg", nan},
		{"-0x10", -16},
		{"+0x10", 16},
		{" 42", 42},
		{"\t\n\v\f\r 42", 42},
		{"\u00a042", 42},
		{"\ufeff42", 42},
		{"\u2028\u2029\u1680\u2000\u200a\u202f\u205f\u3000 7", 7},
		{"\u180e7", nan}, // not white space since Unicode 6.3
		{"\u200b7", nan}, // zero width space is not white space
		{"1e3", 1},
		{"3.9", 3},
		{".5", nan},
		{"+7", 7},
		{"-5", -5},
		{"-0", negZero},
		{"+-5", nan},
		{"- 5", nan},
		{"abc", nan},
		{"", nan},
		{"Infinity", nan},
		{"５", nan}, // full-width digits are not digits
		{"5000000000", 5000000000},
		{"99999999999999999999999", 1e23},
		{strings.Repeat("9", 400), math.Inf(1)},
		{"-" + strings.Repeat("9", 400), math.Inf(-1)},
		{"0x" + strings.Repeat("f", 300), math.Inf(1)},
		{"0x1fffffffffffff", 9007199254740991},
		{"0x20000000000001", 9007199254740992}, // ties to even
		{"0x20000000000003", 9007199254740996},
		{"9007199254740993", 9007199254740992},
		{"00012", 12},
		{"0b11", 0},
		{"0o7", 0},
	}
	for _, tt := range tests {
		got := ParseInt(tt.in)
		if !sameNumber(got, tt.want) {
			t.Errorf("ParseInt(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// sameNumber is Object.is: NaN is NaN, -0 is not 0.
func sameNumber(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}

var tenth = 0.1 // a variable, so that 0.1+0.2 is not constant-folded to 0.3

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
		{1, "1"},
		{-1, "-1"},
		{15, "15"},
		{0.1, "0.1"},
		{tenth + 0.2, "0.30000000000000004"},
		{1.5, "1.5"},
		{-2.25, "-2.25"},
		{1e21, "1e+21"},
		{1.2e21, "1.2e+21"},
		{999999999999999900000, "999999999999999900000"},
		{1e20, "100000000000000000000"},
		{12500000000066986000, "12500000000066986000"},
		{1.2500000002500002e+19, "12500000002500002000"},
		{5000000050000000, "5000000050000000"},
		{125000250000, "125000250000"},
		{500000000067109000, "500000000067109000"},
		{5e-7, "5e-7"},
		{1e-7, "1e-7"},
		{1.5e-7, "1.5e-7"},
		{1e-6, "0.000001"},
		{1.25e-6, "0.00000125"},
		{123.456, "123.456"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{-1e300, "-1e+300"},
		{9007199254740993, "9007199254740992"},
		{4.35, "4.35"},
		{0.000123, "0.000123"},
		{100, "100"},
	}
	for _, tt := range tests {
		if got := FormatNumber(tt.in); got != tt.want {
			t.Errorf("FormatNumber(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSum(t *testing.T) {
	tests := []struct {
		n     float64
		want  string
		iters int64
	}{
		{math.NaN(), "0", 0},
		{-5, "0", 0},
		{math.Copysign(0, -1), "0", 1},
		{0, "0", 1},
		{3.9, "6", 4},
		{12, "78", 13},
		{50, "1275", 51},
		{500000, "125000250000", 500001},
		{checkEvery - 1, FormatNumber(float64(checkEvery-1) * checkEvery / 2), checkEvery},
		{checkEvery, FormatNumber(float64(checkEvery) * (checkEvery + 1) / 2), checkEvery + 1},
		{3*checkEvery + 5.5, FormatNumber((3*checkEvery + 5) * (3*checkEvery + 6) / 2), 3*checkEvery + 6},
	}
	for _, tt := range tests {
		got, iters, err := Sum(context.Background(), tt.n)
		if err != nil {
			t.Fatalf("Sum(%v): %v", tt.n, err)
		}
		if FormatNumber(got) != tt.want || iters != tt.iters {
			t.Errorf("Sum(%v) = %s after %d iterations, want %s after %d", tt.n, FormatNumber(got), iters, tt.want, tt.iters)
		}
	}
}

func TestSumStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, iters, err := Sum(ctx, Cap)
	if err == nil || iters > checkEvery {
		t.Fatalf("Sum with a cancelled context ran %d iterations, err %v; want at most %d and an error", iters, err, checkEvery)
	}
}

func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"12abc", "0x10", " 42", "\u00a0-7", "1e3", "3.9", "+7", "-0", "abc", "", "0x", "\ufeff0XfF", strings.Repeat("9", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := ParseInt(s)
		// Leading JS white space never changes the answer.
		if w := ParseInt("\u3000\t" + s); !sameNumber(v, w) {
			t.Errorf("ParseInt(%q) = %v but with leading space %v", s, v, w)
		}
		// Trailing garbage after the digits never changes it either.
		if w := ParseInt(s + "z"); !sameNumber(v, w) && !strings.HasSuffix(strings.TrimSpace(s), "0x") && !strings.HasSuffix(strings.TrimSpace(s), "0X") {
			t.Errorf("ParseInt(%q) = %v but ParseInt(%q) = %v", s, v, s+"z", w)
		}
		// A NaN answer means no digit right after the white space and sign.
		if !math.IsNaN(v) && v != math.Trunc(v) {
			t.Errorf("ParseInt(%q) = %v is not an integer", s, v)
		}
		// The sum's text for it parses back.
		count, _, err := Sum(context.Background(), math.Min(v, 2000))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := strconv.ParseFloat(FormatNumber(count), 64); err != nil {
			t.Errorf("FormatNumber(%v) = %q: %v", count, FormatNumber(count), err)
		}
	})
}

func FuzzFormatNumber(f *testing.F) {
	for _, x := range []float64{0, 1, 0.1, 1e21, 1.2500000002500002e+19, 5e-7, 1e-7, 5e-324, math.MaxFloat64, 123.456, -42} {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		s := FormatNumber(x)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != x && !(x == 0 && back == 0) {
			t.Fatalf("FormatNumber(%v) = %q does not round-trip (%v, %v)", x, s, back, err)
		}
		abs := math.Abs(x)
		hasExp := strings.Contains(s, "e")
		if wantExp := abs != 0 && (abs < 1e-6 || abs >= 1e21); hasExp != wantExp {
			t.Fatalf("FormatNumber(%v) = %q: exponent form %v, want %v", x, s, hasExp, wantExp)
		}
		// No more digits than Go's shortest representation.
		digits := strings.TrimLeft(strings.Split(strings.TrimLeft(strconv.FormatFloat(abs, 'e', -1, 64), "-"), "e")[0], "0")
		digits = strings.ReplaceAll(digits, ".", "")
		got := strings.Trim(strings.Split(strings.ReplaceAll(strings.TrimLeft(s, "-"), ".", ""), "e")[0], "0")
		if strings.TrimRight(digits, "0") != got {
			t.Fatalf("FormatNumber(%v) = %q: digits %q, want %q", x, s, got, digits)
		}
	})
}
