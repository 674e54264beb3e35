// Package loadtestfmt parses the text summary that npm loadtest prints into
// loadgen's result document (schema deploylab.loadgen/v1), so that runs of
// the practice's own tool can be stored and compared with loadgen's.
//
// Three formats exist, all handled:
//
//   - v7 and later: "Concurrent clients:" (or, in early 7.x, "Concurrency
//     level:"), optional "Running on cores:" and "Target rps:", "Effective
//     rps:", "Percentage of requests served within a certain time";
//   - v6: "Concurrency level:", "Requests per second:" printed twice with
//     --rps (the target, then the effective rate), "Percentage of the
//     requests served within a certain time";
//   - v5 and earlier: v6's text with a "[date] INFO " prefix on every line,
//     and the "100%" line printed twice when there were errors.
//
// loadtest's percentiles are whole milliseconds (rounded down); they are
// stored in microseconds with latency_resolution_us = 1000. Its error code
// -1 (connection failed, reset or timed out) is counted under errors.other;
// HTTP codes under errors.status and status_codes.
package loadtestfmt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/deploylab/deploylab/payload/loadgen"
)

// Output formats, written to Result.Tool.Format.
const (
	FormatV5 = "v5"
	FormatV6 = "v6"
	FormatV7 = "v7"
)

// ErrNotLoadtest is returned (wrapped) when the text holds no loadtest
// summary at all.
var ErrNotLoadtest = errors.New("not loadtest output")

var (
	// v5's log module: "[Sun Nov 22 2026 10:22:34 GMT+0000 (...)] INFO ".
	logPrefix = regexp.MustCompile(`^\[[^\]]*\] (?:INFO|NOTICE|WARNING|ERROR|DEBUG|CRITICAL|ALERT|EMERGENCY) ?`)
	// "  50%      98 ms", " 100%      127 ms (longest request)".
	percentileLine = regexp.MustCompile(`^\s*(\d+)%\s+(\S+) ms(\s+\(longest request\))?$`)
	// "  500:   12 errors", "   -1:   9 errors".
	errorLine = regexp.MustCompile(`^\s*(-?[0-9A-Za-z_]+):\s+(\d+) errors$`)
	// "Completed requests:  1000".
	fieldLine = regexp.MustCompile(`^([A-Z][A-Za-z ()]*?):\s+(.*)$`)
)

// Parse reads loadtest's output (the whole of stdout, progress lines
// included) and returns its summary as a result. version is loadtest's
// version when the caller knows it ("8.2.1"), or "". Text that is not a
// complete loadtest summary gives an error saying what is missing, never a
// zero result. When the output holds several summaries, the last is used.
func Parse(out []byte, version string) (*loadgen.Result, error) {
	var lines []string
	prefixed := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if loc := logPrefix.FindStringIndex(line); loc != nil {
			line = line[loc[1]:]
			prefixed = true
		}
		lines = append(lines, strings.TrimRight(line, " \t"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read loadtest output: %w", err)
	}
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "Target URL:") {
			start = i
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: no \"Target URL:\" line", ErrNotLoadtest)
	}
	p := &parser{
		res: &loadgen.Result{
			Schema:              loadgen.Schema,
			Tool:                loadgen.Tool{Name: "loadtest", Version: version},
			StatusCodes:         map[int]int64{},
			LatencyResolutionUS: 1000,
		},
		pct: map[int]float64{},
	}
	for i, l := range lines[start:] {
		if err := p.line(l); err != nil {
			return nil, fmt.Errorf("loadtest output line %d %q: %w", start+i+1, l, err)
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	switch {
	case p.seen["Effective rps"]:
		p.res.Tool.Format = FormatV7
	case prefixed:
		p.res.Tool.Format = FormatV5
	default:
		p.res.Tool.Format = FormatV6
	}
	return p.res, nil
}

type parser struct {
	res         *loadgen.Result
	seen        map[string]bool
	pct         map[int]float64 // percent → µs; 100 = max
	pctFalse    bool            // a percentile printed as "false" (no data)
	mean        float64
	meanNaN     bool
	inResults   bool // past "Completed requests:"
	errorsFound int64
}

func (p *parser) mark(key string) error {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[key] {
		return fmt.Errorf("%q appears twice", key)
	}
	p.seen[key] = true
	return nil
}

func (p *parser) line(l string) error {
	if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "Percentage of") {
		return nil
	}
	if m := percentileLine.FindStringSubmatch(l); m != nil {
		pc, _ := strconv.Atoi(m[1])
		if m[2] == "false" {
			p.pctFalse = true
			return nil
		}
		v, err := msToUS(m[2])
		if err != nil {
			return err
		}
		if old, ok := p.pct[pc]; ok && old != v {
			// v5 prints the 100% line twice, with the same value.
			return fmt.Errorf("two values for the %d%% percentile", pc)
		}
		if (m[3] != "") != (pc == 100) {
			return errors.New("unexpected percentile line")
		}
		p.pct[pc] = v
		return nil
	}
	if m := errorLine.FindStringSubmatch(l); m != nil {
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			return err
		}
		p.errorsFound += n
		if code, err := strconv.Atoi(m[1]); err == nil && code >= 100 && code <= 999 {
			p.res.StatusCodes[code] += n
			p.res.Errors.Status += n
		} else {
			p.res.Errors.Other += n
		}
		return nil
	}
	m := fieldLine.FindStringSubmatch(l)
	if m == nil {
		// Text after the summary (a shell prompt, a script's own output)
		// is not ours to judge; the required fields are checked at the end.
		return nil
	}
	key, val := m[1], strings.TrimSpace(m[2])
	r := p.res
	var err error
	switch key {
	case "Target URL":
		r.URL = val
	case "Max requests":
		r.Requests, err = strconv.ParseInt(val, 10, 64)
	case "Max time (s)":
		r.TimeLimitS, err = strconv.ParseFloat(val, 64)
	case "Concurrency level", "Concurrent clients":
		key = "concurrency"
		r.Concurrency, err = strconv.Atoi(val)
	case "Running on cores":
		r.Cores, err = strconv.Atoi(val)
	case "Agent":
		// "none", "keepalive", or "tcp" (raw sockets, v8): only keepalive
		// reuses connections.
		r.KeepAlive = val == "keepalive"
	case "Target rps":
		r.RPSTarget, err = parseRate(val)
	case "Requests per second":
		// v5/v6: before the results it is the target (--rps), after them
		// the effective rate.
		if !p.inResults {
			key = "Target rps"
			r.RPSTarget, err = parseRate(val)
		} else {
			key = "Effective rate"
			r.RPS, err = parseRate(val)
		}
	case "Effective rps":
		if err = p.mark("Effective rate"); err != nil {
			return err
		}
		r.RPS, err = parseRate(val)
	case "Completed requests":
		p.inResults = true
		r.Completed, err = strconv.ParseInt(val, 10, 64)
	case "Total errors":
		r.Errors.Total, err = strconv.ParseInt(val, 10, 64)
	case "Total time":
		s, ok := strings.CutSuffix(val, " s")
		if !ok {
			return errors.New("want seconds (\"1.049 s\")")
		}
		r.DurationS, err = strconv.ParseFloat(s, 64)
	case "Mean latency":
		s, ok := strings.CutSuffix(val, " ms")
		if !ok {
			return errors.New("want milliseconds (\"98 ms\")")
		}
		if s == "NaN" {
			p.meanNaN = true
			break
		}
		p.mean, err = msToUS(s)
	default:
		return nil // a field this parser does not know: keep going
	}
	if err != nil {
		return fmt.Errorf("bad value: %w", err)
	}
	return p.mark(key)
}

func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	// --rps 100 with -c 3 prints 100.00000000000001 in v5/v6.
	return round(v, 6), nil
}

// msToUS converts a millisecond figure as printed ("28.7") to microseconds.
func msToUS(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad milliseconds %q", s)
	}
	return round(v*1000, 3), nil
}

func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// finish checks that the summary was complete and fills the derived fields.
func (p *parser) finish() error {
	r := p.res
	var missing []string
	for _, f := range []struct{ key, label string }{
		{"Target URL", "Target URL"},
		{"concurrency", "Concurrent clients (or Concurrency level)"},
		{"Completed requests", "Completed requests"},
		{"Total errors", "Total errors"},
		{"Total time", "Total time"},
		{"Mean latency", "Mean latency"},
		{"Effective rate", "Effective rps (or Requests per second)"},
	} {
		if !p.seen[f.key] {
			missing = append(missing, f.label)
		}
	}
	if r.Completed > 0 && !p.pctFalse {
		for _, pc := range []int{50, 90, 95, 99, 100} {
			if _, ok := p.pct[pc]; !ok {
				missing = append(missing, fmt.Sprintf("%d%% percentile", pc))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("incomplete loadtest summary: missing %s", strings.Join(missing, ", "))
	}
	if r.Errors.Total > r.Completed {
		return fmt.Errorf("inconsistent loadtest summary: %d errors in %d completed requests", r.Errors.Total, r.Completed)
	}
	if p.errorsFound > r.Errors.Total {
		return fmt.Errorf("inconsistent loadtest summary: error lines add up to %d, total errors is %d", p.errorsFound, r.Errors.Total)
	}
	// Errors not broken down by code are unclassified.
	r.Errors.Other += r.Errors.Total - p.errorsFound
	r.OK = r.Completed - r.Errors.Total
	if r.Completed > 0 && !p.pctFalse && !p.meanNaN {
		// loadtest records a latency for every request, failed or not.
		r.Latency = &loadgen.Latency{
			Mean: p.mean, P50: p.pct[50], P90: p.pct[90], P95: p.pct[95], P99: p.pct[99], Max: p.pct[100],
		}
	}
	return nil
}
