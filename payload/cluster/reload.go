// Rolling reload: replacing workers one at a time with zero failed requests.

package cluster

import (
	"errors"
	"fmt"
	"time"
)

// retire stops sending connections to w and asks it to drain; requested
// means the master wants it gone (no respawn when it exits).
func (m *Master) retire(w *worker, requested bool) {
	m.mu.Lock()
	if requested {
		w.requested = true
	}
	if w.state.Load() == stExited {
		m.mu.Unlock()
		return
	}
	w.state.Store(stDraining)
	if s := m.slots[w.slot-1]; s.cur == w {
		s.cur = nil
	}
	m.rebuildLocked()
	m.mu.Unlock()

	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	_ = w.ipc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = w.ipc.Write([]byte{msgDrain})
}

// Reload replaces every worker, one at a time, each new one ready before
// its predecessor stops receiving connections; the old one then drains. It
// returns when the reload is done (nil if every slot was replaced).
func (m *Master) Reload() error {
	req := replaceReq{reason: "reload", done: make(chan error, 1)}
	select {
	case m.replaceCh <- req:
	case <-m.stopCh:
		return errStopping
	default:
		return errors.New("too many reloads queued")
	}
	select {
	case err := <-req.done:
		return err
	case <-m.stopCh:
		return errStopping
	}
}

func (m *Master) replacer() {
	defer close(m.replacerDone)
	for {
		select {
		case <-m.stopCh:
			return
		case req := <-m.replaceCh:
			if req.slot != nil {
				_ = m.replace(req.slot, req.reason)
				m.mu.Lock()
				req.slot.recycleQueued = false
				m.mu.Unlock()
				continue
			}
			req.done <- m.reloadAll()
		}
	}
}

func (m *Master) reloadAll() error {
	start := time.Now()
	sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading", monotonicUsec()))
	m.logf("reload: replacing %d workers one at a time", len(m.slots))
	var errs []error
	for _, s := range m.slots {
		if err := m.replace(s, "reload"); err != nil {
			errs = append(errs, err)
			if errors.Is(err, errStopping) {
				return err
			}
		}
	}
	sdNotify("READY=1\nSTATUS=serving")
	m.mu.Lock()
	m.reloads++
	m.mu.Unlock()
	err := errors.Join(errs...)
	if err != nil {
		m.logf("reload done in %s with errors: %v", time.Since(start).Round(time.Millisecond), err)
	} else {
		m.logf("reload done in %s", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// replace puts a new worker in slot s: fork, wait until it is ready, route
// to it instead of the old one, then let the old one drain and wait for it.
func (m *Master) replace(s *slot, reason string) error {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return errStopping
	}
	if s.cur == nil || s.cur.state.Load() != stReady {
		// Empty or starting: what starts is already the new code.
		m.mu.Unlock()
		return nil
	}
	s.replacing = true
	nw, err := m.spawnLocked(s)
	m.mu.Unlock()
	endReplacing := func() {
		m.mu.Lock()
		s.replacing = false
		if s.cur == nil && !m.stopping {
			s.backoff = nextBackoff(s.backoff, 0)
			m.respawnAfterLocked(s, s.backoff)
		}
		m.mu.Unlock()
	}
	if err != nil {
		endReplacing()
		m.logf("worker %d: %s: %v", s.id, reason, err)
		return err
	}
	t := time.NewTimer(m.cfg.ReadyTimeout)
	defer t.Stop()
	select {
	case <-nw.ready:
	case <-nw.exited:
		err = fmt.Errorf("worker %d: new worker pid %d exited before it was ready: %s", s.id, nw.pid, nw.exitDesc)
	case <-t.C:
		err = fmt.Errorf("worker %d: new worker pid %d not ready within %s", s.id, nw.pid, m.cfg.ReadyTimeout)
	case <-m.stopCh:
		return errStopping
	}
	if err == nil {
		m.mu.Lock()
		if m.stopping {
			m.mu.Unlock()
			return errStopping
		}
		if nw.state.Load() != stReady {
			err = fmt.Errorf("worker %d: new worker pid %d exited before it was ready", s.id, nw.pid)
		}
		m.mu.Unlock()
	}
	if err != nil {
		m.mu.Lock()
		nw.requested = true
		m.mu.Unlock()
		_ = nw.proc.Kill()
		m.logf("%s: %v; keeping the old worker", reason, err)
		endReplacing()
		return err
	}

	m.mu.Lock()
	old := s.cur
	s.cur = nw
	s.everReady = true
	if reason != "reload" {
		m.recycled++
	}
	m.rebuildLocked()
	m.mu.Unlock()
	if old == nil {
		m.logf("%s: worker %d is now id %d, pid %d", reason, s.id, nw.id, nw.pid)
	} else {
		m.logf("%s: %s replaced by id %d, pid %d", reason, old, nw.id, nw.pid)
		m.retire(old, true)
		kill := time.NewTimer(m.cfg.ShutdownTimeout + 5*time.Second)
		select {
		case <-old.exited:
		case <-kill.C:
			m.logf("%s did not drain within %s: killing it", old, m.cfg.ShutdownTimeout+5*time.Second)
			_ = old.proc.Kill()
		case <-m.stopCh:
		}
		kill.Stop()
	}
	endReplacing()
	return nil
}
