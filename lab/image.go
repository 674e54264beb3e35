package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/deploylab/deploylab/internal/atomicfile"
	"github.com/deploylab/deploylab/internal/fail"
)

// The variants of the lab image.
const (
	// VariantBase is Debian 12 with systemd, sshd, sudo and the deploy user.
	VariantBase = "base"
	// VariantNode is base plus Debian's nodejs and npm, pm2 and loadtest
	// installed globally, and express, pm2 and loadtest in npm's cache of
	// root and deploy (the hosts have no internet: `npm install --offline`).
	VariantNode = "node"
)

const suite = "bookworm"

const baseInclude = "systemd-sysv,udev,dbus,openssh-server,sudo,ca-certificates,iproute2,procps,curl"

// baseSetup runs in the fresh debootstrap tree (chroot). Host keys are
// removed: each lab host gets its own, made at start.
const baseSetup = `set -eu
useradd -m -s /bin/bash -u 1000 -G sudo deploy
printf 'deploy ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/deploylab
chmod 0440 /etc/sudoers.d/deploylab
rm -f /etc/ssh/ssh_host_*
cat > /etc/ssh/sshd_config.d/deploylab.conf <<'EOF'
# deploylab lab host: key login for root and deploy, password login for deploy
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
MaxStartups 100:30:200
EOF
# Units that fail or make noise in a container without hardware or internet.
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer dpkg-db-backup.timer getty@tty1.service systemd-pstore.service >/dev/null 2>&1
: > /etc/machine-id
rm -f /etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/*
`

// nodeSetup runs in a copy of the base tree (systemd-nspawn, this machine's
// network), with this machine's CA bundle at /run/deploylab-ca.crt.
const nodeSetup = `set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends nodejs npm
if [ -f /run/deploylab-ca.crt ]; then export npm_config_cafile=/run/deploylab-ca.crt; fi
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
npm install -g --loglevel=error pm2 loadtest
d=$(mktemp -d)
cd "$d"
npm init -y >/dev/null
npm install --loglevel=error express pm2 loadtest >/dev/null
cd /
rm -rf "$d" /root/.npm/_logs /root/.pm2
cp -a /root/.npm /home/deploy/.npm
chown -R deploy:deploy /home/deploy/.npm
d=$(mktemp -d)
chown deploy "$d"
su deploy -c "cd $d && npm init -y >/dev/null && npm install --offline --loglevel=error express >/dev/null"
rm -rf "$d" /home/deploy/.npm/_logs
apt-get clean
rm -rf /var/lib/apt/lists/*
`

// imageName is the cache directory name of a variant: it changes whenever
// the recipe changes, so a stale cache is never used.
func imageName(variant string) string {
	h := sha256.New()
	fmt.Fprint(h, suite, "\n", baseInclude, "\n", baseSetup)
	if variant == VariantNode {
		fmt.Fprint(h, nodeSetup)
	}
	return variant + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// markerFile marks a finished image tree.
const markerFile = ".deploylab-image"

// DefaultCacheDir is where images are cached unless DEPLOYLAB_CACHE_DIR or
// Options.CacheDir says otherwise.
const DefaultCacheDir = "/var/cache/deploylab"

func cacheDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("DEPLOYLAB_CACHE_DIR"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// EnsureImage returns the root directory of the cached image tree of
// variant ("base" or "node"), building it first if needed (base: debootstrap
// from this machine's Debian mirror, about 1-2 minutes; node: base plus
// nodejs, npm and npm packages, about 2 minutes more). cacheDir "" means
// DEPLOYLAB_CACHE_DIR or /var/cache/deploylab. Builds of the same image by
// several processes at once are serialised by a lock; a build happens in a
// temp directory renamed into place when complete, so an interrupted build
// leaves nothing half-made. log, if not nil, gets one line per step.
func EnsureImage(ctx context.Context, cacheDir_, variant string, log io.Writer) (string, error) {
	if variant == "" {
		variant = VariantBase
	}
	if variant != VariantBase && variant != VariantNode {
		return "", fail.Errorf(fail.Usage, "use --variant base or --variant node", "unknown lab variant %q", variant)
	}
	if err := checkPrereqs(); err != nil {
		return "", err
	}
	dir := cacheDir(cacheDir_)
	if log == nil {
		log = io.Discard
	}
	switch variant {
	case VariantNode:
		base, err := EnsureImage(ctx, dir, VariantBase, log)
		if err != nil {
			return "", err
		}
		return buildOnce(ctx, dir, imageName(VariantNode), log, func(ctx context.Context, tmp string) error {
			return buildNode(ctx, base, tmp, log)
		})
	default:
		return buildOnce(ctx, dir, imageName(VariantBase), log, func(ctx context.Context, tmp string) error {
			return buildBase(ctx, tmp, log)
		})
	}
}

// buildOnce returns cache/images/name, running build into a temp directory
// and renaming it there if it does not exist yet, under a lock.
func buildOnce(ctx context.Context, cache, name string, log io.Writer, build func(ctx context.Context, tmp string) error) (string, error) {
	final := filepath.Join(cache, "images", name)
	if _, err := os.Stat(filepath.Join(final, markerFile)); err == nil {
		return final, nil
	}
	for _, d := range []string{"images", "tmp", "locks"} {
		if err := os.MkdirAll(filepath.Join(cache, d), 0o755); err != nil {
			return "", fail.New(fail.Prereq, "set DEPLOYLAB_CACHE_DIR to a writable directory", fmt.Errorf("image cache: %w", err))
		}
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, "locks", name+".lock"))
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(final, markerFile)); err == nil {
		return final, nil // built by someone else while we waited
	}
	// Leftovers of interrupted builds (we hold the lock: nobody builds them).
	old, _ := filepath.Glob(filepath.Join(cache, "tmp", name+".*"))
	for _, o := range old {
		if err := removeTree(o); err != nil {
			return "", fmt.Errorf("image %s: clean up an interrupted build: %w", name, err)
		}
	}
	if err := removeTree(final); err != nil { // unfinished (no marker)
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	tmp := filepath.Join(cache, "tmp", name+"."+randHex(4))
	start := time.Now()
	err = build(ctx, tmp)
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(tmp, markerFile), []byte(name+"\n"), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		if rerr := removeTree(tmp); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("image %s: %w", name, ctx.Err())
		}
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	fmt.Fprintf(log, "lab: image %s built in %s\n", name, time.Since(start).Round(time.Second))
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, gone := range pruneImages(cache, name, string(mounts)) {
		fmt.Fprintf(log, "lab: removed the outdated image %s\n", gone)
	}
	return final, nil
}

// pruneImages removes the images of name's variant other than name (built
// from an older recipe: no deploylab of this version uses them), except
// those a running lab host has mounted (mountinfo: /proc/self/mountinfo's
// text), and returns the names it removed. A failure only leaves an image
// behind.
func pruneImages(cache, name, mountinfo string) []string {
	variant, _, _ := strings.Cut(name, "-")
	old, _ := filepath.Glob(filepath.Join(cache, "images", variant+"-*"))
	var removed []string
	for _, dir := range old {
		if filepath.Base(dir) == name || imageMounted(mountinfo, dir) {
			continue
		}
		if removeTree(dir) == nil {
			removed = append(removed, filepath.Base(dir))
		}
	}
	return removed
}

// imageMounted says whether an overlay in mountinfo (lines "... - overlay
// SOURCE OPTIONS") has dir among its lower directories.
func imageMounted(mountinfo, dir string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		_, tail, ok := strings.Cut(line, " - ")
		f := strings.Fields(tail)
		if !ok || len(f) < 3 || f[0] != "overlay" {
			continue
		}
		for _, o := range strings.Split(f[2], ",") {
			if lower, ok := strings.CutPrefix(o, "lowerdir="); ok {
				for _, l := range strings.Split(lower, ":") {
					if filepath.Clean(l) == filepath.Clean(dir) {
						return true
					}
				}
			}
		}
	}
	return false
}

func buildBase(ctx context.Context, tmp string, log io.Writer) error {
	srcs, err := aptSources("/etc")
	if err != nil {
		return err
	}
	mirror, lines, err := debianMirror(srcs, suite)
	if err != nil {
		return fail.New(fail.Prereq, "add a Debian bookworm mirror to /etc/apt/sources.list", err)
	}
	fmt.Fprintf(log, "lab: building the base image with debootstrap from %s (1-2 minutes, once)\n", mirror)
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+baseInclude, suite, tmp, mirror)
	if err := runGroup(cmd); err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, "etc/apt/sources.list"),
		[]byte("# this machine's Debian mirror, copied by deploylab\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	snippets, err := aptConfSnippets("/etc")
	if err != nil {
		return err
	}
	for name, b := range snippets {
		if err := atomicfile.WriteFile(filepath.Join(tmp, "etc/apt/apt.conf.d", name), b, 0o644); err != nil {
			return err
		}
	}
	cmd = exec.CommandContext(ctx, "chroot", tmp, "/bin/sh", "-c", baseSetup)
	if err := runGroup(cmd); err != nil {
		return fmt.Errorf("set up the base image: %w", err)
	}
	// No name server: the hosts have no internet, and lookups should fail fast.
	return atomicfile.WriteFile(filepath.Join(tmp, "etc/resolv.conf"), nil, 0o644)
}

func buildNode(ctx context.Context, base, tmp string, log io.Writer) error {
	fmt.Fprintf(log, "lab: building the node image: nodejs, npm, pm2, loadtest, express (2-4 minutes, once)\n")
	if err := runGroup(exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", base, tmp)); err != nil {
		return fmt.Errorf("copy the base image: %w", err)
	}
	os.Remove(filepath.Join(tmp, markerFile))
	args := []string{"--as-pid2", "--resolv-conf=copy-host", "--timezone=off"}
	if ca := hostNpmCA(ctx); ca != "" {
		args = append(args, "--bind-ro="+ca+":/run/deploylab-ca.crt")
	}
	if reg := hostNpmConfig(ctx, "registry"); reg != "" {
		args = append(args, "--setenv=npm_config_registry="+reg)
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v := os.Getenv(k); v != "" {
			args = append(args, "--setenv="+k+"="+v)
		}
	}
	args = append(args, "/bin/sh", "-c", nodeSetup)
	if err := nspawnRun(ctx, tmp, args); err != nil {
		return fmt.Errorf("set up the node image: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(tmp, "etc/resolv.conf"), nil, 0o644)
}

// hostNpmCA is the CA bundle this machine's npm (or, failing that, its
// TLS stack) trusts, for npm inside the image build.
func hostNpmCA(ctx context.Context) string {
	if ca := hostNpmConfig(ctx, "cafile"); ca != "" {
		if _, err := os.Stat(ca); err == nil {
			return ca
		}
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		return "/etc/ssl/certs/ca-certificates.crt"
	}
	return ""
}

// hostNpmConfig reads one setting of this machine's npm configuration, ""
// if npm is not installed or the setting is unset.
func hostNpmConfig(ctx context.Context, key string) string {
	if _, err := exec.LookPath("npm"); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "config", "get", key).Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	if v == "null" || v == "undefined" {
		return ""
	}
	return v
}

// nspawnRun runs systemd-nspawn (not booting) on dir with args, in a cgroup
// of its own, and removes that cgroup afterwards.
func nspawnRun(ctx context.Context, dir string, args []string) error {
	roots, err := cgroupRoots()
	if err != nil {
		return err
	}
	name := "build-" + randHex(4)
	cgs, err := makeCgroups(roots, name)
	defer func() {
		killCgroups(cgs, 10*time.Second)
		removeCgroups(cgs)
	}()
	if err != nil {
		return err
	}
	full := append([]string{"-q", "--register=no", "--keep-unit", "--link-journal=no",
		"--machine=deploylab-" + name, "-D", dir}, args...)
	cmd := exec.CommandContext(ctx, "/bin/sh", inCgroups(cgs, "systemd-nspawn", full)...)
	return runGroup(cmd)
}

// inCgroups returns the arguments of /bin/sh that move the shell into the
// cgroups and then exec name with args: the process is in its own cgroup
// before it starts.
func inCgroups(cgs []string, name string, args []string) []string {
	var b strings.Builder
	for _, g := range cgs {
		fmt.Fprintf(&b, "echo $$ > '%s/cgroup.procs' || exit 125; ", g)
	}
	b.WriteString(`exec "$@"`)
	return append([]string{"-c", b.String(), "sh", name}, args...)
}

// runGroup runs cmd in its own process group, killed as a whole when its
// context is done, and returns its error with the tail of its output.
func runGroup(cmd *exec.Cmd) error {
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = killGroup(cmd)
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if t := strings.TrimSpace(out.String()); t != "" {
			return fmt.Errorf("%w: %s", err, lastLines(t, 8))
		}
		return err
	}
	return nil
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = append([]byte(nil), t.b[len(t.b)-16<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
