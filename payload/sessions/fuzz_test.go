package sessions

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Seeds also in testdata/fuzz/<FuzzName>/.

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a.b", "Basic x", "", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := ParseBearer(h)
		if ok && (tok == "" || len(tok) > MaxToken || strings.ContainsAny(tok, " \t\r\n")) {
			t.Errorf("ParseBearer(%q) = %q", h, tok)
		}
	})
}

func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{`{"name":"ana"}`, `{"name":""}`, `[]`, `{"name":"\u0000"}`, `{"name":"a"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := ParseLogin(b)
		if err == nil && !ValidName(name) {
			t.Errorf("ParseLogin(%q) = invalid name %q", b, name)
		}
	})
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner([]byte("0123456789abcdef"))
	f.Add(s.Sign("ana", 99))
	f.Add("x.y")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if name, _, ok := s.Verify(tok); ok && !ValidName(name) {
			t.Errorf("Verify(%q) = invalid name %q", tok, name)
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"op":"add","tok":"abc","name":"ana","exp":5,"t":1}`, `{"op":"del","tok":"abc","t":1}`,
		`{"op":"snap","data":"abc\tana\t5\n","t":1,"last":true}`, `{"op":"snap","data":""}`,
	} {
		f.Add([]byte(s))
	}
	w, _ := New(Options{Mode: Master, Cap: 50})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err == nil && m.Op != "add" && m.Op != "del" && m.Op != "snap" {
			t.Errorf("ParseMessage(%q) = op %q", b, m.Op)
		}
		w.OnMessage(b) // never panics, stays within its cap
		if n := w.store.Len(); n > 50 {
			t.Errorf("%d tokens held, cap 50", n)
		}
	})
}

// FuzzHandler: any body and Authorization header get 200, 204, 400 or 401,
// never a panic or a 500.
func FuzzHandler(f *testing.F) {
	f.Add("/login", "", []byte(`{"name":"ana"}`))
	f.Add("/me", "Bearer abc", []byte(nil))
	f.Add("/logout", "Bearer a.b", []byte(nil))
	hs := map[string]http.Handler{}
	for _, m := range []Mode{Memory, Master, Stateless} {
		s, _ := New(Options{Mode: m, Cap: 100, Key: []byte("0123456789abcdef")})
		hs[m.String()] = s.Wrap(http.NotFoundHandler())
	}
	f.Fuzz(func(t *testing.T, path, auth string, body []byte) {
		method := "POST"
		if path == "/me" {
			method = "GET"
		}
		if path != "/login" && path != "/me" && path != "/logout" {
			return
		}
		for mode, h := range hs {
			r := httptest.NewRequest(method, path, strings.NewReader(string(body)))
			r.Header.Set("Content-Type", "application/json")
			r.Header["Authorization"] = []string{auth}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			switch w.Code {
			case 200, 204, 400, 401:
			default:
				t.Errorf("%s: %s %s (auth %q, body %q): %d", mode, method, path, auth, body, w.Code)
			}
		}
	})
}
