package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// IPC between master and worker: one SOCK_SEQPACKET socket pair per worker, so
// that every message keeps its boundaries and a passed descriptor travels with
// its own message. The first byte is the message type.
const (
	// master → worker
	msgConn  = 'C' // a connection: one descriptor in SCM_RIGHTS, no payload
	msgDrain = 'D' // stop receiving connections, finish, exit 0
	msgUser  = 'M' // a user message: JSON payload (Master.Broadcast, Master.Send; also worker → master)
	msgHello = 'H' // the master's greeting is over (Config.OnFork has sent its messages): serve

	// worker → master
	msgReady = 'Y' // serving
	msgStats = 'S' // periodic report: rss, uptime (binary, 16 bytes); the hot counters are in shared memory (shm.go)
	msgQuit  = 'Q' // the worker was signalled and wants to leave: please drain me
)

// maxMsg bounds one IPC message (user messages included).
const maxMsg = 64 << 10

// socketpair returns a connected SOCK_SEQPACKET pair: the master's end as a
// *net.UnixConn and the worker's end as a raw, blocking, close-on-exec
// descriptor to be inherited.
func socketpair() (*net.UnixConn, int, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, os.NewSyscallError("socketpair", err)
	}
	c, err := fdConn(fds[0], "ipc")
	if err != nil {
		syscall.Close(fds[1])
		return nil, -1, err
	}
	return c, fds[1], nil
}

// fdConn turns a blocking unix socket descriptor into a *net.UnixConn and
// closes the descriptor (net.FileConn works on a duplicate).
func fdConn(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ipc socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("ipc socket: fd %d is a %T, not a unix socket", fd, c)
	}
	return uc, nil
}

// sendFD sends one descriptor in a msgConn message.
func sendFD(c *net.UnixConn, fd int) error {
	_, _, err := c.WriteMsgUnix([]byte{msgConn}, syscall.UnixRights(fd), nil)
	return err
}

// errNoFD: a msgConn arrived without exactly one descriptor.
var errNoFD = errors.New("connection message without a descriptor")

// readMsg reads one message; fds are the descriptors that came with it
// (owned by the caller, close-on-exec).
func readMsg(c *net.UnixConn, buf, oob []byte) (msg []byte, fds []int, err error) {
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, err
	}
	if oobn > 0 {
		scms, perr := syscall.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for _, scm := range scms {
				got, err := syscall.ParseUnixRights(&scm)
				if err == nil {
					fds = append(fds, got...)
				}
			}
		}
	}
	if flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, nil, fmt.Errorf("ipc message truncated (%d bytes, flags %#x)", n, flags)
	}
	if n == 0 {
		// A zero-length read on SOCK_SEQPACKET is the peer's close.
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, nil, errEOF
	}
	return buf[:n], fds, nil
}

var errEOF = errors.New("ipc: peer closed")
