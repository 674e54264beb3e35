package loadgen

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// Version is loadgen's version, written to every result.
const Version = "0.1.0"

// Header is one request header.
type Header struct {
	Name, Value string
}

// Options say what to load-test and how; the zero value of each field is
// loadtest's default unless said otherwise.
type Options struct {
	// URL is the target, http:// or https://.
	URL string
	// Method defaults to GET, or POST when Body is set.
	Method string
	// Body is sent with every request; ContentType defaults to text/plain
	// (as loadtest does) when Body is set.
	Body        []byte
	ContentType string
	// Headers are added to every request; a Host or User-Agent header
	// replaces loadgen's own.
	Headers []Header
	// Requests is the number of requests to complete (loadtest -n); 0 means
	// no limit: the run ends at Duration or when ctx is cancelled.
	Requests int64
	// Concurrency is the number of concurrent clients (loadtest -c), at least
	// 1. When Requests is smaller, it is reduced to Requests, as loadtest can
	// never have more requests in flight than it sends; the result says so
	// in its notes.
	Concurrency int
	// KeepAlive reuses each client's connection (loadtest -k). Without it a
	// new connection is opened for every request, as loadtest does.
	KeepAlive bool
	// RPS is a constant total request rate (loadtest --rps); 0 means as fast
	// as the clients can go. With a rate, latency is measured from the time
	// each request was due to be sent (coordinated omission corrected, as
	// wrk2 does), so a stalled server shows as high latency, not as a
	// lower rate alone.
	RPS float64
	// Duration limits the run (loadtest -t); 0 means no limit. Requests in
	// flight when it ends are abandoned and not counted.
	Duration time.Duration
	// Timeout limits each request, from dial to the last byte of the body;
	// 0 means none (loadtest's default). A request that times out is counted
	// as a "timeout" error.
	Timeout time.Duration
	// Insecure skips TLS certificate verification for https URLs.
	Insecure bool
	// Cores, when set, is recorded in the result (loadtest --cores); the
	// command maps it to GOMAXPROCS.
	Cores int
	// Progress, when set, is called every ProgressInterval (default 5 s,
	// as loadtest reports) from a goroutine of its own, never after Run
	// has returned.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a running report: totals so far and the figures of the last
// interval, like loadtest's "Requests: ..., requests per second: ..." lines.
type Progress struct {
	Elapsed   time.Duration
	Completed int64 // requests completed so far, failed or not
	Errors    int64 // failed requests so far
	// Percent of Options.Requests completed; -1 without a request limit.
	Percent float64
	// Over the last interval: completed requests, errors, requests per
	// second, mean latency in microseconds (of the answered requests; 0 if
	// none).
	IntervalCompleted, IntervalErrors int64
	IntervalRPS, IntervalMeanUS       float64
}

// target is the validated, pre-computed form of Options used by the workers.
type target struct {
	url        *url.URL
	host       string // host name or IP literal, without brackets
	port       string
	tls        bool
	method     string
	head       bool
	request    []byte // the whole serialised request
	notes      []string
	concurrent int
}

// usage makes a Usage-kind error.
func usage(hint, format string, args ...any) error {
	return fail.Errorf(fail.Usage, hint, format, args...)
}

// prepare validates o and serialises the request once.
func (o *Options) prepare() (*target, error) {
	if o.URL == "" {
		return nil, usage("give the URL to test, e.g. http://localhost:3000/", "no url given")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, usage("give a URL like http://localhost:3000/api/50", "bad url %q: %w", o.URL, err)
	}
	t := &target{url: u}
	switch strings.ToLower(u.Scheme) {
	case "http":
		t.port = "80"
	case "https":
		t.port, t.tls = "443", true
	case "":
		return nil, usage("write the scheme, e.g. http://"+o.URL, "url %q has no scheme", o.URL)
	default:
		return nil, usage("loadgen tests http:// and https:// URLs (no websockets)", "unsupported scheme %q in url %q", u.Scheme, o.URL)
	}
	t.host = u.Hostname()
	if t.host == "" {
		return nil, usage("give a URL like http://localhost:3000/", "url %q has no host", o.URL)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, usage("ports go from 1 to 65535", "bad port %q in url %q", p, o.URL)
		}
		t.port = p
	}
	if u.User != nil {
		return nil, usage("pass credentials with -H 'Authorization: ...'", "user info in urls is not supported")
	}
	switch {
	case o.Concurrency < 1:
		return nil, usage("use -c 1 or more", "concurrency must be at least 1, got %d", o.Concurrency)
	case o.Requests < 0:
		return nil, usage("use -n 1 or more, or leave it out with -t", "number of requests must not be negative, got %d", o.Requests)
	case o.RPS < 0:
		return nil, usage("use --rps above 0, or leave it out", "requests per second must not be negative, got %g", o.RPS)
	case o.Duration < 0:
		return nil, usage("use -t above 0, or leave it out", "time limit must not be negative, got %s", o.Duration)
	case o.Timeout < 0:
		return nil, usage("use --timeout above 0, or leave it out", "timeout must not be negative, got %s", o.Timeout)
	}
	t.concurrent = o.Concurrency
	if o.Requests > 0 && o.Requests < int64(o.Concurrency) {
		t.concurrent = int(o.Requests)
		t.notes = append(t.notes, fmt.Sprintf("concurrency %d reduced to %d, the number of requests", o.Concurrency, o.Requests))
	}
	t.method = strings.ToUpper(o.Method)
	if t.method == "" {
		t.method = "GET"
		if o.Body != nil {
			t.method = "POST"
		}
	}
	for _, c := range t.method {
		if c < 'A' || c > 'Z' {
			return nil, usage("use a method like GET, POST, PUT or DELETE", "bad method %q", o.Method)
		}
	}
	t.head = t.method == "HEAD"
	t.request, err = o.serialise(t)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// serialise writes the request bytes sent for every request.
func (o *Options) serialise(t *target) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(t.method)
	b.WriteByte(' ')
	b.WriteString(t.url.RequestURI())
	b.WriteString(" HTTP/1.1\r\n")
	hasHost, hasUA, hasCT := false, false, false
	for _, h := range o.Headers {
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n:") || strings.ContainsAny(h.Value, "\r\n") {
			return nil, usage("write headers as -H 'Name: value'", "bad header %q", h.Name+": "+h.Value)
		}
		switch strings.ToLower(h.Name) {
		case "host":
			hasHost = true
		case "user-agent":
			hasUA = true
		case "content-type":
			hasCT = true
		case "content-length", "transfer-encoding", "connection":
			return nil, usage("leave it out: loadgen sets it (use -k for keep-alive)", "header %q cannot be set", h.Name)
		}
	}
	if !hasHost {
		host := t.host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if p := t.url.Port(); p != "" && !(p == "80" && !t.tls) && !(p == "443" && t.tls) {
			host += ":" + p
		}
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	if !hasUA {
		fmt.Fprintf(&b, "User-Agent: loadgen/%s\r\n", Version)
	}
	for _, h := range o.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	if !o.KeepAlive {
		b.WriteString("Connection: close\r\n")
	}
	if o.Body != nil {
		if !hasCT {
			ct := o.ContentType
			if ct == "" {
				ct = "text/plain"
			}
			if strings.ContainsAny(ct, "\r\n") {
				return nil, usage("give a content type like application/json", "bad content type %q", ct)
			}
			fmt.Fprintf(&b, "Content-Type: %s\r\n", ct)
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(o.Body))
	}
	b.WriteString("\r\n")
	b.Write(o.Body)
	return b.Bytes(), nil
}

// hostPort is the address dialled, for messages.
func (t *target) hostPort() string { return net.JoinHostPort(t.host, t.port) }
