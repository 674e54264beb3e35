// Respawning a worker that died, with an exponential back-off (nextBackoff).

package cluster

import (
	"time"
)

func (m *Master) onExit(w *worker, desc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.all, w)
	served := w.c.served().Load()
	m.servedGone += served
	m.shm.release(w.cellIdx)
	prev := w.state.Swap(stExited)
	w.exitDesc = desc
	s := m.slots[w.slot-1]
	wasCur := s.cur == w
	if wasCur {
		s.cur = nil
		m.rebuildLocked()
	}
	up := time.Since(w.started).Round(time.Millisecond)
	close(w.exited)
	if w.requested || m.stopping {
		m.logf("%s exited: %s (served %d)", w, desc, served)
		return
	}
	if prev == stDraining || !wasCur {
		// Signalled by someone else (onQuit respawns), or a replacement
		// that died before it was ready (the replacer handles it).
		m.logf("%s exited: %s after %s", w, desc, up)
		return
	}
	s.restarts++
	m.restarts++
	if s.replacing {
		m.logf("%s exited unexpectedly: %s after %s; its replacement is starting", w, desc, up)
		return
	}
	s.backoff = nextBackoff(s.backoff, up)
	m.logf("%s exited unexpectedly: %s after %s; restarting in %s", w, desc, up, s.backoff)
	m.respawnAfterLocked(s, s.backoff)
}

// respawnAfterLocked forks a worker for s after d, unless something else
// filled the slot meanwhile. The caller holds m.mu.
func (m *Master) respawnAfterLocked(s *slot, d time.Duration) {
	if s.respawnPending {
		return
	}
	s.respawnPending = true
	time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		s.respawnPending = false
		if m.stopping || s.cur != nil || s.replacing {
			return
		}
		w, err := m.spawnLocked(s)
		if err != nil {
			s.backoff = nextBackoff(s.backoff, 0)
			m.logf("worker %d: %v; retrying in %s", s.id, err, s.backoff)
			m.respawnAfterLocked(s, s.backoff)
			return
		}
		s.cur = w
	})
}
