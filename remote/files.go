package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

	"github.com/deploylab/deploylab/internal/fail"
)

// FileOption changes how Upload and WriteFile install a file.
type FileOption func(*fileOpts)

type fileOpts struct {
	sudo         bool
	owner, group string
}

// AsRoot installs the file with root's rights (RunSudo): owned by root unless
// Owner says otherwise. The data is first written, as the user, to a private
// temporary file, then installed under a temporary name next to the target
// and renamed over it.
func AsRoot() FileOption { return func(o *fileOpts) { o.sudo = true } }

// Owner sets the file's owner and group (either may be empty); it implies
// AsRoot.
func Owner(user, group string) FileOption {
	return func(o *fileOpts) { o.sudo, o.owner, o.group = true, user, group }
}

func collectFileOpts(opts []FileOption) fileOpts {
	var o fileOpts
	for _, f := range opts {
		f(&o)
	}
	return o
}

// source is the data to install, hashed before it is sent.
type source struct {
	r    io.Reader // positioned at the start
	size int64
	sum  string
}

// openLocal opens a local file as a source; the caller closes the file.
func openLocal(localPath string) (*os.File, *source, error) {
	f, err := os.Open(localPath)
	if err != nil {
		return nil, nil, fmt.Errorf("upload: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("upload: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fail.Errorf(fail.Usage, "give a regular file", "upload %s: not a regular file", localPath)
	}
	src, err := readerSource(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, src, nil
}

// readerSource hashes r: a ReadSeeker is read twice, anything else is held
// in memory. size is checked when >= 0.
func readerSource(r io.Reader, size int64) (*source, error) {
	h := sha256.New()
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		n, err := io.Copy(h, rs)
		if err != nil {
			return nil, fmt.Errorf("upload: read: %w", err)
		}
		if size >= 0 && n != size {
			return nil, fmt.Errorf("upload: read %d bytes, expected %d", n, size)
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		return &source{r: rs, size: n, sum: hex.EncodeToString(h.Sum(nil))}, nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("upload: read: %w", err)
	}
	if size >= 0 && int64(len(data)) != size {
		return nil, fmt.Errorf("upload: read %d bytes, expected %d", len(data), size)
	}
	h.Write(data)
	return &source{r: bytes.NewReader(data), size: int64(len(data)), sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// unixMode is mode's permission bits as chmod(2) takes them.
func unixMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// fileState is what is at the target path.
type fileState struct {
	exists       bool
	sum          string
	mode         uint32
	owner, group string
}

// stateScript prints "absent", or "file <sha256> <octal mode> <owner> <group>".
func stateScript(p string) string {
	q := ShellQuote(p)
	return `p=` + q + `
if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo absent; exit 0; fi
if [ ! -f "$p" ]; then echo "not a regular file" >&2; exit 3; fi
s=$(sha256sum < "$p") || exit 4
echo "file ${s%% *} $(stat -L -c '%a %U %G' -- "$p")"`
}

// runner is what the file logic needs of an executor.
type runner interface {
	Run(ctx context.Context, cmd string) (Result, error)
	RunSudo(ctx context.Context, cmd string) (Result, error)
}

func remoteState(ctx context.Context, r runner, sudo bool, p string) (fileState, error) {
	run := r.Run
	if sudo {
		run = r.RunSudo
	}
	res, err := run(ctx, stateScript(p))
	if err != nil {
		return fileState{}, fmt.Errorf("check %s: %w", p, err)
	}
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(string(res.Stderr))
		hint := ""
		if strings.Contains(msg, "ermission denied") && !sudo {
			hint = "the file is not readable by the user: install it as root"
		}
		return fileState{}, fail.New(fail.Failed, hint, fmt.Errorf("check %s: %s (exit status %d)", p, msg, res.ExitCode))
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 1 && f[0] == "absent" {
		return fileState{}, nil
	}
	if len(f) != 5 || f[0] != "file" {
		return fileState{}, fmt.Errorf("check %s: unexpected answer %q", p, string(res.Stdout))
	}
	m, err := strconv.ParseUint(f[2], 8, 32)
	if err != nil {
		return fileState{}, fmt.Errorf("check %s: unexpected mode %q", p, f[2])
	}
	return fileState{exists: true, sum: f[1], mode: uint32(m), owner: f[3], group: f[4]}, nil
}

// fixAttrs brings an identical file's mode and owner to what is wanted;
// it reports whether anything changed.
func fixAttrs(ctx context.Context, r runner, o fileOpts, st fileState, p string, mode fs.FileMode) (bool, error) {
	var cmds []string
	if st.mode != unixMode(mode) {
		cmds = append(cmds, fmt.Sprintf("chmod %o -- %s", unixMode(mode), ShellQuote(p)))
	}
	if o.sudo {
		owner, group := o.owner, o.group
		if owner == "" {
			owner = "root"
		}
		if group == "" && o.owner == "" {
			group = "root"
		}
		if st.owner != owner || (group != "" && st.group != group) {
			spec := owner
			if group != "" {
				spec += ":" + group
			}
			cmds = append(cmds, fmt.Sprintf("chown %s -- %s", ShellQuote(spec), ShellQuote(p)))
		}
	}
	if len(cmds) == 0 {
		return false, nil
	}
	run := r.Run
	if o.sudo {
		run = r.RunSudo
	}
	res, err := run(ctx, strings.Join(cmds, " && "))
	if err != nil {
		return false, fmt.Errorf("set mode of %s: %w", p, err)
	}
	if err := res.Err("chmod/chown"); err != nil {
		return false, fmt.Errorf("set mode of %s: %w", p, err)
	}
	return true, nil
}

// installScript installs tmp (a file the user wrote) as p with root's
// rights: install(1) to a temporary name in p's directory, then rename over
// p, so that p is never seen half written. tmp is removed in every case.
func installScript(tmp, p string, mode fs.FileMode, o fileOpts) string {
	dir, base := path.Split(p)
	if dir == "" {
		dir = "./"
	}
	staged := dir + "." + base + ".deploylab-" + randomSuffix()
	args := []string{"install", "-m", fmt.Sprintf("%o", unixMode(mode))}
	if o.owner != "" {
		args = append(args, "-o", ShellQuote(o.owner))
	}
	if o.group != "" {
		args = append(args, "-g", ShellQuote(o.group))
	}
	args = append(args, "-T", "--", ShellQuote(tmp), ShellQuote(staged))
	return fmt.Sprintf(`mkdir -p -- %s && %s && mv -f -T -- %s %s; rc=$?; rm -f -- %s; [ $rc -eq 0 ] || rm -f -- %s; exit $rc`,
		ShellQuote(dir), strings.Join(args, " "), ShellQuote(staged), ShellQuote(p), ShellQuote(tmp), ShellQuote(staged))
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// stagedName is a temporary name next to p.
func stagedName(p string) string {
	dir, base := path.Split(p)
	return dir + "." + base + ".deploylab-" + randomSuffix()
}

// writer is an executor that can also write files.
type writer interface {
	runner
	// writeTemp writes src to a new file next to p (sameDir) or in a
	// temporary directory, with mode, and returns its path.
	writeTemp(ctx context.Context, src *source, p string, sameDir bool, mode fs.FileMode) (string, error)
	rename(ctx context.Context, from, to string) error
	remove(ctx context.Context, p string)
}

// put is the common upload logic: skip when identical (fixing mode and owner
// if needed), else write atomically.
func put(ctx context.Context, w writer, src *source, p string, mode fs.FileMode, opts []FileOption) (bool, error) {
	if p == "" || strings.HasSuffix(p, "/") {
		return false, fail.Errorf(fail.Usage, "give the full path of the file to write", "upload: invalid target path %q", p)
	}
	o := collectFileOpts(opts)
	st, err := remoteState(ctx, w, o.sudo, p)
	if err != nil {
		return false, err
	}
	if st.exists && st.sum == src.sum {
		return fixAttrs(ctx, w, o, st, p, mode)
	}
	if !o.sudo {
		tmp, err := w.writeTemp(ctx, src, p, true, mode)
		if err != nil {
			return false, fmt.Errorf("upload %s: %w", p, err)
		}
		if err := w.rename(ctx, tmp, p); err != nil {
			w.remove(ctx, tmp)
			return false, fmt.Errorf("upload %s: %w", p, err)
		}
		return true, nil
	}
	tmp, err := w.writeTemp(ctx, src, p, false, 0o600)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", p, err)
	}
	res, err := w.RunSudo(ctx, installScript(tmp, p, mode, o))
	if err != nil {
		w.remove(context.WithoutCancel(ctx), tmp)
		return false, fmt.Errorf("install %s: %w", p, err)
	}
	if err := res.Err("install"); err != nil {
		return false, fmt.Errorf("install %s: %w", p, err)
	}
	return true, nil
}

// Upload copies the local file localPath to remotePath with mode. It
// reports changed=false when the remote file already has the same content
// (sha256), mode and owner. Otherwise the data goes to a temporary name in
// the same directory, which is then renamed over remotePath: readers see the
// old file or the new one, never a part. Missing parent directories are
// created.
func (c *Client) Upload(ctx context.Context, localPath, remotePath string, mode fs.FileMode, opts ...FileOption) (bool, error) {
	f, src, err := openLocal(localPath)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return put(ctx, clientWriter{c}, src, remotePath, mode, opts)
}

// UploadReader is Upload from a reader of size bytes (-1: unknown). A
// reader that is not an io.Seeker is held in memory to be hashed first.
func (c *Client) UploadReader(ctx context.Context, r io.Reader, size int64, remotePath string, mode fs.FileMode, opts ...FileOption) (bool, error) {
	src, err := readerSource(r, size)
	if err != nil {
		return false, err
	}
	return put(ctx, clientWriter{c}, src, remotePath, mode, opts)
}

// WriteFile writes data to remotePath with Upload's semantics.
func (c *Client) WriteFile(ctx context.Context, remotePath string, data []byte, mode fs.FileMode, opts ...FileOption) (bool, error) {
	return c.UploadReader(ctx, bytes.NewReader(data), int64(len(data)), remotePath, mode, opts...)
}

type clientWriter struct{ *Client }

func (w clientWriter) writeTemp(ctx context.Context, src *source, p string, sameDir bool, mode fs.FileMode) (string, error) {
	var tmp string
	err := w.withSFTP(ctx, func(s *sftp.Client) error {
		var err error
		tmp, err = sftpWriteTemp(ctx, s, src, p, sameDir, mode)
		return err
	})
	return tmp, err
}

func sftpWriteTemp(ctx context.Context, s *sftp.Client, src *source, p string, sameDir bool, mode fs.FileMode) (string, error) {
	var tmp string
	if sameDir {
		dir := path.Dir(p)
		if err := s.MkdirAll(dir); err != nil {
			return "", fmt.Errorf("create directory %s: %w", dir, err)
		}
		tmp = stagedName(p)
	} else {
		tmp = "/tmp/.deploylab-upload-" + randomSuffix()
	}
	f, err := s.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			s.Remove(tmp)
		}
	}()
	// Restrict first: the data is not readable by others while written.
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmp, err)
	}
	n, err := f.ReadFrom(ctxReader{ctx, src.r})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if n != src.size {
		return "", fmt.Errorf("write %s: wrote %d bytes of %d", tmp, n, src.size)
	}
	if err := f.Chmod(mode); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	ok = true
	return tmp, nil
}

func (w clientWriter) rename(ctx context.Context, from, to string) error {
	return w.withSFTP(ctx, func(s *sftp.Client) error {
		if err := s.PosixRename(from, to); err != nil {
			return fmt.Errorf("rename to %s: %w", to, err)
		}
		return nil
	})
}

// remove is best effort, and bounded even when ctx has no deadline.
func (w clientWriter) remove(ctx context.Context, p string) {
	ctx, cancel := context.WithTimeout(ctx, cancelGrace)
	defer cancel()
	w.withSFTP(ctx, func(s *sftp.Client) error { return s.Remove(p) })
}
