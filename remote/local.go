package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Executor runs commands and installs files on one host. *Client (over SSH)
// and *Local (this machine) implement it.
type Executor interface {
	Run(ctx context.Context, cmd string) (Result, error)
	RunSudo(ctx context.Context, cmd string) (Result, error)
	Upload(ctx context.Context, localPath, remotePath string, mode fs.FileMode, opts ...FileOption) (bool, error)
	WriteFile(ctx context.Context, remotePath string, data []byte, mode fs.FileMode, opts ...FileOption) (bool, error)
	Close() error
}

var (
	_ Executor = (*Client)(nil)
	_ Executor = (*Local)(nil)
)

// Local runs on this machine, as Ansible's "connection: local": commands
// through /bin/sh, files written directly. Its zero value is ready to use
// (with sudo -n for RunSudo).
type Local struct {
	// SudoPassword is fed to sudo on its stdin by RunSudo.
	SudoPassword string
}

// NewLocal returns a Local executor taking the sudo password from h
// (SudoPassword, or the variable named by SudoPasswordEnv).
func NewLocal(h Host) (*Local, error) {
	if h.SudoPassword == "" && h.SudoPasswordEnv != "" {
		v, ok := os.LookupEnv(h.SudoPasswordEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s (the sudo password) is not set", h.SudoPasswordEnv)
		}
		h.SudoPassword = v
	}
	return &Local{SudoPassword: h.SudoPassword}, nil
}

// localKillGrace is how long a cancelled local command's process group has
// between SIGTERM and SIGKILL.
const localKillGrace = 2 * time.Second

// Run runs cmd with /bin/sh -c. Cancelling ctx kills the command's whole
// process group.
func (l *Local) Run(ctx context.Context, cmd string) (Result, error) {
	return l.run(ctx, cmd, nil)
}

func (l *Local) run(ctx context.Context, cmd string, stdin []byte) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("run %s: %w", shortCmd(cmd), err)
	}
	c := exec.Command("/bin/sh", "-c", cmd)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := newCapture(nil)
	c.Stdout, c.Stderr = out.stdout, out.stderr
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	if err := c.Start(); err != nil {
		return Result{}, fmt.Errorf("run %s: %w", shortCmd(cmd), err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		pgid := c.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(localKillGrace):
			syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-done:
			case <-time.After(localKillGrace):
				// A grandchild holds the output pipes open: give up on it.
				return Result{ExitCode: -1}, fmt.Errorf("run %s: %w", shortCmd(cmd), ctx.Err())
			}
		}
		return out.result(Result{ExitCode: -1}), fmt.Errorf("run %s: %w", shortCmd(cmd), ctx.Err())
	}
	r := out.result(Result{})
	if err == nil {
		return r, truncated(cmd, r)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.ExitCode = 128 + int(ws.Signal())
		} else {
			r.ExitCode = ee.ExitCode()
		}
		return r, truncated(cmd, r)
	}
	r.ExitCode = -1
	return r, fmt.Errorf("run %s: %w", shortCmd(cmd), err)
}

// RunSudo runs cmd as root: directly when this process is root, else with
// sudo as Client.RunSudo does.
func (l *Local) RunSudo(ctx context.Context, cmd string) (Result, error) {
	if os.Geteuid() == 0 {
		return l.Run(ctx, cmd)
	}
	line, stdin := sudoCommand(cmd, l.SudoPassword)
	r, err := l.run(ctx, line, stdin)
	if err != nil {
		return r, err
	}
	return r, sudoRefusal(localUser(), "localhost", r)
}

// Upload copies localPath to remotePath (on this machine) with Client.Upload's
// semantics: checksum skip, atomic replace, mode, AsRoot/Owner.
func (l *Local) Upload(ctx context.Context, localPath, remotePath string, mode fs.FileMode, opts ...FileOption) (bool, error) {
	f, src, err := openLocal(localPath)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return put(ctx, localWriter{l}, src, remotePath, mode, opts)
}

// UploadReader is Upload from a reader of size bytes (-1: unknown).
func (l *Local) UploadReader(ctx context.Context, r io.Reader, size int64, remotePath string, mode fs.FileMode, opts ...FileOption) (bool, error) {
	src, err := readerSource(r, size)
	if err != nil {
		return false, err
	}
	return put(ctx, localWriter{l}, src, remotePath, mode, opts)
}

// WriteFile writes data to path with Upload's semantics.
func (l *Local) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode, opts ...FileOption) (bool, error) {
	return l.UploadReader(ctx, bytes.NewReader(data), int64(len(data)), path, mode, opts...)
}

// Close does nothing: there is no connection.
func (l *Local) Close() error { return nil }

type localWriter struct{ *Local }

func (w localWriter) writeTemp(ctx context.Context, src *source, p string, sameDir bool, mode fs.FileMode) (string, error) {
	dir, pattern := os.TempDir(), ".deploylab-upload-*"
	if sameDir {
		dir, pattern = filepath.Dir(p), "."+filepath.Base(p)+".deploylab-*"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create directory %s: %w", dir, err)
		}
	}
	f, err := os.CreateTemp(dir, pattern) // 0600, O_EXCL
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, src.r})
	if err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if n != src.size {
		return "", fmt.Errorf("write %s: wrote %d bytes of %d", tmp, n, src.size)
	}
	if err := f.Chmod(mode); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	ok = true
	return tmp, nil
}

func (w localWriter) rename(ctx context.Context, from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("rename to %s: %w", to, err)
	}
	return nil
}

func (w localWriter) remove(ctx context.Context, p string) { os.Remove(p) }
