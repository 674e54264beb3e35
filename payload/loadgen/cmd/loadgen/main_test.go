package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploylab/deploylab/payload/loadgen"
)

func TestParseArgs(t *testing.T) {
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want loadgen.Options
	}{
		{"loadtest defaults", []string{"http://localhost:3000/"},
			loadgen.Options{URL: "http://localhost:3000/", Concurrency: 10}},
		{"practice command", []string{"-n", "1000", "-c", "100", "-k", "http://localhost:3000/api/500000"},
			loadgen.Options{URL: "http://localhost:3000/api/500000", Requests: 1000, Concurrency: 100, KeepAlive: true}},
		{"flags after the url", []string{"http://h/", "-n", "5", "--rps", "20.5", "-t", "1.5"},
			loadgen.Options{URL: "http://h/", Requests: 5, Concurrency: 10, RPS: 20.5, Duration: 1500 * time.Millisecond}},
		{"duration", []string{"-d", "2m", "--timeout", "250", "http://h/"},
			loadgen.Options{URL: "http://h/", Concurrency: 10, Duration: 2 * time.Minute, Timeout: 250 * time.Millisecond}},
		{"post body and headers", []string{"-P", "x=1", "-T", "application/x-www-form-urlencoded", "-H", "X-A: 1", "-H", "Cookie:b=2", "http://h/"},
			loadgen.Options{URL: "http://h/", Concurrency: 10, Method: "POST", Body: []byte("x=1"), ContentType: "application/x-www-form-urlencoded",
				Headers: []loadgen.Header{{Name: "X-A", Value: "1"}, {Name: "Cookie", Value: "b=2"}}}},
		{"data with method", []string{"-m", "PATCH", "--data", "{}", "http://h/"},
			loadgen.Options{URL: "http://h/", Concurrency: 10, Method: "PATCH", Body: []byte("{}")}},
		{"put file", []string{"-u", body, "--insecure", "--cores", "1", "https://h/"},
			loadgen.Options{URL: "https://h/", Concurrency: 10, Method: "PUT", Body: []byte(`{"a":1}`), Insecure: true, Cores: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := parseArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

// runCLI runs the command in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/"
	ln.Close()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string // first line
	}{
		{"no url", []string{"-n", "5"}, 2, "loadgen: error: no url given"},
		{"two urls", []string{"http://a/", "http://b/"}, 2, "loadgen: error: one url expected, got 2: http://a/ http://b/"},
		{"zero clients", []string{"-c", "0", down}, 2, "loadgen: error: concurrency must be at least 1, got 0"},
		{"unknown flag", []string{"--bogus", down}, 2, "loadgen: error: flag provided but not defined: -bogus"},
		{"bad number", []string{"-n", "ten", down}, 2, `loadgen: error: invalid value "ten" for flag -n: parse error`},
		{"two time limits", []string{"-t", "5", "-d", "5s", down}, 2, "loadgen: error: give the time limit once: -t seconds or -d duration"},
		{"two bodies", []string{"-P", "a", "--data", "b", down}, 2, "loadgen: error: give one body: -P, --data, -p or -u"},
		{"websocket", []string{"ws://127.0.0.1:1/"}, 2, `loadgen: error: unsupported scheme "ws" in url "ws://127.0.0.1:1/"`},
		{"server down", []string{"-n", "20", "-c", "2", down}, 3, "loadgen: error: cannot connect to " + strings.TrimSuffix(strings.TrimPrefix(down, "http://"), "/") + ": all 20 requests failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if !strings.HasPrefix(first, tc.stderr) {
				t.Errorf("stderr %q, want it to start with %q", stderr, tc.stderr)
			}
			if !strings.Contains(stderr, "\nhint: ") {
				t.Errorf("stderr %q has no hint", stderr)
			}
		})
	}
}

func TestCLIRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "Hello World!")
	}))
	defer srv.Close()

	code, stdout, stderr := runCLI(t, "-n", "200", "-c", "400", srv.URL+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"Target URL:          " + srv.URL + "/\n",
		"Max requests:        200\n",
		"Concurrent clients:  200\n",
		"Agent:               none\n",
		"Completed requests:  200\n",
		"Total errors:        0\n",
		"Percentage of requests served within a certain time\n",
		"(longest request)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if stderr != "loadgen: note: concurrency 400 reduced to 200, the number of requests\n" {
		t.Errorf("stderr %q", stderr)
	}

	code, stdout, _ = runCLI(t, "--json", "-q", "-k", "-n", "100", "-c", "400", srv.URL+"/")
	var res loadgen.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 {
		t.Fatalf("exit %d, json %v:\n%s", code, err, stdout)
	}
	if res.Schema != loadgen.Schema || res.Completed != 100 || res.OK != 100 || !res.KeepAlive || res.Latency == nil {
		t.Errorf("result %+v", res)
	}

	code, stdout, _ = runCLI(t, "-h")
	if code != 0 || !strings.HasPrefix(stdout, "usage: loadgen") {
		t.Errorf("-h: exit %d, %q", code, stdout)
	}
}

func TestCLIUnreachableJSON(t *testing.T) {
	// With --json the document is still printed, for the bench package.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close()
	code, stdout, stderr := runCLI(t, "--json", "-n", "5", "-c", "1", url)
	var res loadgen.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if code != 3 || res.Errors.Connect != 5 || !strings.HasPrefix(stderr, "loadgen: error: cannot connect") {
		t.Errorf("exit %d, errors %+v, stderr %q", code, res.Errors, stderr)
	}
}

func TestCLIInterrupted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "Hello World!")
	}))
	defer srv.Close()
	// Ctrl-C is a cancelled context: the partial summary, then exit 130.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"-k", "-c", "2", srv.URL + "/"}, &out, &errb)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stopped after %v", el)
	}
	if code != 130 || !strings.Contains(out.String(), "Completed requests:") || !strings.Contains(out.String(), "Interrupted:") {
		t.Errorf("exit %d, stdout:\n%s", code, out.String())
	}
	if !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stderr %q", errb.String())
	}
}
