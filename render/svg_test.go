package render

import "testing"

func TestNiceMax(t *testing.T) {
	tests := []struct{ v, top, step float64 }{
		{5.21, 6, 1},
		{5200, 6000, 1000},
		{951, 1000, 200},
		{2, 2, 0.5},
		{0.44, 0.5, 0.1},
		{7900, 8000, 2000},
		{1, 1, 0.2},
		{0, 1, 0.2},
	}
	for _, tt := range tests {
		top, step := niceMax(tt.v)
		if top < tt.v || top != tt.top || step != tt.step || top/step > 6.0001 {
			t.Errorf("niceMax(%v) = %v, %v; want %v, %v", tt.v, top, step, tt.top, tt.step)
		}
	}
}

func FuzzChartName(f *testing.F) {
	for _, s := range []string{"alu01", "../../etc/passwd", "a b/c", "ñandú", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := chartName(s, "rps")
		for _, c := range n {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("chartName(%q) = %q", s, n)
			}
		}
	})
}
