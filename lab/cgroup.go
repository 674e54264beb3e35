package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupParent is the directory, in each cgroup hierarchy, under which every
// lab container gets a cgroup of its own.
const cgroupParent = "deploylab"

// cgroupRoots returns the mount points of the cgroup hierarchies that
// systemd-nspawn uses: the unified (v2) hierarchy and, on a hybrid or legacy
// machine, the name=systemd v1 hierarchy.
func cgroupRoots() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	var roots []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		// Only the hierarchy's root (field 4 "/"): not a bind of a sub-cgroup.
		if f[3] != "/" {
			continue
		}
		switch {
		case g[0] == "cgroup2":
			roots = append(roots, unescapeMount(f[4]))
		case g[0] == "cgroup" && contains(strings.Split(g[2], ","), "name=systemd"):
			roots = append(roots, unescapeMount(f[4]))
		}
	}
	if len(roots) == 0 {
		return nil, errors.New("no cgroup2 or name=systemd cgroup hierarchy is mounted")
	}
	sort.Strings(roots)
	return roots, nil
}

// makeCgroups creates the cgroup name under cgroupParent in every root and
// returns their paths.
func makeCgroups(roots []string, name string) ([]string, error) {
	var paths []string
	for _, r := range roots {
		p := filepath.Join(r, cgroupParent, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return paths, fmt.Errorf("create cgroup %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// cgroupPids lists the processes in the cgroups and all their descendants.
func cgroupPids(paths []string) []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range paths {
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, l := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(l); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// killCgroups SIGKILLs every process in the cgroups until none is left or
// the timeout passes.
func killCgroups(paths []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := cgroupPids(paths)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v in %s survived SIGKILL", pids, strings.Join(paths, ", "))
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroups removes the cgroups and their sub-cgroups, deepest first.
// A cgroup just emptied may stay busy for a moment: it retries.
func removeCgroups(paths []string) error {
	var errs []error
	for _, p := range paths {
		var dirs []string
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				err = os.Remove(d)
				if err == nil || os.IsNotExist(err) || !errors.Is(err, syscall.EBUSY) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
		// The shared parent goes when the last lab container is gone.
		os.Remove(filepath.Dir(p))
	}
	return errors.Join(errs...)
}
