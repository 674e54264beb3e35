// The master's side of the IPC: messages from workers, and Broadcast.

package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"
)

func (m *Master) readIPC(w *worker) {
	defer close(w.readDone)
	buf := make([]byte, maxMsg)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		msg, fds, err := readMsg(w.ipc, buf, oob)
		for _, fd := range fds {
			syscall.Close(fd) // workers send none
		}
		if err != nil {
			return
		}
		switch msg[0] {
		case msgReady:
			m.onReady(w)
		case msgStats:
			if len(msg) == 17 {
				w.rssRep.Store(int64(binary.LittleEndian.Uint64(msg[1:])))
			}
		case msgQuit:
			go m.onQuit(w)
		}
	}
}

func (m *Master) onReady(w *worker) {
	m.mu.Lock()
	if w.state.CompareAndSwap(stStarting, stReady) {
		w.readyAt = time.Now()
	}
	s := m.slots[w.slot-1]
	if s.cur == w && w.state.Load() == stReady {
		s.everReady = true
		m.rebuildLocked()
	}
	m.mu.Unlock()
	w.readyOnce.Do(func() { close(w.ready) })
	m.logf("%s ready in %s", w, time.Since(w.started).Round(time.Millisecond))
}

// Broadcast sends v, as JSON, to every live worker (WorkerConfig.OnMessage).
func (m *Master) Broadcast(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	if len(b)+1 > maxMsg {
		return fmt.Errorf("broadcast: message of %d bytes exceeds %d", len(b), maxMsg-1)
	}
	msg := append([]byte{msgUser}, b...)
	m.mu.Lock()
	ws := m.workersLocked()
	m.mu.Unlock()
	var errs []error
	for _, w := range ws {
		w.sendMu.Lock()
		_ = w.ipc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := w.ipc.Write(msg); err != nil && w.state.Load() != stExited {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
		}
		w.sendMu.Unlock()
	}
	return errors.Join(errs...)
}
