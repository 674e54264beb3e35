package lab

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/inventory"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/deploylab/deploylab/internal/atomicfile"
)

const (
	sigTERM = syscall.SIGTERM
	sigKILL = syscall.SIGKILL
)

// killPID signals pid if it is still the process that started at start.
func killPID(pid int, start uint64, sig syscall.Signal) error {
	if !alive(pid, start) {
		return nil
	}
	return syscall.Kill(pid, sig)
}

// freeSlotsOf releases every subnet slot still claimed by lab id (a start
// that died before recording them).
func freeSlotsOf(id string) error {
	slots, _ := filepath.Glob(filepath.Join(runDir, "slots", "*"))
	var errs []error
	for _, s := range slots {
		k, err := strconv.Atoi(filepath.Base(s))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		var c slotClaim
		if json.Unmarshal(b, &c) == nil && c.Lab == id {
			errs = append(errs, freeSlot(k, id))
		}
	}
	return errors.Join(errs...)
}

// raiseInotify makes sure root may have enough inotify instances: every
// booted systemd takes several, and at the default 128 about the 28th
// container hangs.
func raiseInotify(hosts int) error {
	const path = "/proc/sys/fs/inotify/max_user_instances"
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	cur, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	want := 8192
	if w := 1024 + 32*hosts; w > want {
		want = w
	}
	if cur >= want {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
		return fmt.Errorf("raise fs.inotify.max_user_instances to %d: %w", want, err)
	}
	return nil
}

// start does the work of Start on a fresh lab; on error the caller cleans up.
func (l *Lab) start(ctx context.Context, opts Options, log io.Writer) error {
	if err := raiseInotify(opts.Hosts); err != nil {
		return err
	}
	roots, err := cgroupRoots()
	if err != nil {
		return err
	}
	id := l.st.ID
	// Every name is decided, and recorded, before anything is made: a stop
	// after a crash finds all of it.
	for i := 1; i <= opts.Hosts; i++ {
		name := fmt.Sprintf("lab%d", i)
		var cgs []string
		for _, r := range roots {
			cgs = append(cgs, filepath.Join(r, cgroupParent, fmt.Sprintf("%s-%d", id, i)))
		}
		dir := filepath.Join(l.dir, "hosts", name)
		l.st.Hosts = append(l.st.Hosts, &hostState{
			Name: name, Index: i,
			Netns:   fmt.Sprintf("deploylab-%s-%d", id, i),
			Veth:    fmt.Sprintf("dl%sh%d", id, i),
			Machine: fmt.Sprintf("deploylab-%s-%d", id, i),
			Dir:     dir, Root: filepath.Join(dir, "root"), Cgroups: cgs,
		})
	}
	// Subnets in host order, so that the first lab's host N is 10.77.N.2.
	for _, h := range l.st.Hosts {
		slot, err := allocSlot(ctx, id, l.dir, h.Netns)
		if err != nil {
			return err
		}
		h.Slot = slot
		h.Gateway, h.Address = slotAddrs(slot)
	}
	if err := l.save(); err != nil {
		return err
	}

	// The lab's key pair and deploy's password.
	signer, err := writeKeyPair(l.KeyPath())
	if err != nil {
		return err
	}
	password := randPassword(20)
	if err := atomicfile.WriteFile(l.PasswordPath(), []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	authorized := ssh.MarshalAuthorizedKey(signer.PublicKey())
	uid, gid, err := lookupUser(filepath.Join(l.st.Image, "etc/passwd"), User)
	if err != nil {
		return err
	}

	// Make and boot the hosts, a few at a time. A Ctrl-C waits (Grace) for
	// a boot under way to finish, so that Stop finds what it made.
	fmt.Fprintf(log, "lab: booting %s\n", plural(opts.Hosts, "host"))
	name := func(i int) string { return l.st.Hosts[i].Name }
	errs := make([]error, opts.Hosts)
	fleet.Each(ctx, len(l.st.Hosts), fleet.Options{Forks: 8, Name: name, Grace: 2 * time.Minute}, func(ctx context.Context, i int) (struct{}, error) {
		h := l.st.Hosts[i]
		if err := l.bootHost(ctx, h, authorized, uid, gid, password); err != nil {
			return struct{}{}, fmt.Errorf("%s: %w", h.Name, err)
		}
		return struct{}{}, nil
	}, func(r fleet.Result[struct{}]) { errs[r.Index] = r.Err })
	if err := firstError(ctx, errs); err != nil {
		return err
	}
	if err := l.save(); err != nil {
		return err
	}
	if err := l.writeKnownHosts(); err != nil {
		return err
	}

	// Wait until each answers over SSH with systemd "running".
	timeout := opts.BootTimeout
	if timeout == 0 {
		timeout = 2*time.Minute + time.Duration(opts.Hosts)*time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintf(log, "lab: waiting for ssh and systemd on %s\n", plural(opts.Hosts, "host"))
	errs = make([]error, opts.Hosts)
	fleet.Each(ctx, len(l.st.Hosts), fleet.Options{Forks: len(l.st.Hosts), Name: name}, func(_ context.Context, i int) (struct{}, error) {
		h := l.st.Hosts[i]
		// The boot deadline (wctx), not a per-host one.
		if err := l.waitReady(wctx, h); err != nil {
			return struct{}{}, fmt.Errorf("%s: %w", h.Name, err)
		}
		return struct{}{}, nil
	}, func(r fleet.Result[struct{}]) { errs[r.Index] = r.Err })
	if err := firstError(ctx, errs); err != nil {
		return err
	}
	if err := writeInventory(l.InventoryPath(), l.KeyPath(), l.KnownHostsPath(), l.Hosts()); err != nil {
		return err
	}
	l.st.Ready = true
	return l.save()
}

// firstError returns ctx's error if it is done, else the errors joined.
func firstError(ctx context.Context, errs []error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var n []error
	for _, e := range errs {
		if e != nil {
			n = append(n, e)
		}
	}
	if len(n) > 3 {
		n = append(n[:3], fmt.Errorf("and %d more", len(n)-3))
	}
	return errors.Join(n...)
}

// bootHost makes host h's network, root file system and cgroups, and
// starts its container.
func (l *Lab) bootHost(ctx context.Context, h *hostState, authorized []byte, uid, gid int, password string) error {
	if err := makeNet(ctx, h.Netns, h.Veth, h.Gateway, h.Address); err != nil {
		return err
	}
	upper, work := filepath.Join(h.Dir, "upper"), filepath.Join(h.Dir, "work")
	for _, d := range []string{upper, work, h.Root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opt := "lowerdir=" + l.st.Image + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", h.Root, "overlay", 0, opt); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", h.Root, err)
	}
	hostKey, err := personalise(ctx, h, authorized, uid, gid, password)
	if err != nil {
		return err
	}
	l.mu.Lock()
	h.HostKey = hostKey
	l.mu.Unlock()

	return l.startContainer(h, os.O_TRUNC)
}

// cgroupRootsOf recovers the hierarchy roots from a host's cgroup paths.
func cgroupRootsOf(cgs []string) []string {
	var roots []string
	for _, c := range cgs {
		roots = append(roots, filepath.Dir(filepath.Dir(c)))
	}
	return roots
}

// personalise writes what makes host h itself into its root: hostname,
// machine id, a fresh host key, the lab key for root and deploy, and
// deploy's password. It returns the host's public key.
func personalise(ctx context.Context, h *hostState, authorized []byte, uid, gid int, password string) (string, error) {
	root := h.Root
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"etc/hostname", []byte(h.Name + "\n"), 0o644},
		{"etc/hosts", []byte("127.0.0.1\tlocalhost\n127.0.1.1\t" + h.Name + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644},
		{"etc/machine-id", []byte(randHex(16) + "\n"), 0o444},
	}
	for _, f := range files {
		if err := atomicfile.WriteFile(filepath.Join(root, f.path), f.data, f.mode); err != nil {
			return "", err
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", err
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := atomicfile.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"), pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key.pub"), pub, 0o644); err != nil {
		return "", err
	}
	for _, u := range []struct {
		home     string
		uid, gid int
	}{{"root", 0, 0}, {"home/" + User, uid, gid}} {
		sshDir := filepath.Join(root, u.home, ".ssh")
		if err := os.MkdirAll(sshDir, 0o700); err != nil {
			return "", err
		}
		ak := filepath.Join(sshDir, "authorized_keys")
		if err := atomicfile.WriteFile(ak, authorized, 0o600); err != nil {
			return "", err
		}
		for _, p := range []string{sshDir, ak} {
			if err := os.Lchown(p, u.uid, u.gid); err != nil {
				return "", err
			}
		}
	}
	cmd := exec.CommandContext(ctx, "chroot", root, "/usr/sbin/chpasswd")
	cmd.Stdin = strings.NewReader(User + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("set deploy's password: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(pub)), nil
}

// lookupUser reads name's uid and gid from a passwd file.
func lookupUser(passwd, name string) (int, int, error) {
	f, err := os.Open(passwd)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) >= 4 && p[0] == name {
			uid, err1 := strconv.Atoi(p[2])
			gid, err2 := strconv.Atoi(p[3])
			if err1 == nil && err2 == nil {
				return uid, gid, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("no user %s in %s", name, passwd)
}

// writeKeyPair makes an ed25519 key pair at path and path.pub.
func writeKeyPair(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "deploylab lab")
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " deploylab-lab\n"
	if err := atomicfile.WriteFile(path+".pub", []byte(pub), 0o644); err != nil {
		return nil, err
	}
	return signer, nil
}

func randPassword(n int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// writeKnownHosts writes every host's key for its address.
func (l *Lab) writeKnownHosts() error {
	var b strings.Builder
	for _, h := range l.st.Hosts {
		if h.HostKey != "" {
			fmt.Fprintf(&b, "%s %s\n", h.Address, h.HostKey)
		}
	}
	return atomicfile.WriteFile(l.KnownHostsPath(), []byte(b.String()), 0o644)
}

// writeInventory writes the lab's inventory with package inventory, so that
// every command can use the lab's hosts with -i and host-key checking on.
func writeInventory(path, key, knownHosts string, hosts []Host) error {
	inv := &inventory.Inventory{Vars: inventory.Vars{User: User, Key: key, KnownHosts: knownHosts}}
	for _, h := range hosts {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: h.Name, Address: h.Address, Student: h.Student,
			Vars: inventory.Vars{User: User, Port: h.Port, Key: key, KnownHosts: knownHosts}})
	}
	return inventory.Save(path, inv)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
