// Accepting connections and scheduling each to a worker (Least, RoundRobin).

package cluster

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"time"
)

// blockedAfter: a worker with requests in flight and no progress for this
// long (a long computation on a serial event loop) ranks after the others.
const blockedAfter = 20 * time.Millisecond

// connWait bounds how long the master holds a connection while no worker is
// ready (all crashed, or starting).
const connWait = 10 * time.Second

// rebuildLocked publishes the set of workers that receive connections: each
// slot's current worker once ready. The caller holds m.mu.
func (m *Master) rebuildLocked() {
	r := make([]*worker, 0, len(m.slots))
	for _, s := range m.slots {
		if s.cur != nil && s.cur.state.Load() == stReady {
			r = append(r, s.cur)
		}
	}
	m.routes.Store(&r)
	close(m.routeCh)
	m.routeCh = make(chan struct{})
}

func (m *Master) routesChanged() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.routeCh
}

var errDraining = errors.New("worker is draining")

func (m *Master) sendConn(w *worker, fd int) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.closed {
		return errDraining
	}
	w.handed.Add(1)
	_ = w.ipc.SetWriteDeadline(time.Now().Add(time.Second))
	if err := sendFD(w.ipc, fd); err != nil {
		w.handed.Add(^uint64(0))
		return err
	}
	return nil
}

// dispatch accepts connections and hands them to workers (schedules Least
// and RoundRobin).
func (m *Master) dispatch() {
	defer close(m.dispatchDone)
	var lastLog time.Time
	for {
		fd, err := acceptRaw(m.rc)
		if err != nil {
			var se *os.SyscallError
			if !errors.As(err, &se) {
				return // the listener was closed
			}
			if time.Since(lastLog) > 5*time.Second {
				m.logf("accept: %v", err)
				lastLog = time.Now()
			}
			select {
			case <-m.stopCh:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		m.handOff(fd)
	}
}

// handOff passes one accepted connection to a worker, waiting up to
// connWait for one to be ready; the master's copy is closed either way.
func (m *Master) handOff(fd int) {
	defer syscall.Close(fd)
	var skip []*worker
	var deadline time.Time
	for {
		w := m.pick(*m.routes.Load(), skip)
		if w != nil {
			if m.sendConn(w, fd) == nil {
				return
			}
			skip = append(skip, w)
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(connWait)
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-m.routesChanged():
			t.Stop()
			skip = nil
		case <-t.C:
			m.logf("no worker ready for %s: connection dropped", connWait)
			return
		case <-m.stopCh:
			t.Stop()
			return
		}
	}
}

// wload is what pickLeast knows of a worker.
type wload struct {
	inflight, pending int64
	progress          int64 // unix ns
	skip              bool
}

// pickLeast returns the index of the least loaded worker, or -1: fewest
// requests in flight plus connections handed but not yet received; a worker
// blocked (requests in flight, no progress for blockedAfter) ranks after
// any other, and of two blocked workers the one stuck more than twice as long
// ranks after the other (on a starved machine a busy-but-healthy worker can
// look blocked too); ties go to the first from start (round-robin among
// equals).
func pickLeast(ws []wload, start int, now int64) int {
	best := -1
	var bestLoad, bestAge int64
	var bestBlocked bool
	n := len(ws)
	for i := range n {
		j := (start + i) % n
		w := ws[j]
		if w.skip {
			continue
		}
		ld := w.inflight + max(w.pending, 0)
		age := now - w.progress
		blocked := w.inflight > 0 && age > int64(blockedAfter)
		better := false
		switch {
		case best < 0:
			better = true
		case blocked != bestBlocked:
			better = !blocked
		case blocked && age*2 < bestAge:
			better = true
		case blocked && bestAge*2 < age:
			better = false
		default:
			better = ld < bestLoad
		}
		if better {
			best, bestLoad, bestAge, bestBlocked = j, ld, age, blocked
		}
	}
	return best
}

func (m *Master) pick(routes, skip []*worker) *worker {
	n := len(routes)
	if n == 0 {
		return nil
	}
	start := int(m.rr.Add(1) % uint64(n))
	if m.cfg.Schedule == RoundRobin {
		for i := range n {
			if w := routes[(start+i)%n]; !slices.Contains(skip, w) {
				return w
			}
		}
		return nil
	}
	ws := make([]wload, n)
	for i, w := range routes {
		ws[i] = wload{
			inflight: w.c.inFlight().Load(),
			pending:  int64(w.handed.Load()) - int64(w.c.recv().Load()),
			progress: w.c.progress().Load(),
			skip:     slices.Contains(skip, w),
		}
	}
	if i := pickLeast(ws, start, time.Now().UnixNano()); i >= 0 {
		return routes[i]
	}
	return nil
}
