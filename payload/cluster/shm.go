package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The workers' hot counters (requests in flight, connections, connections
// received, requests served, last progress) live in a shared memory region
// that the master maps and passes to every worker (fd 5). Each worker owns
// one cache-line cell and updates it with atomic operations: reporting costs
// no system call per request, and least scheduling reads fresh values.
// (Slower facts, RSS and uptime, travel as msgStats messages once a second.)
const (
	cellSize    = 64
	offInFlight = 0
	offConns    = 8
	offRecv     = 16
	offServed   = 24
	offProgress = 32
)

// cell is one worker's counters.
type cell struct{ b []byte }

func (c cell) i64(off int) *atomic.Int64  { return (*atomic.Int64)(unsafe.Pointer(&c.b[off])) }
func (c cell) u64(off int) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(&c.b[off])) }
func (c cell) inFlight() *atomic.Int64    { return c.i64(offInFlight) }
func (c cell) conns() *atomic.Int64       { return c.i64(offConns) }
func (c cell) recv() *atomic.Uint64       { return c.u64(offRecv) }
func (c cell) served() *atomic.Uint64     { return c.u64(offServed) }
func (c cell) progress() *atomic.Int64    { return c.i64(offProgress) }

func (c cell) reset() {
	for off := 0; off < cellSize; off += 8 {
		c.i64(off).Store(0)
	}
}

// privateCell is a cell in this process's memory only.
func privateCell() cell { return cell{make([]byte, cellSize)} }

// shmRegion is the master's shared memory region and its free cells.
type shmRegion struct {
	fd   int
	mem  []byte
	free []int
}

func newShmRegion(cells int) (*shmRegion, error) {
	size := (cells*cellSize + os.Getpagesize() - 1) / os.Getpagesize() * os.Getpagesize()
	fd, err := memfd("sumcluster-counters")
	if err != nil {
		if fd, err = shmFile(); err != nil {
			return nil, err
		}
	}
	if err := syscall.Ftruncate(fd, int64(size)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("shared memory: %w", os.NewSyscallError("ftruncate", err))
	}
	mem, err := syscall.Mmap(fd, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("shared memory: %w", os.NewSyscallError("mmap", err))
	}
	r := &shmRegion{fd: fd, mem: mem}
	for i := size/cellSize - 1; i >= 0; i-- {
		r.free = append(r.free, i)
	}
	return r, nil
}

// alloc takes a zeroed cell. The caller serialises alloc and release.
func (r *shmRegion) alloc() (int, cell, error) {
	if len(r.free) == 0 {
		return -1, cell{}, errors.New("shared memory: no free counter cell")
	}
	i := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	c := r.cell(i)
	c.reset()
	return i, c, nil
}

func (r *shmRegion) release(i int) { r.free = append(r.free, i) }

func (r *shmRegion) cell(i int) cell {
	return cell{r.mem[i*cellSize : (i+1)*cellSize : (i+1)*cellSize]}
}

// close unmaps the region; no cell may be used afterwards.
func (r *shmRegion) close() {
	_ = syscall.Munmap(r.mem)
	syscall.Close(r.fd)
}

var errNoMemfd = errors.New("memfd_create not available")

// memfd creates an anonymous memory file (close-on-exec).
func memfd(name string) (int, error) {
	if sysMemfdCreate < 0 {
		return -1, errNoMemfd
	}
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	const mfdCloexec = 1
	fd, _, errno := syscall.Syscall(uintptr(sysMemfdCreate), uintptr(unsafe.Pointer(p)), mfdCloexec, 0)
	if errno != 0 {
		return -1, os.NewSyscallError("memfd_create", errno)
	}
	return int(fd), nil
}

// shmFile is memfd's fallback: an unlinked file in /dev/shm (or the temp dir).
func shmFile() (int, error) {
	var last error
	for _, dir := range []string{"/dev/shm", os.TempDir()} {
		name := filepath.Join(dir, "sumcluster-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		fd, err := syscall.Open(name, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			last = err
			continue
		}
		_ = syscall.Unlink(name)
		return fd, nil
	}
	return -1, fmt.Errorf("shared memory: %w", last)
}

// workerCell maps the region inherited on fd and returns cell i of it.
func workerCell(fd, i int) (cell, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return cell{}, os.NewSyscallError("fstat", err)
	}
	if i < 0 || int64(i+1)*cellSize > st.Size {
		return cell{}, fmt.Errorf("counter cell %d outside the %d-byte region", i, st.Size)
	}
	mem, err := syscall.Mmap(fd, 0, int(st.Size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	syscall.Close(fd)
	if err != nil {
		return cell{}, os.NewSyscallError("mmap", err)
	}
	return cell{mem[i*cellSize : (i+1)*cellSize : (i+1)*cellSize]}, nil
}
