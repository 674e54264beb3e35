package sessions

import (
	"sync"
	"time"
)

// maxSamples is how many propagation delays a worker remembers.
const maxSamples = 8192

// Sample is one token's propagation to this worker.
type Sample struct {
	// ID is the first 8 hex digits of the token's SHA-256.
	ID string `json:"id"`
	// Op is add (login) or del (logout).
	Op string `json:"op"`
	// US is the delay from the event on its worker to its application
	// here, in microseconds.
	US int64 `json:"us"`
}

// Stats is what GET /sessions/stats answers.
type Stats struct {
	PID     int    `json:"pid"`
	Mode    string `json:"mode"`
	Tokens  int    `json:"tokens"`
	Evicted uint64 `json:"evicted"`
	// Applied counts the master's messages applied; Bad the malformed ones.
	Applied uint64 `json:"applied"`
	Bad     uint64 `json:"bad"`
	// Samples are the last propagation delays, oldest first.
	Samples []Sample `json:"samples"`
	// Handover is the state this worker got from the master before it
	// served: tokens, and the time from reading the first chunk to having
	// applied the last one (µs; the worker's start-up is not counted).
	HandoverTokens int   `json:"handover_tokens"`
	HandoverUS     int64 `json:"handover_us"`
}

type stats struct {
	pid  int
	mode string

	mu       sync.Mutex
	applied  uint64
	badN     uint64
	ring     []Sample
	next     int
	hoTokens int
	hoUS     int64
	hoStart  time.Time
}

func (st *stats) bad() {
	st.mu.Lock()
	st.badN++
	st.mu.Unlock()
}

func (st *stats) sample(id, op string, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.applied++
	s := Sample{ID: id, Op: op, US: d.Microseconds()}
	if len(st.ring) < maxSamples {
		st.ring = append(st.ring, s)
		return
	}
	st.ring[st.next] = s
	st.next = (st.next + 1) % maxSamples
}

// snap records a snapshot chunk read at start and applied now.
func (st *stats) snap(n int, last bool, start time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.applied++
	if st.hoStart.IsZero() {
		st.hoStart = start
	}
	st.hoTokens += n
	if last {
		st.hoUS = time.Since(st.hoStart).Microseconds()
	}
}

// Stats returns this server's counters.
func (s *Server) Stats() Stats {
	st := &s.st
	out := Stats{PID: st.pid, Mode: st.mode}
	if s.store != nil {
		out.Tokens = s.store.Len()
		out.Evicted = s.store.Evicted()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	out.Applied, out.Bad = st.applied, st.badN
	out.Samples = append(append(make([]Sample, 0, len(st.ring)), st.ring[st.next:]...), st.ring[:st.next]...)
	out.HandoverTokens, out.HandoverUS = st.hoTokens, st.hoUS
	return out
}
