//go:build linux

package loadgen

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawConn reads and writes a TCP connection with raw, non-blocking system
// calls, still waiting for readiness through Go's netpoller (and so still
// obeying deadlines and Close). net.Conn's own Read and Write enter the
// scheduler's syscall state, and when the process is mostly idle (waiting
// for a slow server) every one of them pays a futex call to wake the
// runtime's monitor thread: a fifth of loadgen's CPU against Express. A
// non-blocking socket call never blocks, so the raw form is safe here.
type rawConn struct {
	rc              syscall.RawConn
	buf             []byte
	n               int
	errno           syscall.Errno
	readFn, writeFn func(uintptr) bool
}

// newFastIO returns a rawConn for plain TCP connections, else c itself.
func newFastIO(c net.Conn) io.ReadWriter {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawConn{rc: rc}
	r.readFn, r.writeFn = r.read, r.write // bound once: no allocation per call
	return r
}

func (r *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.buf, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.readFn)
	r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, os.NewSyscallError("read", r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

func (r *rawConn) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch e {
		case 0:
			r.n = int(n)
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait in the netpoller, then try again
		default:
			r.errno = e
			return true
		}
	}
}

func (r *rawConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.buf, r.n, r.errno = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n := r.n
	r.buf = nil
	switch {
	case err != nil:
		return n, err
	case r.errno != 0:
		return n, os.NewSyscallError("write", r.errno)
	}
	return n, nil
}

func (r *rawConn) write(fd uintptr) bool {
	for r.n < len(r.buf) {
		// send(2) with MSG_NOSIGNAL: a closed peer gives EPIPE, no signal.
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&r.buf[r.n])),
			uintptr(len(r.buf)-r.n), syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			r.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.errno = e
			return true
		}
	}
	return true
}
