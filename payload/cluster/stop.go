// Signals: a worker signalled by someone else, Stop (SIGTERM/SIGINT) and Kill.

package cluster

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// onQuit: the worker was signalled (not by us) and asks to leave: stop
// sending it connections, let it drain, and fork a successor.
func (m *Master) onQuit(w *worker) {
	m.mu.Lock()
	s := m.slots[w.slot-1]
	wasCur := s.cur == w
	up := time.Since(w.started)
	m.mu.Unlock()
	m.logf("%s was signalled; draining it", w)
	m.retire(w, false)
	m.mu.Lock()
	if wasCur && !m.stopping && !s.replacing {
		s.restarts++
		m.restarts++
		s.backoff = nextBackoff(s.backoff, up)
		m.logf("worker %d: restarting in %s", s.id, s.backoff)
		m.respawnAfterLocked(s, s.backoff)
	}
	m.mu.Unlock()
}

// Stop stops the master gracefully: no more connections are accepted,
// every worker drains (up to ShutdownTimeout), then Wait returns. It
// returns at once if a stop is already under way.
func (m *Master) Stop() {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return
	}
	m.stopping = true
	close(m.stopCh)
	m.mu.Unlock()
	sdNotify("STOPPING=1\nSTATUS=stopping")
	m.logf("stopping: draining workers (up to %s)", m.cfg.ShutdownTimeout)

	m.ln.Close()
	if m.dispatchDone != nil {
		<-m.dispatchDone
	}
	m.mu.Lock()
	ws := m.workersLocked()
	m.mu.Unlock()
	for _, w := range ws {
		m.retire(w, true)
	}
	limit := time.NewTimer(m.cfg.ShutdownTimeout + 5*time.Second)
	var killed []*worker
	for _, w := range ws {
		select {
		case <-w.exited:
		case <-limit.C:
			limit.Reset(0)
			killed = append(killed, w)
			_ = w.proc.Kill()
		}
	}
	for _, w := range killed {
		<-w.exited
	}
	<-m.replacerDone
	m.statsLn.Close()
	syscall.Close(m.devnull)
	m.mu.Lock()
	forced := m.killed
	m.mu.Unlock()
	switch {
	case len(killed) > 0:
		m.err = fmt.Errorf("%d workers did not drain within %s and were killed", len(killed), m.cfg.ShutdownTimeout+5*time.Second)
	case forced:
		m.err = errors.New("workers killed before they drained")
	}
	m.logf("stopped")
	close(m.done)
}

// Kill kills every worker at once (SIGKILL), e.g. on a second Ctrl-C.
func (m *Master) Kill() {
	m.mu.Lock()
	m.killed = true
	ws := m.workersLocked()
	m.mu.Unlock()
	for _, w := range ws {
		_ = w.proc.Kill()
	}
}
