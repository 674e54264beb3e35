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
		case msgUser:
			if m.cfg.OnMessage != nil {
				m.cfg.OnMessage(m, w.id, json.RawMessage(append([]byte(nil), msg[1:]...)))
			}
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
func (m *Master) Broadcast(v any) error { return m.broadcast(0, v) }

// BroadcastExcept sends v, as JSON, to every live worker but the one whose
// ID is except (the one a message came from, Config.OnMessage).
func (m *Master) BroadcastExcept(except int, v any) error { return m.broadcast(except, v) }

func userMsg(v any) ([]byte, error) {
	var b []byte
	if raw, ok := v.(json.RawMessage); ok && json.Valid(raw) {
		// Already JSON (a message relayed as it came): sent as is, not
		// re-encoded and compacted.
		b = raw
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	if len(b)+1 > maxMsg {
		return nil, fmt.Errorf("message of %d bytes exceeds %d", len(b), maxMsg-1)
	}
	return append([]byte{msgUser}, b...), nil
}

func (m *Master) broadcast(except int, v any) error {
	msg, err := userMsg(v)
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	m.mu.Lock()
	ws := m.workersLocked()
	m.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if w.id == except {
			continue
		}
		if err := m.write(w, msg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sendUser sends v, as JSON, to w alone.
func (m *Master) sendUser(w *worker, v any) error {
	msg, err := userMsg(v)
	if err != nil {
		return fmt.Errorf("send to %s: %w", w, err)
	}
	return m.write(w, msg)
}

func (m *Master) write(w *worker, msg []byte) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	_ = w.ipc.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := w.ipc.Write(msg); err != nil && w.state.Load() != stExited {
		return fmt.Errorf("%s: %w", w, err)
	}
	return nil
}
