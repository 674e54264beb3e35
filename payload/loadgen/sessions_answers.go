package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Answer is one request of SessionsAnswers's scenario and its answer, the
// token masked (it differs on every run) and an error's wording too (the
// status may not differ; the words may).
type Answer struct {
	Req    string
	Status int
	Body   string
}

var tokenRE = regexp.MustCompile(`"token":"[A-Za-z0-9._-]+"`)

// SessionsAnswers runs the comparison scenario of the session app (issue
// 17: the Node model answer and the Go payload give the same answers)
// against base (http://host:port) in mode: a login, bad logins (empty,
// truncated, not an object, a number, a name too long, a huge body, the
// wrong content type), bad bearers, and, except in memory mode (whose
// answers depend on the worker reached), GET /me four times, a logout and
// GET /me four times again. In master mode it waits, up to 30 s, until
// workers workers hold (then dropped) the token before the follow-ups.
func SessionsAnswers(ctx context.Context, base, mode string, workers int) ([]Answer, error) {
	base = strings.TrimSuffix(base, "/")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: 10 * time.Second}
	c := NewSessionClient(base, 10*time.Second)
	var out []Answer
	var tok string
	do := func(method, path, auth, ctype, body string) error {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		s := string(b)
		if tokenRE.MatchString(s) {
			var v struct{ Token string }
			_ = json.Unmarshal(b, &v)
			tok = v.Token
			s = tokenRE.ReplaceAllString(s, `"token":"<token>"`)
		}
		if resp.StatusCode >= 400 && strings.Contains(s, `"error"`) {
			s = `{"error":…}`
		}
		out = append(out, Answer{fmt.Sprintf("%s %s auth=%.12q %s %.30q", method, path, auth, ctype, body), resp.StatusCode, s})
		return nil
	}
	propagated := func(held bool) error {
		if mode != "master" {
			return nil
		}
		return c.WaitHeld(ctx, tok, workers, held, 30*time.Second)
	}
	if err := do("POST", "/login", "", "application/json", `{"name":"ana"}`); err != nil {
		return out, err
	}
	ana := tok
	if ana == "" {
		return out, fmt.Errorf("POST /login gave no token: %+v", out)
	}
	if err := propagated(true); err != nil {
		return out, err
	}
	steps := [][5]string{}
	for _, bad := range []string{`{"name":""}`, `{"name":`, `[]`, `{"name":7}`, `{"name":"` + strings.Repeat("x", 65) + `"}`, strings.Repeat(" ", 5000)} {
		steps = append(steps, [5]string{"POST", "/login", "", "application/json", bad})
	}
	steps = append(steps,
		[5]string{"POST", "/login", "", "text/plain", `{"name":"ana"}`},
		[5]string{"GET", "/me", "", "", ""},
		[5]string{"GET", "/me", "Bearer nope", "", ""},
		[5]string{"GET", "/me", "Basic " + ana, "", ""},
		[5]string{"GET", "/me", "Bearer " + ana + "x", "", ""},
		[5]string{"POST", "/logout", "Bearer nope", "", ""},
	)
	for _, s := range steps {
		if err := do(s[0], s[1], s[2], s[3], s[4]); err != nil {
			return out, err
		}
	}
	if mode == "memory" {
		return out, nil
	}
	tok = ana
	for range 4 {
		if err := do("GET", "/me", "Bearer "+ana, "", ""); err != nil {
			return out, err
		}
	}
	if err := do("POST", "/logout", "Bearer "+ana, "", ""); err != nil {
		return out, err
	}
	tok = ana
	if err := propagated(false); err != nil {
		return out, err
	}
	for range 4 {
		if err := do("GET", "/me", "Bearer "+ana, "", ""); err != nil {
			return out, err
		}
	}
	return out, nil
}

// DiffAnswers lists the steps where two runs of SessionsAnswers differ in
// status or body (the requests name tokens, which differ).
func DiffAnswers(a, b []Answer) []string {
	var diffs []string
	for i := range max(len(a), len(b)) {
		var x, y any = "(none)", "(none)"
		same := i < len(a) && i < len(b) && a[i].Status == b[i].Status && a[i].Body == b[i].Body
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if !same {
			diffs = append(diffs, fmt.Sprintf("step %d:\n  %+v\n  %+v", i, x, y))
		}
	}
	return diffs
}
