package loadtestfmt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// TestParseGolden parses every loadtest sample in testdata (captured ones
// and ones built from loadtest's source formats, see testdata/README.md)
// and compares the result document with its golden JSON.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/v*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			out, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			version := ""
			if v, _, ok := strings.Cut(strings.TrimPrefix(name, "v"), "_"); ok && strings.Count(v, ".") == 2 {
				version = v
			}
			res, err := Parse(out, version)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := loadgen.WriteJSON(&b, res); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".golden.json"), b.Bytes())
		})
	}
}

// TestParseFields spells out the key figures of each format, so that the
// golden files are not the only check.
func TestParseFields(t *testing.T) {
	for _, tc := range []struct {
		file        string
		format      string
		concurrency int
		keepAlive   bool
		completed   int64
		errs        loadgen.Errors
		rps, target float64
		cores       int
		limit       float64
		p50, max    float64
	}{
		{"v5.2.0_api500000_n1000_c100", FormatV5, 100, false, 1000, loadgen.Errors{}, 963, 0, 0, 0, 95000, 138000},
		{"v5.2.0_api50_n2000_c10_rps200_errors", FormatV5, 10, false, 2000, loadgen.Errors{Total: 4, Other: 4}, 200, 200, 0, 0, 1000, 17000},
		{"v6_root_n10000_c100", FormatV6, 100, false, 10000, loadgen.Errors{}, 3038, 0, 0, 0, 31000, 88000},
		{"v6_api500000_rps100_c3_t10_errors", FormatV6, 3, true, 998, loadgen.Errors{Total: 23, Status: 20, Other: 3}, 100, 100, 0, 10, 2000, 31000},
		{"v7.0.0_api500000_n2000_c10_rps100", FormatV7, 10, false, 2000, loadgen.Errors{}, 100, 100, 2, 0, 3000, 23000},
		{"v8.2.1_api500000_n1000_c100", FormatV7, 100, false, 1000, loadgen.Errors{}, 953, 0, 0, 0, 98000, 127000},
		{"v8.2.1_root_n10000_c100_k", FormatV7, 100, true, 10000, loadgen.Errors{}, 3388, 0, 0, 0, 28000, 85000},
		{"v8.2.1_root_t20_c100_rps500_cores2_errors", FormatV7, 200, false, 9987, loadgen.Errors{Total: 341, Status: 41, Other: 300}, 499, 500, 2, 20, 1000, 1021000},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tc.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(out, "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Tool.Format != tc.format || r.Concurrency != tc.concurrency || r.KeepAlive != tc.keepAlive ||
				r.Completed != tc.completed || r.Errors != tc.errs || r.OK != tc.completed-tc.errs.Total ||
				r.RPS != tc.rps || r.RPSTarget != tc.target || r.Cores != tc.cores || r.TimeLimitS != tc.limit {
				t.Errorf("got format %s c %d k %v completed %d ok %d errors %+v rps %v target %v cores %d limit %v",
					r.Tool.Format, r.Concurrency, r.KeepAlive, r.Completed, r.OK, r.Errors, r.RPS, r.RPSTarget, r.Cores, r.TimeLimitS)
			}
			if r.Latency == nil || r.Latency.P50 != tc.p50 || r.Latency.Max != tc.max {
				t.Errorf("latency %+v, want p50 %v max %v", r.Latency, tc.p50, tc.max)
			}
			if r.Latency.P999 != nil || r.Latency.Min != nil || r.Latency.StdDev != nil {
				t.Error("p999, min, stddev must be absent: loadtest does not print them")
			}
			if r.Schema != loadgen.Schema || r.Tool.Name != "loadtest" || r.LatencyResolutionUS != 1000 || r.CoordinatedOmissionCorrected {
				t.Errorf("header fields %+v %v", r.Tool, r.Schema)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	good := read("v8.2.1_api500000_n1000_c100.txt")
	for _, tc := range []struct {
		name, text, want string
		notLoadtest      bool
	}{
		{"empty", "", "no \"Target URL:\" line", true},
		{"wrk output", read("bad_wrk.txt"), "not loadtest output", true},
		{"npm error", "npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry/loadtestt\n", "not loadtest output", true},
		{"truncated", read("bad_truncated.txt"), "missing Effective rps (or Requests per second), 50% percentile, 90% percentile, 95% percentile, 99% percentile, 100% percentile", false},
		{"bad number", strings.Replace(good, "Completed requests:  1000", "Completed requests:  many", 1), "bad value", false},
		{"more errors than requests", strings.Replace(good, "Total errors:        0", "Total errors:        1001", 1), "inconsistent", false},
		{"error lines above total", good + "\n  500:   3 errors\n", "error lines add up to 3", false},
		{"duplicate field", strings.Replace(good, "Agent:", "Completed requests:  5\nAgent:", 1), "appears twice", false},
		{"two maxima", good + " 100%      300 ms (longest request)\n", "two values", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.text), "")
			if err == nil {
				t.Fatalf("no error; result %+v", r)
			}
			if r != nil {
				t.Error("a result came with the error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if errors.Is(err, ErrNotLoadtest) != tc.notLoadtest {
				t.Errorf("errors.Is(err, ErrNotLoadtest) = %v", !tc.notLoadtest)
			}
		})
	}
}

func TestParseNoRequests(t *testing.T) {
	// A run cut before any request completed prints NaN and false.
	text := "\nTarget URL:          http://localhost:3000/\nMax time (s):        1\nConcurrent clients:  10\nAgent:               none\n\n" +
		"Completed requests:  0\nTotal errors:        0\nTotal time:          1.001 s\nMean latency:        NaN ms\nEffective rps:       0\n\n" +
		"Percentage of requests served within a certain time\n  50%      false ms\n  90%      false ms\n  95%      false ms\n  99%      false ms\n 100%      0 ms (longest request)\n"
	r, err := Parse([]byte(text), "8.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 0 || r.Latency != nil || r.Tool.Version != "8.2.1" {
		t.Errorf("got %+v", r)
	}
}

func TestParseCRLFAndLastSummary(t *testing.T) {
	// Two runs in one log, Windows line ends: the last summary counts.
	a, _ := os.ReadFile("testdata/v6_root_n10000_c100.txt")
	b, _ := os.ReadFile("testdata/v8.2.1_root_n10000_c100_k.txt")
	text := strings.ReplaceAll(string(a)+string(b), "\n", "\r\n")
	r, err := Parse([]byte(text), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Tool.Format != FormatV7 || r.RPS != 3388 || !r.KeepAlive {
		t.Errorf("got %+v", r)
	}
}
