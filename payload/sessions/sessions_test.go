package sessions

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseBearer(t *testing.T) {
	long := strings.Repeat("a", MaxToken)
	for _, tt := range []struct {
		h, want string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER   a.b-c_d", "a.b-c_d", true},
		{"Bearer " + long, long, true},
		{"Bearer " + long + "a", "", false},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearer abc def", "", false},
		{"Bearer abc\x00", "", false},
		{"Bearer ábc", "", false},
		{"Bearer abc=", "", false},
	} {
		got, ok := ParseBearer(tt.h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseLogin(t *testing.T) {
	for _, tt := range []struct {
		body, want string
		ok         bool
	}{
		{`{"name":"ana"}`, "ana", true},
		{` {"name":"José","age":3} `, "José", true},
		{`{"name":"` + strings.Repeat("x", MaxName) + `"}`, strings.Repeat("x", MaxName), true},
		{`{"name":"` + strings.Repeat("x", MaxName+1) + `"}`, "", false},
		{`{"name":""}`, "", false},
		{`{"name":"a\nb"}`, "", false},
		{`{"name":"a\u0000"}`, "", false},
		{`{"name":"\ud800"}`, "", false},
		{`{"name":3}`, "", false},
		{`{"name":null}`, "", false},
		{`{}`, "", false},
		{`[]`, "", false},
		{`"ana"`, "", false},
		{`{"name":"ana"} {}`, "", false},
		{`{"name":"ana"`, "", false},
		{``, "", false},
		{`{"name":"ana","x":"` + strings.Repeat("y", MaxBody) + `"}`, "", false},
	} {
		got, err := ParseLogin([]byte(tt.body))
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseLogin(%.40q) = %q, %v; want %q, ok %v", tt.body, got, err, tt.want, tt.ok)
		}
	}
}

func TestSigner(t *testing.T) {
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	s, err := NewSigner([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner([]byte("0123456789abcdeF"))
	tok := s.Sign("ana", 1234)
	if name, exp, ok := s.Verify(tok); !ok || name != "ana" || exp != 1234 {
		t.Errorf("Verify = %q %d %v", name, exp, ok)
	}
	if tok2 := s.Sign("ana", 1234); tok2 == tok {
		t.Error("two tokens for the same name and expiry are equal")
	}
	if _, ok := ParseBearer("Bearer " + tok); !ok {
		t.Errorf("a signed token %q is not a valid bearer token", tok)
	}
	body, sig, _ := strings.Cut(tok, ".")
	for _, bad := range []string{
		"", ".", body, body + ".", "." + sig, body + "." + sig + "x", body + "x." + sig,
		strings.Replace(tok, body[:4], "AAAA", 1), tok + "." + sig,
	} {
		if _, _, ok := s.Verify(bad); ok {
			t.Errorf("Verify(%q) accepted a tampered token", bad)
		}
	}
	if _, _, ok := other.Verify(tok); ok {
		t.Error("another key's signer accepted the token")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if k, err := LoadKey(write("ok", "  0123456789abcdef0123\n")); err != nil || string(k) != "0123456789abcdef0123" {
		t.Errorf("LoadKey = %q, %v", k, err)
	}
	for _, p := range []string{write("short", "abc\n"), write("big", strings.Repeat("k", 5000)), filepath.Join(dir, "none")} {
		if _, err := LoadKey(p); err == nil {
			t.Errorf("LoadKey(%s) accepted it", filepath.Base(p))
		}
	}
}

func TestStoreCapEvictsOldest(t *testing.T) {
	s := NewStore(3)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range 5 {
		s.Add(Entry{Token: fmt.Sprint("t", i), Name: "n", Exp: exp})
	}
	if s.Len() != 3 || s.Evicted() != 2 {
		t.Errorf("len %d evicted %d, want 3 and 2", s.Len(), s.Evicted())
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := s.Get(fmt.Sprint("t", i)); ok != want {
			t.Errorf("t%d held = %v, want %v", i, ok, want)
		}
	}
	// A revoked token leaves a hole: the next add evicts nothing.
	s.Revoke("t3")
	s.Add(Entry{Token: "t5", Name: "n", Exp: exp})
	if got := s.Snapshot(); len(got) != 3 || got[0].Token != "t2" || got[2].Token != "t5" {
		t.Errorf("snapshot %v, want t2 t4 t5", got)
	}
	// Expired tokens are refused and dropped.
	if s.Add(Entry{Token: "old", Name: "n", Exp: time.Now().Unix() - 1}) {
		t.Error("an expired token was added")
	}
}

func TestStoreStaysBounded(t *testing.T) {
	s := NewStore(100)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range 100_000 {
		tok := fmt.Sprint("t", i)
		s.Add(Entry{Token: tok, Name: "n", Exp: exp})
		if i%2 == 0 {
			s.Revoke(tok)
		}
	}
	s.mu.RLock()
	n, q := len(s.m), len(s.order)-s.head
	s.mu.RUnlock()
	if n > 100 || q > 2*100+1024+1 {
		t.Errorf("%d tokens, order queue %d: not bounded", n, q)
	}
}

func TestParseMessage(t *testing.T) {
	tok := NewToken()
	good := []string{
		`{"op":"add","tok":"` + tok + `","name":"ana","exp":5,"t":1}`,
		`{"op":"del","tok":"` + tok + `","t":1}`,
		`{"op":"snap","data":"` + tok + `\tana\t5\n` + tok + `x\tana <b>\t6\n","t":1,"last":true,"total":2}`,
		`{"op":"snap","t":1,"last":true}`,
	}
	for _, g := range good {
		if _, err := ParseMessage([]byte(g)); err != nil {
			t.Errorf("ParseMessage(%s): %v", g, err)
		}
	}
	bad := []string{
		``, `{}`, `[]`, `{"op":"add"}`, `{"op":"add","tok":"a b","name":"x"}`,
		`{"op":"add","tok":"` + tok + `","name":""}`, `{"op":"del"}`, `{"op":"boom","tok":"x"}`,
		`{"op":"snap","data":"x"}`, `{"op":"snap","data":"x\tana\n"}`, `{"op":"snap","data":"x\t\t1\n"}`, `{"op":"snap","data":"x y\tana\t1\n"}`,
		`{"op":"snap","data":"x\tana\tnope\n"}`, `{"op":"snap","data":7}`, `{"op":"snap","data":"x\tan\u0007a\t1\n"}`,
		`{"op":"snap","tok":"x","data":""}`, `{"op":"add","tok":"` + tok + `","name":"ana","data":"x"}`,
	}
	for _, b := range bad {
		if _, err := ParseMessage([]byte(b)); err == nil {
			t.Errorf("ParseMessage(%s) accepted it", b)
		}
	}
	// A hub chunk round-trips, names with quotes and markup included.
	m := Message{Op: "snap", Snap: []Entry{{Token: tok, Name: "ana", Exp: 7}, {Token: tok + "2", Name: `"<b>" \ ñ`, Exp: 8}}, T: 3, Last: true, Total: 2}
	b, _ := json.Marshal(m)
	got, err := ParseMessage(b)
	if err != nil || len(got.Snap) != 2 || got.Snap[0] != m.Snap[0] || got.Snap[1] != m.Snap[1] || !got.Last || got.Total != 2 {
		t.Errorf("round trip of %s: %+v %v", b, got, err)
	}
	// More entries than a chunk may hold are refused.
	big := Message{Op: "snap"}
	for i := range snapChunk + 1 {
		big.Snap = append(big.Snap, Entry{Token: fmt.Sprint("t", i), Name: "a", Exp: 1})
	}
	if b, _ := json.Marshal(big); len(b) < 64<<10 {
		if _, err := ParseMessage(b); err == nil {
			t.Errorf("a chunk of %d entries accepted", snapChunk+1)
		}
	}
}

// do sends one request to h and returns the status and body.
func do(t *testing.T, h http.Handler, method, path, auth, ctype, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func login(t *testing.T, h http.Handler, name string) string {
	t.Helper()
	code, body := do(t, h, "POST", "/login", "", "application/json", `{"name":"`+name+`"}`)
	var v struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Token == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	return v.Token
}

// The routes in each mode, on one process: the answers the Node model gives
// too (see the Node test in cmd/sumcluster).
func TestHandlerModes(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	for _, mode := range []Mode{Memory, Master, Stateless} {
		t.Run(mode.String(), func(t *testing.T) {
			s, err := New(Options{Mode: mode, Key: []byte("0123456789abcdef")})
			if err != nil {
				t.Fatal(err)
			}
			h := s.Wrap(next)
			tok := login(t, h, "ana")
			if code, body := do(t, h, "GET", "/me", "Bearer "+tok, "", ""); code != 200 || body != `{"name":"ana"}` {
				t.Errorf("GET /me: %d %s", code, body)
			}
			if code, _ := do(t, h, "GET", "/ME/", "bearer "+tok, "", ""); code != 200 {
				t.Errorf("GET /ME/ (Express matches it): %d", code)
			}
			for _, tt := range []struct {
				method, path, auth, ctype, body string
				want                            int
			}{
				{"GET", "/me", "", "", "", 401},
				{"GET", "/me", "Bearer nope", "", "", 401},
				{"GET", "/me", "Bearer " + tok + "x", "", "", 401},
				{"GET", "/me", "Basic " + tok, "", "", 401},
				{"GET", "/me", "Bearer " + strings.Repeat("A", 10000), "", "", 401},
				{"POST", "/login", "", "text/plain", `{"name":"ana"}`, 400},
				{"POST", "/login", "", "application/json", `{"name":""}`, 400},
				{"POST", "/login", "", "application/json", `{"name":`, 400},
				{"POST", "/login", "", "application/json", strings.Repeat(" ", MaxBody+1) + `{"name":"a"}`, 400},
				{"POST", "/logout", "Bearer nope", "", "", 401},
				{"GET", "/login", "", "", "", 404},
				{"POST", "/me", "", "", "", 404},
			} {
				if code, body := do(t, h, tt.method, tt.path, tt.auth, tt.ctype, tt.body); code != tt.want {
					t.Errorf("%s %s (auth %.20q, %s): %d %s, want %d", tt.method, tt.path, tt.auth, tt.ctype, code, body, tt.want)
				}
			}
			if code, _ := do(t, h, "POST", "/logout", "Bearer "+tok, "", ""); code != 204 {
				t.Errorf("POST /logout: %d", code)
			}
			// Stateless tokens cannot be revoked: valid until they expire.
			want := 401
			if mode == Stateless {
				want = 200
			}
			if code, _ := do(t, h, "GET", "/me", "Bearer "+tok, "", ""); code != want {
				t.Errorf("GET /me after logout: %d, want %d", code, want)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	for _, mode := range []Mode{Memory, Stateless} {
		s, err := New(Options{Mode: mode, TTL: time.Second, Key: []byte("0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Wrap(http.NotFoundHandler())
		tok := login(t, h, "ana")
		// Expiry has a one-second grain: wait for the second after exp.
		time.Sleep(2100 * time.Millisecond)
		if code, _ := do(t, h, "GET", "/me", "Bearer "+tok, "", ""); code != 401 {
			t.Errorf("%s: GET /me with an expired token: %d, want 401", mode, code)
		}
	}
}

// recorder is a Broadcaster that keeps what the hub relays.
type recorder struct {
	mu   sync.Mutex
	sent []Message
}

func (r *recorder) BroadcastExcept(except int, v any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := ParseMessage(v.(json.RawMessage)) // relayed as it came
	if err != nil {
		return err
	}
	r.sent = append(r.sent, m)
	return nil
}

func TestHubRelaysAndHandsOver(t *testing.T) {
	h := NewHub(0)
	var r recorder
	exp := time.Now().Add(time.Hour).Unix()
	var toks []string
	for range 1000 {
		tok := NewToken()
		toks = append(toks, tok)
		b, _ := json.Marshal(Message{Op: "add", Tok: tok, Name: "ana", Exp: exp, T: 1})
		h.OnMessage(&r, 1, b)
	}
	b, _ := json.Marshal(Message{Op: "del", Tok: toks[0], T: 1})
	h.OnMessage(&r, 2, b)
	h.OnMessage(&r, 2, []byte(`{"op":"snap","t":1}`)) // workers do not send snapshots
	h.OnMessage(&r, 2, []byte(`garbage`))
	if len(r.sent) != 1001 || h.Len() != 999 || h.Bad() != 2 {
		t.Errorf("relayed %d, holds %d, bad %d; want 1001, 999, 2", len(r.sent), h.Len(), h.Bad())
	}
	// A new worker gets the 999 in chunks that a worker's server applies.
	w, _ := New(Options{Mode: Master})
	var chunks int
	h.OnFork(func(v any) error {
		chunks++
		b, err := json.Marshal(v)
		if err != nil || len(b) > 64<<10 {
			t.Fatalf("chunk of %d bytes: %v", len(b), err)
		}
		w.OnMessage(b)
		return nil
	})
	st := w.Stats()
	if chunks != 2 || st.Tokens != 999 || st.HandoverTokens != 999 || st.Bad != 0 {
		t.Errorf("%d chunks, worker holds %d (handed %d, bad %d)", chunks, st.Tokens, st.HandoverTokens, st.Bad)
	}
	if _, ok := w.store.Get(toks[0]); ok {
		t.Error("the revoked token was handed over")
	}
}

// A logout relayed to a new worker before the master's snapshot (copied
// earlier) reaches it does not come back with the snapshot.
func TestSnapshotDoesNotResurrectLogout(t *testing.T) {
	w, _ := New(Options{Mode: Master})
	tok := NewToken()
	exp := time.Now().Add(time.Hour).Unix()
	del, _ := json.Marshal(Message{Op: "del", Tok: tok, T: 1})
	w.OnMessage(del)
	snap, _ := json.Marshal(Message{Op: "snap", Snap: []Entry{{Token: tok, Name: "ana", Exp: exp}}, T: 1, Last: true, Total: 1})
	w.OnMessage(snap)
	if _, ok := w.store.Get(tok); ok {
		t.Error("the snapshot brought a revoked token back")
	}
}

// Names that JSON escapes six-fold still fit the cluster's 64 KiB messages.
func TestHubChunksFitMessages(t *testing.T) {
	h := NewHub(0)
	var r recorder
	exp := time.Now().Add(time.Hour).Unix()
	for range 2000 {
		b, _ := json.Marshal(Message{Op: "add", Tok: NewToken(), Name: strings.Repeat("<", MaxName), Exp: exp, T: 1})
		h.OnMessage(&r, 1, b)
	}
	w, _ := New(Options{Mode: Master})
	h.OnFork(func(v any) error {
		b, err := json.Marshal(v)
		if err != nil || len(b)+1 > 64<<10 {
			t.Fatalf("chunk of %d bytes: %v", len(b), err)
		}
		w.OnMessage(b)
		return nil
	})
	if st := w.Stats(); st.Tokens != 2000 || st.Bad != 0 {
		t.Errorf("worker holds %d tokens (bad %d), want 2000", st.Tokens, st.Bad)
	}
}

func TestHubEmptyHandover(t *testing.T) {
	var msgs []any
	NewHub(0).OnFork(func(v any) error { msgs = append(msgs, v); return nil })
	if len(msgs) != 1 || !msgs[0].(wireMsg).Last {
		t.Errorf("empty hand-over sent %v, want one last, empty chunk", msgs)
	}
}

// GET /sessions/stats with a bearer says whether this worker holds that
// token (what loadgen's WaitHeld polls), and nothing else; stateless mode
// holds nothing and says so by leaving "has" out.
func TestStatsHolds(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	for _, tc := range []struct {
		mode       Mode
		own, other string // the "has" part for the own token and an unknown one
	}{
		{Memory, `"has":true`, `"has":false`},
		{Master, `"has":true`, `"has":false`},
		{Stateless, `"mode":"stateless"}`, `"mode":"stateless"}`},
	} {
		s, err := New(Options{Mode: tc.mode, Key: []byte("0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Wrap(next)
		tok := login(t, h, "ana")
		for auth, want := range map[string]string{"Bearer " + tok: tc.own, "Bearer nope": tc.other, "garbage": tc.other} {
			code, body := do(t, h, "GET", "/sessions/stats", auth, "", "")
			if code != 200 || !strings.Contains(body, want) || strings.Contains(body, "samples") {
				t.Errorf("%s, %.20q: %d %s, want %s and no samples", tc.mode, auth, code, body, want)
			}
		}
		if code, body := do(t, h, "GET", "/sessions/stats", "", "", ""); code != 200 || !strings.Contains(body, `"samples"`) {
			t.Errorf("%s without a bearer: %d %s, want the stats", tc.mode, code, body)
		}
	}
}
