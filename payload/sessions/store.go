package sessions

import (
	"sync"
	"time"
)

// Entry is one token and what it stands for.
type Entry struct {
	Token string
	Name  string
	// Exp is the expiry, unix seconds.
	Exp int64
}

// Store is a bounded token set: at most cap tokens, the oldest evicted
// first (insertion order), expired ones dropped as they are met.
type Store struct {
	cap int

	mu      sync.RWMutex
	m       map[string]Entry
	order   []string // insertion order, with holes (revoked tokens) skipped lazily
	head    int
	evicted uint64
}

// NewStore returns a store of at most cap tokens (DefaultCap if cap <= 0).
func NewStore(cap int) *Store {
	if cap <= 0 {
		cap = DefaultCap
	}
	return &Store{cap: cap, m: make(map[string]Entry)}
}

// Add adds e; adding a token already held changes nothing. It reports
// whether the token is new.
func (s *Store) Add(e Entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(e, time.Now().Unix())
}

// AddAll adds every entry (a snapshot from the master); hint is how many
// the whole snapshot holds (0 if unknown).
func (s *Store) AddAll(es []Entry, hint int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Unix()
	if len(s.m) == 0 && len(s.order) == s.head {
		// A new worker's first chunk: room for the whole set at once
		// (the master's total, at most the cap), not grown map by map.
		s.m = make(map[string]Entry, min(max(hint, len(es)), s.cap))
		s.order = make([]string, 0, min(max(hint, len(es)), s.cap))
		s.head = 0
	}
	for _, e := range es {
		s.addLocked(e, now)
	}
}

func (s *Store) addLocked(e Entry, now int64) bool {
	if _, ok := s.m[e.Token]; ok || e.Exp <= now {
		return false
	}
	s.m[e.Token] = e
	s.order = append(s.order, e.Token)
	// Drop from the front what is gone, expired or over the cap.
	for s.head < len(s.order) {
		t := s.order[s.head]
		old, ok := s.m[t]
		switch {
		case !ok:
		case len(s.m) > s.cap:
			delete(s.m, t)
			s.evicted++
		case old.Exp <= now:
			delete(s.m, t)
		default:
			s.compactLocked()
			return true
		}
		s.order[s.head] = ""
		s.head++
	}
	s.compactLocked()
	return true
}

// compactLocked keeps order's length within a small multiple of the live
// tokens, however many were revoked.
func (s *Store) compactLocked() {
	if s.head > 1024 && s.head > len(s.order)/2 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	if len(s.order)-s.head > 2*len(s.m)+1024 {
		live := s.order[:0]
		for _, t := range s.order[s.head:] {
			if _, ok := s.m[t]; ok {
				live = append(live, t)
			}
		}
		clear(s.order[len(live):])
		s.order, s.head = live, 0
	}
}

// Get returns the name behind a live token.
func (s *Store) Get(tok string) (string, bool) {
	s.mu.RLock()
	e, ok := s.m[tok]
	s.mu.RUnlock()
	if !ok || e.Exp <= time.Now().Unix() {
		return "", false
	}
	return e.Name, true
}

// Revoke removes a token and reports whether it was held.
func (s *Store) Revoke(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[tok]
	delete(s.m, tok)
	return ok
}

// Snapshot returns the live tokens, oldest first.
func (s *Store) Snapshot() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := time.Now().Unix()
	out := make([]Entry, 0, len(s.m))
	for _, t := range s.order[s.head:] {
		if e, ok := s.m[t]; ok && e.Exp > now {
			out = append(out, e)
		}
	}
	return out
}

// Len is the number of tokens held (expired ones not yet dropped included).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// Evicted counts tokens dropped because the store was full.
func (s *Store) Evicted() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.evicted
}
