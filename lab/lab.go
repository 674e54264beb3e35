// Package lab runs throw-away Debian 12 test hosts on this machine, for
// users who want to try deploylab without VMs of their own and for every
// end-to-end test.
//
// Each host is a systemd-nspawn container booting systemd (PID 1) and sshd
// on a copy-on-write overlay of a cached Debian tree (built once with
// debootstrap from this machine's apt mirror), in its own network namespace
// joined to this machine by a veth pair: host N of the first lab is
// 10.77.N.2, reachable only from here. Every host has a "deploy" user with
// sudo, a lab key pair authorised for deploy and root, a per-host host key
// (pinned in the lab's known_hosts) and a random password for deploy.
//
// A lab lives in a state directory (default /var/lib/deploylab/lab, or
// DEPLOYLAB_LAB_DIR): lab.json records every resource it made (processes,
// namespaces, veths, mounts, cgroups, subnets) so that Stop removes all of
// them, even after the processes died or a start was interrupted. Several
// labs in different directories can run at once.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/internal/atomicfile"
	"github.com/deploylab/deploylab/internal/fail"
)

// MaxHosts is the largest lab.
const MaxHosts = 250

// DefaultDir is the lab state directory unless DEPLOYLAB_LAB_DIR or
// Options.Dir says otherwise.
const DefaultDir = "/var/lib/deploylab/lab"

// User is the unprivileged user (with sudo) on every lab host.
const User = "deploy"

// Options configure Start.
type Options struct {
	// Dir is the lab state directory; "" means DEPLOYLAB_LAB_DIR or DefaultDir.
	Dir string
	// CacheDir holds the image trees; "" means DEPLOYLAB_CACHE_DIR or DefaultCacheDir.
	CacheDir string
	// Hosts is the number of hosts, 1 to MaxHosts.
	Hosts int
	// Variant is the image: VariantBase ("" too) or VariantNode.
	Variant string
	// Log, if not nil, gets one line per step.
	Log io.Writer
	// BootTimeout bounds the wait for every host to answer over SSH with
	// systemd "running"; 0 means 2 minutes plus 1 second per host.
	BootTimeout time.Duration
}

// Host is one lab host, as a client connects to it.
type Host struct {
	Name    string // lab1, lab2, ...
	Address string // 10.77.1.2
	Port    int    // 22
	User    string // deploy (root accepts the same key)
	// KeyPath is the private key authorised for User and root.
	KeyPath string
	// KnownHostsPath pins the host keys of every host of the lab.
	KnownHostsPath string
	// Student is the display name the inventory gives the host.
	Student string
	// HostKeys are the host's public keys, in authorized_keys format.
	HostKeys []string
}

// Lab is a started (or stopped-by-surprise) lab, as recorded in its directory.
type Lab struct {
	dir string
	mu  sync.Mutex
	st  *state
}

// state is lab.json.
type state struct {
	ID      string       `json:"id"`
	Variant string       `json:"variant"`
	Image   string       `json:"image"`
	Created time.Time    `json:"created"`
	Ready   bool         `json:"ready"`
	Hosts   []*hostState `json:"hosts"`
}

type hostState struct {
	Name     string   `json:"name"`
	Index    int      `json:"index"`
	Slot     int      `json:"slot,omitempty"`
	Address  string   `json:"address,omitempty"`
	Gateway  string   `json:"gateway,omitempty"`
	Netns    string   `json:"netns"`
	Veth     string   `json:"veth"`
	Machine  string   `json:"machine"`
	Dir      string   `json:"dir"`
	Root     string   `json:"root"`
	Cgroups  []string `json:"cgroups"`
	PID      int      `json:"pid,omitempty"`
	PIDStart uint64   `json:"pid_start,omitempty"`
	HostKey  string   `json:"host_key,omitempty"`
}

// labDir resolves the state directory.
func labDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("DEPLOYLAB_LAB_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return l.dir }

// ID is the lab's random identifier, part of the names of its namespaces,
// veths, cgroups and containers.
func (l *Lab) ID() string { return l.st.ID }

// Variant is the image variant the hosts run.
func (l *Lab) Variant() string { return l.st.Variant }

// InventoryPath is the lab's inventory.yaml.
func (l *Lab) InventoryPath() string { return filepath.Join(l.dir, "inventory.yaml") }

// KnownHostsPath is the lab's known_hosts, with every host's key.
func (l *Lab) KnownHostsPath() string { return filepath.Join(l.dir, "known_hosts") }

// KeyPath is the lab's private key, authorised for deploy and root.
func (l *Lab) KeyPath() string { return filepath.Join(l.dir, "id_ed25519") }

// PasswordPath is the file (mode 0600) holding deploy's password.
func (l *Lab) PasswordPath() string { return filepath.Join(l.dir, "password") }

func (l *Lab) statePath() string { return filepath.Join(l.dir, "lab.json") }

// Hosts lists the lab's hosts in order.
func (l *Lab) Hosts() []Host {
	var out []Host
	for _, h := range l.st.Hosts {
		var keys []string
		if h.HostKey != "" {
			keys = []string{h.HostKey}
		}
		out = append(out, Host{
			Name: h.Name, Address: h.Address, Port: 22, User: User,
			KeyPath: l.KeyPath(), KnownHostsPath: l.KnownHostsPath(),
			Student: fmt.Sprintf("Lab Host %d", h.Index), HostKeys: keys,
		})
	}
	return out
}

// Host returns the host called name ("lab2") or numbered so ("2").
func (l *Lab) Host(name string) (Host, error) {
	for _, h := range l.Hosts() {
		if h.Name == name || h.Name == "lab"+name {
			return h, nil
		}
	}
	return Host{}, fail.Errorf(fail.Usage, fmt.Sprintf("the lab has hosts 1 to %d", len(l.st.Hosts)), "no lab host %q", name)
}

// Open reads the lab recorded in dir ("" means DEPLOYLAB_LAB_DIR or
// DefaultDir), whether its hosts still run or not.
func Open(dir string) (*Lab, error) {
	dir = labDir(dir)
	st, err := readState(filepath.Join(dir, "lab.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail.New(fail.Usage, "start one with: deploylab lab start",
				fmt.Errorf("no lab in %s", dir))
		}
		return nil, err
	}
	return &Lab{dir: dir, st: st}, nil
}

func readState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &st, nil
}

func (l *Lab) save() error {
	l.mu.Lock()
	b, err := json.MarshalIndent(l.st, "", "  ")
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.statePath(), append(b, '\n'), 0o600)
}

// alive counts the hosts whose container process runs.
func (l *Lab) alive() int {
	n := 0
	for _, h := range l.st.Hosts {
		if alive(h.PID, h.PIDStart) {
			n++
		}
	}
	return n
}

// Start starts a lab of opts.Hosts hosts and waits until every one answers
// over SSH with systemd "running". If the directory already holds a running
// lab with the same number of hosts and variant, Start returns it; a
// different or partly running one is refused (stop it first); leftovers of
// a dead one are cleaned up first. If Start fails or ctx is cancelled, it
// removes everything it made before returning.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Hosts < 1 || opts.Hosts > MaxHosts {
		return nil, fail.Errorf(fail.Usage, fmt.Sprintf("use --hosts 1 to %d", MaxHosts),
			"--hosts must be between 1 and %d, got %d", MaxHosts, opts.Hosts)
	}
	if opts.Variant == "" {
		opts.Variant = VariantBase
	}
	if opts.Variant != VariantBase && opts.Variant != VariantNode {
		return nil, fail.Errorf(fail.Usage, "use --variant base or --variant node", "unknown lab variant %q", opts.Variant)
	}
	if err := checkPrereqs(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	dir := labDir(opts.Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fail.New(fail.Prereq, "set DEPLOYLAB_LAB_DIR to a writable directory", fmt.Errorf("lab directory: %w", err))
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("lab start: %w", err)
	}
	defer unlock()

	if st, err := readState(filepath.Join(dir, "lab.json")); err == nil {
		old := &Lab{dir: dir, st: st}
		n := old.alive()
		switch {
		case st.Ready && n == len(st.Hosts) && n == opts.Hosts && st.Variant == opts.Variant:
			fmt.Fprintf(log, "lab: reusing the running lab (%s, %s)\n", plural(n, "host"), st.Variant)
			return old, nil
		case st.Ready && n > 0:
			what := fmt.Sprintf("%d of %d %s hosts", n, len(st.Hosts), st.Variant)
			return nil, fail.Errorf(fail.Usage, "stop it first: deploylab lab stop",
				"a different lab is running in %s (%s; asked for %d %s hosts)", dir, what, opts.Hosts, opts.Variant)
		default:
			fmt.Fprintf(log, "lab: cleaning up a dead lab's leftovers\n")
			if err := old.cleanup(context.Background(), false); err != nil {
				return nil, fmt.Errorf("lab start: clean up the previous lab: %w", err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fail.New(fail.Failed, "remove "+filepath.Join(dir, "lab.json")+" after checking nothing runs", err)
	}

	image, err := EnsureImage(ctx, opts.CacheDir, opts.Variant, log)
	if err != nil {
		return nil, err
	}
	l := &Lab{dir: dir, st: &state{ID: randHex(4), Variant: opts.Variant, Image: image, Created: time.Now().UTC()}}
	t0 := time.Now()
	fmt.Fprintf(log, "lab: starting %s (%s, lab id %s)\n", plural(opts.Hosts, "host"), opts.Variant, l.st.ID)
	if err := l.start(ctx, opts, log); err != nil {
		// Clean up even though ctx may be done: a fresh context, bounded.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		cerr := l.cleanup(cctx, false)
		if ctx.Err() != nil {
			err = fmt.Errorf("lab start interrupted: %w", ctx.Err())
		}
		if cerr != nil {
			return nil, fmt.Errorf("%w (and cleaning up failed: %v; run deploylab lab stop)", err, cerr)
		}
		return nil, err
	}
	fmt.Fprintf(log, "lab: %s running in %s; inventory: %s\n", plural(opts.Hosts, "host"), time.Since(t0).Round(100*time.Millisecond), l.InventoryPath())
	return l, nil
}

// Stop stops every host and removes all the lab made: processes, mounts,
// network namespaces and veths, cgroups, subnets and the files of its
// directory. Stopping a lab that is not running, or whose processes died,
// is not an error: Stop is idempotent.
func (l *Lab) Stop(ctx context.Context) error {
	unlock, err := lockFile(context.WithoutCancel(ctx), filepath.Join(l.dir, ".lock"))
	if err != nil {
		return fmt.Errorf("lab stop: %w", err)
	}
	defer unlock()
	// The recorded state may be newer than ours (another process restarted it).
	if st, err := readState(l.statePath()); err == nil {
		l.st = st
	}
	if err := l.cleanup(ctx, true); err != nil {
		return fmt.Errorf("lab stop: %w", err)
	}
	return nil
}

// StopDir stops the lab recorded in dir, if any ("" means DEPLOYLAB_LAB_DIR
// or DefaultDir), saying what it did on log (may be nil). A directory
// without a lab is not an error.
func StopDir(ctx context.Context, dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	l, err := Open(dir)
	if err != nil {
		if fail.KindOf(err) == fail.Usage {
			fmt.Fprintf(log, "lab: no lab in %s\n", labDir(dir))
			return nil
		}
		return err
	}
	t0 := time.Now()
	if err := l.Stop(ctx); err != nil {
		return err
	}
	fmt.Fprintf(log, "lab: stopped %s in %s and removed all they used\n", plural(len(l.st.Hosts), "host"), time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// cleanup removes every resource recorded in the state (and those named
// after the lab's id), then the lab's files. It keeps going past errors and
// returns them all. Containers are asked to power off if graceful (and
// ctx is not done), killed otherwise.
func (l *Lab) cleanup(ctx context.Context, graceful bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(l.st.Hosts))
	for i, h := range l.st.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.cleanupHost(ctx, h, graceful)
		}()
	}
	wg.Wait()
	errs = append(errs, freeSlotsOf(l.st.ID))
	if err := errors.Join(errs...); err != nil {
		return err // keep the state: stop can be tried again
	}
	var rm []error
	if err := removeTree(filepath.Join(l.dir, "hosts")); err != nil {
		rm = append(rm, err)
	}
	for _, f := range []string{"inventory.yaml", "known_hosts", "password", "id_ed25519", "id_ed25519.pub", "lab.json"} {
		if err := os.Remove(filepath.Join(l.dir, f)); err != nil && !os.IsNotExist(err) {
			rm = append(rm, err)
		}
	}
	return errors.Join(rm...)
}

func (l *Lab) cleanupHost(ctx context.Context, h *hostState, graceful bool) error {
	var errs []error
	grace := time.Duration(0)
	if graceful {
		grace = 5 * time.Second
	}
	if err := powerOff(ctx, h, grace); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(h.Cgroups); err != nil {
		errs = append(errs, err)
	}
	if h.Dir != "" {
		if err := unmountAll(h.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeNet(h.Netns, h.Veth); err != nil {
		errs = append(errs, err)
	}
	if err := freeSlot(h.Slot, l.st.ID); err != nil {
		errs = append(errs, err)
	}
	if h.Machine != "" {
		// systemd-nspawn leaves its mount propagation directory behind.
		removeTree(filepath.Join("/run/systemd/nspawn/propagate", h.Machine))
	}
	if len(errs) == 0 && h.Dir != "" {
		if err := removeTree(h.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return nil
}

// Leftovers lists what remains on this machine of the lab with id whose
// directory is dir: network namespaces, veths, cgroups (with their
// processes), container processes, mounts and subnets. After Stop it is
// empty; tests assert so.
func Leftovers(id, dir string) []string {
	var out []string
	if id == "" {
		return []string{"empty lab id"}
	}
	ns, _ := filepath.Glob("/run/netns/deploylab-" + id + "-*")
	out = append(out, ns...)
	veths, _ := filepath.Glob("/sys/class/net/dl" + id + "h*")
	out = append(out, veths...)
	if roots, err := cgroupRoots(); err == nil {
		for _, r := range roots {
			cgs, _ := filepath.Glob(filepath.Join(r, cgroupParent, id+"-*"))
			for _, cg := range cgs {
				out = append(out, fmt.Sprintf("%s (processes %v)", cg, cgroupPids([]string{cg})))
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "deploylab-"+id+"-") {
			out = append(out, "process "+filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	if mps, err := mountPoints(dir); err == nil {
		for _, m := range mps {
			out = append(out, "mount "+m)
		}
	}
	slots, _ := filepath.Glob(filepath.Join(runDir, "slots", "*"))
	for _, s := range slots {
		b, err := os.ReadFile(s)
		if err == nil && strings.Contains(string(b), `"lab":"`+id+`"`) {
			out = append(out, "subnet slot "+s)
		}
	}
	return out
}
