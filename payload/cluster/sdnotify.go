package cluster

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sdNotify sends a state to systemd's notification socket, if systemd gave
// one (Type=notify or notify-reload units): READY=1, RELOADING=1, STOPPING=1.
// It is sd_notify(3) by hand, so that the payload needs only the standard
// library. Errors are ignored, as sd_notify's callers do.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants with
// RELOADING=1 (Type=notify-reload).
func monotonicUsec() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return ts.Sec*1e6 + ts.Nsec/1e3
}

// announceReadyLocked tells systemd the cluster is ready once every slot has
// had a ready worker (or one has and 10s passed). The caller holds m.mu.
func (m *Master) announceReadyLocked() {
	if m.ready {
		return
	}
	anyReady, allReady := false, true
	for _, s := range m.slots {
		if s.everReady {
			anyReady = true
		} else {
			allReady = false
		}
	}
	if allReady || (anyReady && time.Since(m.started) > 10*time.Second) {
		m.ready = true
		m.logf("ready: serving on %s", m.addr)
		sdNotify(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=serving on %s", os.Getpid(), m.addr))
	}
}
