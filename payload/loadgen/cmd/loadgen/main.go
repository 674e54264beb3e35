// Command loadgen load-tests an HTTP URL with npm loadtest's flags and
// summary, at a fraction of its CPU cost; --json prints the result document
// (schema deploylab.loadgen/v1) instead. deploylab runs it on the VM.
//
//	loadgen [-n requests] [-c clients] [-k] [--rps rate] [-t seconds | -d 10s]
//	        [-m method] [-P body | --data body | -p file | -u file] [-T type]
//	        [-H 'Name: value']... [--timeout ms] [--insecure] [--json] URL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/payload/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli holds the flags that are not Options.
type cli struct {
	json    bool
	quiet   bool
	version bool
}

// headerList collects repeated -H flags.
type headerList []loadgen.Header

func (h *headerList) String() string { return "" }
func (h *headerList) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	*h = append(*h, loadgen.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	return nil
}

const usageText = `usage: loadgen [flags] URL

Load-tests URL like npm loadtest (same flags, same summary), and cheaper in CPU.

  -n N          requests to complete (default: no limit, stop with -t or Ctrl-C)
  -c N          concurrent clients (default 10); reduced to -n if -n is smaller
  -k            keep-alive: reuse connections (default: one connection per request)
  --rps R       constant total rate, requests per second; latency then counts
                from each request's intended send time
  -t S          time limit in seconds;  -d D: the same as a duration (10s, 1m)
  -m METHOD     request method (default GET, or POST with a body)
  -P BODY       POST this body;  --data BODY: send this body with -m's method
  -p FILE       POST the file's contents;  -u FILE: PUT the file's contents
  -T TYPE       content type of the body (default text/plain)
  -H 'K: V'     add a header (repeatable)
  --timeout MS  per-request timeout in milliseconds (default: none)
  --insecure    do not verify https certificates
  --cores N     CPUs to use (default: half of them, at least 1, as loadtest)
  --json        print the result as JSON (schema deploylab.loadgen/v1)
  -q            quiet: no progress lines or notes on stderr
  --version     print the version

loadgen sessions [flags] URL runs the sessions scenario (loadgen sessions -h).

Exit status: 0 done (even with failed requests, which are reported), 2 bad
usage, 3 no request could connect, 130 interrupted (partial result printed).
`

// parseArgs turns the command line into Options. Flags may follow the URL,
// as loadtest allows.
func parseArgs(args []string) (loadgen.Options, cli, error) {
	var (
		o                   loadgen.Options
		c                   cli
		headers             headerList
		n, conc, cores      int
		timeLimit, rps      float64
		duration            time.Duration
		timeoutMS           int
		method, ctype       string
		postBody, data      string
		postFile, putFile   string
		keepAlive, insecure bool
		postSet, dataSet    bool
		positional          []string
	)
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&n, "n", 0, "")
	fs.IntVar(&conc, "c", 10, "")
	fs.BoolVar(&keepAlive, "k", false, "")
	fs.Float64Var(&rps, "rps", 0, "")
	fs.Float64Var(&timeLimit, "t", 0, "")
	fs.DurationVar(&duration, "d", 0, "")
	fs.StringVar(&method, "m", "", "")
	fs.Func("P", "", func(s string) error { postBody, postSet = s, true; return nil })
	fs.Func("data", "", func(s string) error { data, dataSet = s, true; return nil })
	fs.StringVar(&postFile, "p", "", "")
	fs.StringVar(&putFile, "u", "", "")
	fs.StringVar(&ctype, "T", "", "")
	fs.Var(&headers, "H", "")
	fs.IntVar(&timeoutMS, "timeout", 0, "")
	fs.BoolVar(&insecure, "insecure", false, "")
	fs.IntVar(&cores, "cores", 0, "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.BoolVar(&c.quiet, "q", false, "")
	fs.BoolVar(&c.version, "version", false, "")
	usageErr := func(format string, a ...any) error {
		return fail.Errorf(fail.Usage, "run loadgen -h for the flags", format, a...)
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, c, err
			}
			return o, c, usageErr("%s", err.Error())
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if c.version {
		return o, c, nil
	}
	switch len(positional) {
	case 0:
		return o, c, usageErr("no url given")
	case 1:
	default:
		return o, c, usageErr("one url expected, got %d: %s", len(positional), strings.Join(positional, " "))
	}
	if n < 0 {
		return o, c, usageErr("-n must not be negative, got %d", n)
	}
	if timeLimit > 0 && duration > 0 {
		return o, c, usageErr("give the time limit once: -t seconds or -d duration")
	}
	if timeLimit < 0 || duration < 0 {
		return o, c, usageErr("the time limit must be positive")
	}
	if timeLimit > 0 {
		duration = time.Duration(timeLimit * float64(time.Second))
	}
	bodies := 0
	for _, set := range []bool{postSet, dataSet, postFile != "", putFile != ""} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return o, c, usageErr("give one body: -P, --data, -p or -u")
	}
	switch {
	case postSet:
		o.Body = []byte(postBody)
		if method == "" {
			method = "POST"
		}
	case dataSet:
		o.Body = []byte(data)
	case postFile != "" || putFile != "":
		file, m := postFile, "POST"
		if putFile != "" {
			file, m = putFile, "PUT"
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return o, c, fail.New(fail.Usage, "give a readable file", fmt.Errorf("cannot read body: %w", err))
		}
		o.Body = b
		if method == "" {
			method = m
		}
	}
	if cores < 0 {
		return o, c, usageErr("--cores must be positive, got %d", cores)
	}
	if timeoutMS < 0 {
		return o, c, usageErr("--timeout must be positive, got %d", timeoutMS)
	}
	o.URL = positional[0]
	o.Requests = int64(n)
	o.Concurrency = conc
	o.KeepAlive = keepAlive
	o.RPS = rps
	o.Duration = duration
	o.Method = method
	o.ContentType = ctype
	o.Headers = headers
	o.Timeout = time.Duration(timeoutMS) * time.Millisecond
	o.Insecure = insecure
	o.Cores = cores
	return o, c, nil
}

// run is main without the exit, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sessions" {
		return runSessions(ctx, args[1:], stdout, stderr)
	}
	o, c, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		return fail.ExitOK
	}
	if err != nil {
		return report(stderr, err)
	}
	if c.version {
		fmt.Fprintf(stdout, "loadgen %s\n", loadgen.Version)
		return fail.ExitOK
	}
	// Like loadtest, use half the CPUs by default: on the practice's 2-core
	// VM one core is left to the server, and a single scheduler thread
	// spends less CPU per request waking up for each answer.
	if o.Cores == 0 {
		o.Cores = max(1, runtime.GOMAXPROCS(0)/2)
	}
	runtime.GOMAXPROCS(o.Cores)
	if !c.quiet {
		o.Progress = func(p loadgen.Progress) { writeProgress(stderr, p) }
	}
	res, err := loadgen.Run(ctx, o)
	if res == nil {
		return report(stderr, err)
	}
	if !c.quiet {
		for _, n := range res.Notes {
			fmt.Fprintf(stderr, "loadgen: note: %s\n", n)
		}
	}
	unreachable := err != nil && fail.KindOf(err) == fail.Unreachable
	switch {
	case c.json:
		if werr := loadgen.WriteJSON(stdout, res); werr != nil {
			return report(stderr, fmt.Errorf("write result: %w", werr))
		}
	case !unreachable:
		if werr := loadgen.WriteText(stdout, res); werr != nil {
			return report(stderr, fmt.Errorf("write result: %w", werr))
		}
	}
	if err != nil {
		return report(stderr, err)
	}
	return fail.ExitOK
}

// writeProgress prints p as loadtest does every 5 seconds.
func writeProgress(w io.Writer, p loadgen.Progress) {
	pct := ""
	if p.Percent >= 0 {
		pct = fmt.Sprintf(" (%.0f%%)", p.Percent)
	}
	fmt.Fprintf(w, "Requests: %d%s, requests per second: %.0f, mean latency: %.1f ms\n",
		p.Completed, pct, p.IntervalRPS, p.IntervalMeanUS/1000)
	if p.Errors > 0 {
		fmt.Fprintf(w, "Errors: %d, accumulated errors: %d, %.1f%% of total requests\n",
			p.IntervalErrors, p.Errors, 100*float64(p.Errors)/float64(max(p.Completed, 1)))
	}
}

// report prints err as one line (and its hint) and returns its exit code.
func report(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "loadgen: error: %v\n", err)
	if h := fail.HintOf(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return fail.ExitCode(err)
}
