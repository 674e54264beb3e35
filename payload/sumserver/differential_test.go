package sumserver

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	diffSeed = flag.Uint64("diff.seed", 20261122, "seed of the differential tests' generated inputs")
	diffN    = flag.Int("diff.n", 1500, "number of generated requests in the differential test")
)

// corpus are hand-picked requests: the practice's, FACTS.md's, and
// Express's corners.
func corpus() []request {
	get := func(targets ...string) []request {
		var rs []request
		for _, t := range targets {
			rs = append(rs, request{method: "GET", target: t})
		}
		return rs
	}
	rs := get("/", "//", "///", "/?x=1", "/api/50", "/api/500000", "/api/12abc", "/api/0x10", "/api/0X1f",
		"/api/%2042", "/api/1e3", "/api/3.9", "/api/+7", "/api/-5", "/api/-0", "/api/abc", "/api/Infinity",
		"/api/NaN", "/api/5/", "/API/5", "/Api/5/", "/api/5?x=1", "/api/5?", "/api/5#frag", "/api/5//",
		"/api/", "/api", "/api//", "/api/1/2", "/nope", "/index.html", "/%61pi/5", "/api%2F5", "/api/%2F5",
		"/api/%zz", "/api/%", "/api/%4", "/api/5%", "/api/%%35", "/api/%C0%80", "/api/%ED%A0%80",
		"/api/%F4%90%80%80", "/api/%E2%82", "/api/%FF", "/api/%C2%A05", "/api/%EF%BB%BF5",
		"/api/%E2%80%A85", "/api/%E2%80%A95", "/api/%E3%80%805", "/api/%E1%A0%8E5", "/api/%E2%80%8B5",
		"/api/%C2%855", "/api/%0B%0C%0D%0A%095", "/api/%EF%BC%95", "/api/0x", "/api/0xg", "/api/-0x10",
		"/api/%2B%2D5", "/api/5%20", "/api/%35%30", "/nope%zz", "/x'", "/x'#", "/x\"<>", "/x{}|\\^`",
		"/api\\5", "/api\\5#", "/api/5#%zz", "/api/5?%zz", "/api/5%#x", "*", "http://127.0.0.1/api/7",
		"HTTP://H/API/7/?q", "http://h", "http://h?x", "http://u@h:80/api/7#f", "h://x/y",
		"/api/"+strings.Repeat("0", 3000)+"42", "/api/-"+strings.Repeat("9", 400),
		"/api/"+strings.Repeat("%20", 500)+"9", "/"+strings.Repeat("a", 6000))
	for _, m := range []string{"HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "M-SEARCH", "QUERY", "FOO", "get"} {
		for _, t := range []string{"/", "/api/5", "/api/%zz", "/nope", "/api/"} {
			rs = append(rs, request{method: m, target: t})
		}
	}
	// ETags and 304s (Express's fresh rules).
	etag5 := `W/"11-Wt5OwgZpnphADDgpC8GsZvjd+hs"` // of "Final count is 15"
	etagRoot := `W/"c-Lve95gjOVATpfV8EL5X4nxwjKHE"`
	for _, h := range [][]string{
		{"If-None-Match: " + etag5},
		{"If-None-Match: " + strings.TrimPrefix(etag5, "W/")},
		{"If-None-Match: W/" + etag5},
		{"If-None-Match: \"x\", " + etag5},
		{"If-None-Match: \"x\" ,  " + etag5 + "  "},
		{"If-None-Match: \"x\"", "If-None-Match: " + etag5},
		{"If-None-Match: *"},
		{"If-None-Match: " + etag5 + "x"},
		{"If-None-Match: " + etagRoot},
		{"If-None-Match: "},
		{"If-None-Match: " + etag5, "Cache-Control: no-cache"},
		{"If-None-Match: " + etag5, "Cache-Control: max-age=0, no-cache"},
		{"If-None-Match: " + etag5, "Cache-Control: no-cache-x"},
		{"If-None-Match: " + etag5, "Cache-Control: max-age=0"},
		{"If-Modified-Since: Sun, 22 Nov 2026 11:44:24 GMT"},
		{"If-None-Match: " + etag5, "If-Modified-Since: Sun, 22 Nov 2000 11:44:24 GMT"},
	} {
		for _, m := range []string{"GET", "HEAD", "POST"} {
			for _, t := range []string{"/api/5", "/", "/nope"} {
				rs = append(rs, request{method: m, target: t, header: h})
			}
		}
	}
	return rs
}

// generator makes request targets from a seeded source.
type generator struct{ r *rand.Rand }

func (g generator) pick(s ...string) string { return s[g.r.IntN(len(s))] }

// param makes an :n parameter (percent-encoded as sent).
func (g generator) param() string {
	var b strings.Builder
	parts := 1 + g.r.IntN(4)
	for range parts {
		switch g.r.IntN(14) {
		case 0, 1, 2:
			b.WriteString(fmt.Sprint(g.r.IntN(1000000)))
		case 3:
			b.WriteString("0x" + fmt.Sprintf("%x", g.r.IntN(0xfffff)))
		case 4:
			b.WriteString(g.pick("+", "-", "--", "+-", "0X", "0x", ".", "e", "E", "e5", "."+fmt.Sprint(g.r.IntN(99))))
		case 5: // JS white space, and near misses
			b.WriteString(g.pick("%20", "%09", "%0A", "%0B", "%0C", "%0D", "%C2%A0", "%EF%BB%BF", "%E2%80%A8",
				"%E2%80%A9", "%E3%80%80", "%E1%9A%80", "%E2%80%80", "%E2%80%8A", "%E2%80%AF", "%E2%81%9F",
				"%E1%A0%8E", "%E2%80%8B", "%C2%85", "%00", "%1F"))
		case 6:
			b.WriteString(g.pick("abc", "Infinity", "NaN", "null", "x", "Z", "ff", "%EF%BC%91", "%D9%A3", "١"))
		case 7: // punctuation Node lets through in a target
			b.WriteString(g.pick("!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", ":", "@", "~", "_",
				"\"", "<", ">", "{", "}", "|", "\\", "^", "`", "[", "]"))
		case 8: // escapes of random bytes: valid or not as UTF-8
			for range 1 + g.r.IntN(3) {
				b.WriteString(fmt.Sprintf(g.pick("%%%02X", "%%%02x"), g.r.IntN(256)))
			}
		case 9: // malformed escapes
			b.WriteString(g.pick("%", "%g1", "%4", "%%", "%ZZ", "%-1", "%+1"))
		case 10: // escaped digits and signs
			b.WriteString(g.pick("%31", "%32%33", "%2D", "%2B", "%30x10", "%2e"))
		case 11: // long but small: leading zeros
			b.WriteString(strings.Repeat("0", g.r.IntN(3000)) + fmt.Sprint(g.r.IntN(1000)))
		case 12: // long and large, but never summed: negative or after text
			b.WriteString(g.pick("-", "x", "%2D") + strings.Repeat("9", 1+g.r.IntN(2000)))
		case 13:
			b.WriteString(g.pick("?q=1", "#f", "?", "#", "/"))
		}
	}
	return b.String()
}

func (g generator) request() request {
	method := g.pick("GET", "GET", "GET", "GET", "GET", "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
	var target string
	switch g.r.IntN(10) {
	case 0:
		target = g.pick("/", "//", "///", "/nope", "/api", "/api/", "/api//", "/api/1/2", "/favicon.ico", "/?a=b", "*",
			"/%61pi/5", "/api%2f5", "http://127.0.0.1/", "http://127.0.0.1/api/5")
	case 1:
		target = g.pick("/API/", "/Api/", "/aPi/", "//api/", "/apix/", "/ap/", "http://127.0.0.1/api/") + g.param()
	default:
		target = "/api/" + g.param() + g.pick("", "", "", "/", "?x=1", "/?", "#a")
	}
	return request{method: method, target: target}
}

// small reports whether Express would sum few enough numbers for a fast
// test (judged with ParseInt; a mistake in it shows up as a difference).
func small(t string) bool {
	p, ok := pathname(t)
	if !ok {
		return true
	}
	rt, raw := matchRoute(p)
	if rt != routeAPI {
		return true
	}
	s, err := decodeURIComponent(raw)
	if err != nil {
		return true
	}
	n := ParseInt(s)
	return math.IsNaN(n) || n <= 2e6
}

func TestExpressDifferential(t *testing.T) {
	express := startExpress(t)
	goAddr := startGo(t, Options{})

	check := func(t *testing.T, req request, timeout time.Duration) {
		t.Helper()
		want, err := do(express, req, timeout)
		if err != nil {
			t.Fatalf("%s: Express: %v", req, err)
		}
		got, err := do(goAddr, req, timeout)
		if err != nil {
			t.Fatalf("%s: sumserver: %v", req, err)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("%s: sumserver differs from Express: %s\nExpress: %s\nsumserver: %s", req, d, want, got)
		}
	}

	t.Run("corpus", func(t *testing.T) {
		for _, req := range corpus() {
			check(t, req, 10*time.Second)
		}
	})

	t.Run("generated", func(t *testing.T) {
		g := generator{rand.New(rand.NewPCG(*diffSeed, 0))}
		t.Logf("seed %d (-diff.seed), %d requests (-diff.n)", *diffSeed, *diffN)
		for i := 0; i < *diffN; {
			req := g.request()
			if !small(req.target) {
				continue
			}
			i++
			check(t, req, 10*time.Second)
			if t.Failed() && i > 50 {
				t.Fatalf("stopping at the first failures (seed %d)", *diffSeed)
			}
		}
	})

	t.Run("heavy", func(t *testing.T) {
		// The cap: ~5 s each in Node and in Go; the two peers run at once.
		for _, target := range []string{"/api/5000000000", "/api/" + strings.Repeat("9", 40)} {
			req := request{method: "GET", target: target}
			var want, got reply
			var werr, gerr error
			var wg sync.WaitGroup
			wg.Go(func() { want, werr = do(express, req, 2*time.Minute) })
			wg.Go(func() { got, gerr = do(goAddr, req, 2*time.Minute) })
			wg.Wait()
			if werr != nil || gerr != nil {
				t.Fatalf("%s: Express: %v, sumserver: %v", req, werr, gerr)
			}
			if want.body != "Final count is 12500000000066986000" {
				t.Errorf("%s: Express answered %q, FACTS.md says 12500000000066986000", req, want.body)
			}
			if d := diff(want, got); d != "" {
				t.Errorf("%s: %s", req, d)
			}
		}
	})

	t.Run("oversized", func(t *testing.T) {
		// Both HTTP parsers refuse a 100 KB target before any app code runs
		// and close the connection, often before the client has sent it all
		// (a reset then). Their pages differ (Node's is empty, Go's says why);
		// the status, when it arrives, must not, and the server lives on.
		req := request{method: "GET", target: "/api/" + strings.Repeat("1", 100<<10)}
		for _, addr := range []string{express, goAddr} {
			got, err := doOversized(addr, req)
			if err == nil && got.status != 431 {
				t.Errorf("%s: 100 KB target: status %d, want 431", addr, got.status)
			}
			if r, err := do(addr, request{method: "GET", target: "/"}, 10*time.Second); err != nil || r.body != "Hello World!" {
				t.Errorf("%s: after a 100 KB target, GET / gives %v, %v", addr, r, err)
			}
		}
	})
}

// doOversized sends req while reading the reply, so that the reply is read
// when the server answers before taking the whole request.
func doOversized(addr string, req request) (reply, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", req.method, req.target, addr)
	}()
	return readReply(bufio.NewReader(c), req.method)
}

// nodeEval runs a script with input on stdin and returns its stdout.
func nodeEval(t *testing.T, script string, input []byte) []byte {
	t.Helper()
	needNode(t)
	cmd := exec.Command("node", "-e", script)
	cmd.Stdin = strings.NewReader(string(input))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	return out
}

// TestParseIntAgainstNode compares ParseInt with V8's parseInt.
func TestParseIntAgainstNode(t *testing.T) {
	r := rand.New(rand.NewPCG(*diffSeed, 1))
	pieces := []string{" ", "\t", "\n", "\v", "\f", "\r", "\u00a0", "\ufeff", "\u2028", "\u2029", "\u1680",
		"\u2000", "\u2005", "\u200a", "\u202f", "\u205f", "\u3000", "\u180e", "\u200b", "\u0085", "\u00ad",
		"+", "-", "0x", "0X", "0", "1", "7", "9", "00", "123456", "ff", "Fg", "e", "E", ".", "x", "Infinity",
		"１", "٣", "99999999999999999999999", "9007199254740993", "0x20000000000001", "0x1fffffffffffff",
		strings.Repeat("9", 330), strings.Repeat("f", 270), "5000000000", "4999999999.9"}
	var in []string
	for range 20000 {
		var b strings.Builder
		for range r.IntN(6) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		in = append(in, b.String())
	}
	data, _ := json.Marshal(in)
	out := nodeEval(t, `let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
		const a=JSON.parse(s).map(x=>{const v=parseInt(x);return Object.is(v,-0)?"-0":String(v)});
		process.stdout.write(JSON.stringify(a))})`, data)
	var want []string
	if err := json.Unmarshal(out, &want); err != nil || len(want) != len(in) {
		t.Fatalf("node's answer: %v (%d answers for %d inputs)", err, len(want), len(in))
	}
	bad := 0
	for i, s := range in {
		v := ParseInt(s)
		got := FormatNumber(v)
		if v == 0 && math.Signbit(v) {
			got = "-0"
		}
		if got != want[i] {
			t.Errorf("ParseInt(%q) = %s, V8 says %s", s, got, want[i])
			if bad++; bad > 20 {
				t.FailNow()
			}
		}
	}
}

// TestFormatNumberAgainstNode compares FormatNumber with V8's String(x).
func TestFormatNumberAgainstNode(t *testing.T) {
	r := rand.New(rand.NewPCG(*diffSeed, 2))
	var xs []float64
	for range 20000 {
		var x float64
		switch r.IntN(6) {
		case 0:
			x = math.Float64frombits(r.Uint64())
		case 1:
			x = float64(r.Int64N(1 << 62))
		case 2:
			x = float64(r.IntN(1000000)) / math.Pow(10, float64(r.IntN(12)))
		case 3:
			x = r.Float64() * math.Pow(10, float64(r.IntN(60)-30))
		case 4:
			n := float64(r.Int64N(5000000001))
			x = n * (n + 1) / 2 * (1 + r.Float64()*1e-9)
		case 5:
			x = math.Pow(10, float64(r.IntN(40)-20)) * (1 + float64(r.IntN(3))*0.5)
		}
		xs = append(xs, x)
	}
	buf := make([]byte, 8*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(x))
	}
	out := nodeEval(t, `const cs=[];process.stdin.on("data",d=>cs.push(d)).on("end",()=>{
		const b=Buffer.concat(cs);const o=[];
		for(let i=0;i<b.length;i+=8)o.push(String(b.readDoubleLE(i)));
		process.stdout.write(o.join("\n"))})`, buf)
	want := strings.Split(string(out), "\n")
	if len(want) != len(xs) {
		t.Fatalf("node gave %d answers for %d numbers", len(want), len(xs))
	}
	bad := 0
	for i, x := range xs {
		if got := FormatNumber(x); got != want[i] {
			t.Errorf("FormatNumber(%b) = %s, V8 says %s", math.Float64bits(x), got, want[i])
			if bad++; bad > 20 {
				t.FailNow()
			}
		}
	}
}
