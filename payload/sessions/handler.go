package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	Mode Mode
	// Cap bounds the tokens kept (memory, master); 0 means DefaultCap.
	Cap int
	// TTL is a token's life; 0 means DefaultTTL.
	TTL time.Duration
	// Key signs stateless tokens (at least MinKey bytes; LoadKey).
	Key []byte
}

// Server serves the session routes of one worker (or of sumserver).
type Server struct {
	mode   Mode
	ttl    time.Duration
	store  *Store
	signer *Signer

	sendMu sync.Mutex
	send   func(v any) error // to the master (master mode), SetSend

	st stats

	// Until the master's snapshot is complete, logouts relayed to this
	// worker are remembered, so that the snapshot (copied earlier) cannot
	// bring a revoked token back.
	tombMu   sync.Mutex
	tombs    map[string]struct{}
	snapDone bool
}

// New returns the session routes for o.Mode (not Off).
func New(o Options) (*Server, error) {
	if o.Mode == Off {
		return nil, errors.New("sessions: mode off has no server")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	s := &Server{mode: o.Mode, ttl: o.TTL, st: stats{pid: os.Getpid(), mode: o.Mode.String()}}
	if o.Mode == Stateless {
		var err error
		if s.signer, err = NewSigner(o.Key); err != nil {
			return nil, err
		}
	} else {
		s.store = NewStore(o.Cap)
	}
	return s, nil
}

// SetSend gives a master-mode server its channel to the master
// (cluster.WorkerConfig.OnStart).
func (s *Server) SetSend(send func(v any) error) {
	s.sendMu.Lock()
	s.send = send
	s.sendMu.Unlock()
}

func (s *Server) tell(m Message) {
	s.sendMu.Lock()
	send := s.send
	s.sendMu.Unlock()
	if send != nil {
		_ = send(m.wire()) // the master is gone: this worker drains anyway
	}
}

// Wrap serves the session routes and passes every other request to next.
// Routes match as Express's do: case-insensitively, with or without a
// trailing slash.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.ToLower(strings.TrimSuffix(r.URL.Path, "/"))
		switch {
		case p == "/login" && r.Method == http.MethodPost:
			s.login(w, r)
		case p == "/me" && r.Method == http.MethodGet:
			s.me(w, r)
		case p == "/logout" && r.Method == http.MethodPost:
			s.logout(w, r)
		case p == "/sessions/stats" && r.Method == http.MethodGet && r.Header.Get("Authorization") != "":
			writeJSON(w, http.StatusOK, s.holds(r))
		case p == "/sessions/stats" && r.Method == http.MethodGet:
			writeJSON(w, http.StatusOK, s.Stats())
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type errorBody struct {
	Error string `json:"error"`
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeJSON(w, http.StatusUnauthorized, errorBody{"unauthorized"})
}

func badRequest(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		badRequest(w, errBadBody)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		w.Header().Set("Connection", "close")
		badRequest(w, errBadBody)
		return
	}
	name, err := ParseLogin(body)
	if err != nil {
		badRequest(w, err)
		return
	}
	now := time.Now()
	exp := now.Add(s.ttl).Unix()
	var tok string
	switch s.mode {
	case Stateless:
		tok = s.signer.Sign(name, exp)
	default:
		tok = NewToken()
		s.store.Add(Entry{Token: tok, Name: name, Exp: exp})
		if s.mode == Master {
			s.tell(Message{Op: "add", Tok: tok, Name: name, Exp: exp, T: now.UnixNano()})
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Token string `json:"token"`
	}{tok})
}

// lookup returns the name behind the request's bearer token.
func (s *Server) lookup(r *http.Request) (tok, name string, ok bool) {
	tok, ok = ParseBearer(r.Header.Get("Authorization"))
	if !ok {
		return "", "", false
	}
	if s.mode == Stateless {
		name, exp, ok := s.signer.Verify(tok)
		if !ok || exp <= time.Now().Unix() {
			return "", "", false
		}
		return tok, name, true
	}
	name, ok = s.store.Get(tok)
	return tok, name, ok
}

// Holds is GET /sessions/stats's answer to a request with a bearer: whether
// this worker holds that token (absent in stateless mode: nothing is held).
// The tests and the bench poll it to know a token reached every worker.
type Holds struct {
	PID  int    `json:"pid"`
	Mode string `json:"mode"`
	Has  *bool  `json:"has,omitempty"`
}

func (s *Server) holds(r *http.Request) Holds {
	h := Holds{PID: s.st.pid, Mode: s.st.mode}
	if s.mode != Stateless {
		_, _, ok := s.lookup(r)
		h.Has = &ok
	}
	return h
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	_, name, ok := s.lookup(r)
	if !ok {
		unauthorized(w)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Name string `json:"name"`
	}{name})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	tok, _, ok := s.lookup(r)
	if !ok {
		unauthorized(w)
		return
	}
	if s.mode != Stateless {
		s.store.Revoke(tok)
		if s.mode == Master {
			s.tell(Message{Op: "del", Tok: tok, T: time.Now().UnixNano()})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// OnMessage applies a message from the master (cluster.WorkerConfig.OnMessage).
func (s *Server) OnMessage(raw json.RawMessage) {
	now := time.Now()
	m, err := ParseMessage(raw)
	if err != nil || s.store == nil {
		s.st.bad()
		return
	}
	switch m.Op {
	case "add":
		s.store.Add(Entry{Token: m.Tok, Name: m.Name, Exp: m.Exp})
	case "del":
		s.store.Revoke(m.Tok)
		s.tombMu.Lock()
		if !s.snapDone && len(s.tombs) < DefaultCap {
			if s.tombs == nil {
				s.tombs = map[string]struct{}{}
			}
			s.tombs[m.Tok] = struct{}{}
		}
		s.tombMu.Unlock()
	case "snap":
		s.tombMu.Lock()
		if len(s.tombs) > 0 {
			live := m.Snap[:0]
			for _, e := range m.Snap {
				if _, gone := s.tombs[e.Token]; !gone {
					live = append(live, e)
				}
			}
			m.Snap = live
		}
		if m.Last {
			s.snapDone, s.tombs = true, nil
		}
		s.tombMu.Unlock()
		s.store.AddAll(m.Snap, min(m.Total, DefaultCap))
		s.st.snap(len(m.Snap), m.Last, now)
		return
	}
	// A delay counts once this worker has its snapshot (it serves then): a
	// message queued while it was starting measures its start-up, not the
	// propagation. Without a master (tests) every message counts.
	s.sendMu.Lock()
	standalone := s.send == nil
	s.sendMu.Unlock()
	s.tombMu.Lock()
	serving := s.snapDone || standalone
	s.tombMu.Unlock()
	if serving {
		s.st.sample(shortID(m.Tok), m.Op, now.Sub(time.Unix(0, m.T)))
	}
}

// String describes the server for a log line.
func (s *Server) String() string {
	return fmt.Sprintf("sessions %s", s.mode)
}
