// Forking a worker process and reaping it.

package cluster

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
)

func (w *worker) String() string {
	return fmt.Sprintf("worker %d (id %d, pid %d)", w.slot, w.id, w.pid)
}

// spawnLocked forks a worker for s. The caller holds m.mu.
func (m *Master) spawnLocked(s *slot) (*worker, error) {
	if m.stopping {
		return nil, errStopping
	}
	cellIdx, c, err := m.shm.alloc()
	if err != nil {
		return nil, err
	}
	uc, childFD, err := socketpair()
	if err != nil {
		m.shm.release(cellIdx)
		return nil, err
	}
	m.nextID++
	id := m.nextID
	env := append(slices.Clip(m.env), EnvWorker+"="+strconv.Itoa(s.id), envWorkerID+"="+strconv.Itoa(id),
		envShmCell+"="+strconv.Itoa(cellIdx))
	files := []uintptr{uintptr(m.devnull), 1, 2, uintptr(childFD), uintptr(m.devnull), uintptr(m.shm.fd)}
	if m.cfg.Schedule == None {
		files[listenFD] = uintptr(m.lfd)
		env = append(env, envListenFD+"="+strconv.Itoa(listenFD))
	}
	pid, _, err := syscall.StartProcess(m.exe, m.args, &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM},
	})
	syscall.Close(childFD)
	if err != nil {
		uc.Close()
		m.shm.release(cellIdx)
		return nil, fmt.Errorf("fork worker %d: %s: %w", s.id, m.exe, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		// Cannot happen on Linux; the cell stays taken.
		uc.Close()
		return nil, fmt.Errorf("fork worker %d: %w", s.id, err)
	}
	w := &worker{
		slot: s.id, id: id, pid: pid, proc: proc, ipc: uc, started: time.Now(),
		ready: make(chan struct{}), exited: make(chan struct{}), readDone: make(chan struct{}),
		cellIdx: cellIdx, c: c,
	}
	c.progress().Store(time.Now().UnixNano())
	m.forks++
	m.all[w] = struct{}{}
	m.logf("%s started", w)
	go m.readIPC(w)
	go m.wait(w)
	go m.greet(w)
	return w, nil
}

// greet runs Config.OnFork for a new worker, then tells it to serve.
func (m *Master) greet(w *worker) {
	if m.cfg.OnFork != nil {
		m.cfg.OnFork(m, w.id, func(v any) error { return m.sendUser(w, v) })
	}
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	_ = w.ipc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = w.ipc.Write([]byte{msgHello})
}

func (m *Master) wait(w *worker) {
	st, err := w.proc.Wait()
	// Let the reader see the worker's last messages.
	select {
	case <-w.readDone:
	case <-time.After(time.Second):
	}
	w.ipc.Close()
	<-w.readDone
	m.onExit(w, describeExit(st, err))
}

func describeExit(st *os.ProcessState, err error) string {
	if err != nil {
		return err.Error()
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			return "killed by signal " + strconv.Itoa(int(ws.Signal())) + " (" + ws.Signal().String() + ")"
		case ws.Exited():
			return "exit code " + strconv.Itoa(ws.ExitStatus())
		}
	}
	return st.String()
}
