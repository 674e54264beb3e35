package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Schema is the value of Result.Schema for this version of the document.
// A change that removes or re-defines a field gets a new version; adding an
// optional field does not.
const Schema = "deploylab.loadgen/v1"

// Result is one load test's outcome; it marshals to the documented JSON
// schema (see SCHEMA.md). Results of loadgen and of npm loadtest (parsed by
// bench/loadtestfmt) share it, so they can be stored and compared alike.
type Result struct {
	Schema string `json:"schema"`
	Tool   Tool   `json:"tool"`
	URL    string `json:"url"`
	// Method is absent when the tool's output does not say it.
	Method string `json:"method,omitempty"`
	// Requests is the request limit (-n); 0 means none.
	Requests    int64 `json:"requests"`
	Concurrency int   `json:"concurrency"`
	KeepAlive   bool  `json:"keepalive"`
	// RPSTarget is the requested rate (--rps); 0 means as fast as possible.
	RPSTarget float64 `json:"rps_target"`
	// TimeLimitS is the time limit (-t), in seconds; absent when none.
	TimeLimitS float64 `json:"time_limit_s,omitzero"`
	// Cores is the number of cores (processes) the tool ran on, when known.
	Cores int `json:"cores,omitzero"`
	// Started is when the load began; absent when unknown.
	Started time.Time `json:"started,omitzero"`
	// DurationS is the time from the first request to the end of the run.
	DurationS float64 `json:"duration_s"`
	// Completed counts requests that finished, successfully or not (as
	// loadtest's "Completed requests"); OK = Completed - Errors.Total.
	Completed int64  `json:"completed"`
	OK        int64  `json:"ok"`
	Errors    Errors `json:"errors"`
	// RPS is the effective rate, Completed / DurationS.
	RPS float64 `json:"rps"`
	// Latency is absent when no response was received.
	Latency *Latency `json:"latency_us,omitempty"`
	// StatusCodes counts responses by HTTP status; the key is the code.
	// loadtest reports only the codes it counts as errors (>= 400).
	StatusCodes map[int]int64 `json:"status_codes"`
	// LatencyResolutionUS is the width of the smallest latency step: 1 for
	// loadgen (HDR histogram, 3 significant digits above 1 ms), 1000 for
	// loadtest (whole milliseconds).
	LatencyResolutionUS float64 `json:"latency_resolution_us"`
	// CoordinatedOmissionCorrected is true when latency was measured from
	// each request's intended send time (loadgen with a rate).
	CoordinatedOmissionCorrected bool `json:"co_corrected"`
	// ErrorSamples holds the first error message of each error kind.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// Interrupted is true when the run was cancelled before its end: the
	// figures cover the part that ran.
	Interrupted bool `json:"interrupted,omitzero"`
	// Notes say where the run differed from what was asked.
	Notes []string `json:"notes,omitempty"`
	// Timeline counts the requests completed in each interval of the run
	// (loadgen only; absent for loadtest and in older results).
	Timeline *Timeline `json:"timeline,omitempty"`
	// Each lists every request of a small run (at most EachMax requests,
	// e.g. the blocking experiment's light ones), in start order (loadgen
	// only).
	Each []Request `json:"each,omitempty"`
}

// EachMax is the largest request limit (-n) whose requests are listed one
// by one in Result.Each.
const EachMax = 64

// Timeline is a run's throughput over time: Completed[i] (and Errors[i],
// the failed ones among them) finished in [i*IntervalS, (i+1)*IntervalS)
// after Started.
type Timeline struct {
	IntervalS float64 `json:"interval_s"`
	Completed []int64 `json:"completed"`
	Errors    []int64 `json:"errors"`
}

// Request is one request of a small run: when it started (after Started)
// and how long it took until its answer or its failure.
type Request struct {
	StartUS   int64 `json:"start_us"`
	LatencyUS int64 `json:"latency_us"`
	// Status is the answer's HTTP status; 0 when it failed without one.
	Status int `json:"status,omitempty"`
	// Error is the failure's kind (connect, timeout, ...), "" when answered.
	Error string `json:"error,omitempty"`
}

// Tool names the program that produced a result.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Format is the output format a result was parsed from (loadtest only:
	// "v5", "v6" or "v7").
	Format string `json:"format,omitempty"`
}

// Errors counts failed requests by kind. Each failed request is counted
// once, in one kind, and never retried.
type Errors struct {
	Total int64 `json:"total"`
	// Connect: the connection (or TLS handshake) could not be established.
	Connect int64 `json:"connect"`
	// Timeout: no complete response within the request timeout.
	Timeout int64 `json:"timeout"`
	// Write: sending the request failed.
	Write int64 `json:"write"`
	// Read: the connection was reset or closed before the response was
	// complete.
	Read int64 `json:"read"`
	// Protocol: the answer was not valid HTTP/1.x.
	Protocol int64 `json:"protocol"`
	// Status: a response with status >= 400 (as loadtest counts them); the
	// codes are in status_codes.
	Status int64 `json:"status"`
	// Other: errors the tool does not classify (loadtest's code -1 covers
	// connection errors, resets and timeouts alike).
	Other int64 `json:"other"`
}

// Latency summarises response times in microseconds. P999, Min and StdDev
// are absent when the tool does not report them (loadtest).
type Latency struct {
	Mean   float64  `json:"mean"`
	P50    float64  `json:"p50"`
	P90    float64  `json:"p90"`
	P95    float64  `json:"p95"`
	P99    float64  `json:"p99"`
	P999   *float64 `json:"p999,omitempty"`
	Max    float64  `json:"max"`
	Min    *float64 `json:"min,omitempty"`
	StdDev *float64 `json:"stddev,omitempty"`
}

// Ptr returns a pointer to v, for Latency's optional fields.
func Ptr(v float64) *float64 { return &v }

// round returns v rounded to the given number of decimals.
func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// ms formats microseconds as milliseconds for the text summary.
func ms(us float64) string {
	switch {
	case us >= 100_000:
		return strconv.FormatFloat(us/1000, 'f', 0, 64)
	case us >= 10_000:
		return strconv.FormatFloat(us/1000, 'f', 1, 64)
	default:
		return strconv.FormatFloat(us/1000, 'f', 3, 64)
	}
}

// WriteJSON writes r as an indented JSON document (without HTML escaping)
// and a final newline.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r as a loadtest-style summary, so that students see the
// output they know, with loadgen's extra figures (99.9th percentile, errors
// by kind).
func WriteText(w io.Writer, r *Result) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-21s%s\n", label, fmt.Sprintf(format, args...))
	}
	b.WriteString("\n")
	line("Target URL:", "%s", r.URL)
	if r.Requests > 0 {
		line("Max requests:", "%d", r.Requests)
	}
	if r.TimeLimitS > 0 {
		line("Max time (s):", "%g", r.TimeLimitS)
	}
	if r.RPSTarget > 0 {
		line("Target rps:", "%g", r.RPSTarget)
	}
	line("Concurrent clients:", "%d", r.Concurrency)
	agent := "none"
	if r.KeepAlive {
		agent = "keepalive"
	}
	line("Agent:", "%s", agent)
	b.WriteString("\n")
	line("Completed requests:", "%d", r.Completed)
	line("Total errors:", "%d", r.Errors.Total)
	line("Total time:", "%.3f s", r.DurationS)
	if r.Latency != nil {
		line("Mean latency:", "%s ms", ms(r.Latency.Mean))
	}
	line("Effective rps:", "%.0f", r.RPS)
	if r.Latency != nil {
		b.WriteString("\nPercentage of requests served within a certain time")
		if r.CoordinatedOmissionCorrected {
			b.WriteString(" (from the intended send time)")
		}
		b.WriteString("\n")
		l := r.Latency
		pct := func(label string, us float64, suffix string) {
			fmt.Fprintf(&b, " %5s  %8s ms%s\n", label, ms(us), suffix)
		}
		pct("50%", l.P50, "")
		pct("90%", l.P90, "")
		pct("95%", l.P95, "")
		pct("99%", l.P99, "")
		if l.P999 != nil {
			pct("99.9%", *l.P999, "")
		}
		pct("100%", l.Max, " (longest request)")
	}
	if r.Errors.Total > 0 {
		b.WriteString("\nErrors by kind\n")
		kind := func(name string, n int64, sample string) {
			if n == 0 {
				return
			}
			fmt.Fprintf(&b, "  %-12s %8d", name+":", n)
			if sample != "" {
				fmt.Fprintf(&b, "   (%s)", sample)
			}
			b.WriteString("\n")
		}
		e := r.Errors
		kind("connect", e.Connect, r.ErrorSamples["connect"])
		kind("timeout", e.Timeout, r.ErrorSamples["timeout"])
		kind("write", e.Write, r.ErrorSamples["write"])
		kind("read", e.Read, r.ErrorSamples["read"])
		kind("protocol", e.Protocol, r.ErrorSamples["protocol"])
		kind("other", e.Other, r.ErrorSamples["other"])
		codes := make([]int, 0, len(r.StatusCodes))
		for c := range r.StatusCodes {
			if c >= 400 {
				codes = append(codes, c)
			}
		}
		sort.Ints(codes)
		for _, c := range codes {
			kind("status "+strconv.Itoa(c), r.StatusCodes[c], "")
		}
	}
	if r.Interrupted {
		b.WriteString("\nInterrupted: these figures cover the part of the run that was done.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
