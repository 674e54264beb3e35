package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// startContainer boots host h's container on its prepared root and network
// (bootHost's last step, and the boot half of Reboot). consoleFlag is
// os.O_TRUNC for a first boot and os.O_APPEND after a reboot.
func (l *Lab) startContainer(h *hostState, consoleFlag int) error {
	if _, err := makeCgroups(cgroupRootsOf(h.Cgroups), filepath.Base(h.Cgroups[0])); err != nil {
		return err
	}
	console, err := os.OpenFile(filepath.Join(h.Dir, "console.log"), os.O_WRONLY|os.O_CREATE|consoleFlag, 0o600)
	if err != nil {
		return err
	}
	defer console.Close()
	args := []string{"--boot", "--register=no", "--keep-unit", "--link-journal=no",
		"--resolv-conf=off", "--timezone=off", "--console=read-only",
		"--machine=" + h.Machine, "--hostname=" + h.Name,
		"--network-namespace-path=/run/netns/" + h.Netns, "-D", h.Root}
	cmd := exec.Command("/bin/sh", inCgroups(h.Cgroups, "systemd-nspawn", args)...)
	cmd.Stdout, cmd.Stderr = console, console
	// Its own session: it outlives this process, and a Ctrl-C at the
	// terminal reaches deploylab, which stops it, not the container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start systemd-nspawn: %w", err)
	}
	pid := cmd.Process.Pid
	var start uint64
	for i := 0; i < 100 && start == 0; i++ {
		start = procStart(pid)
		if start == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	l.mu.Lock()
	h.PID, h.PIDStart = pid, start
	l.mu.Unlock()
	go cmd.Wait() // reap it whenever it ends
	return nil
}

// PowerOff shuts host name ("lab3" or "3") down as `poweroff` would on a
// VM: its systemd stops every service, the container ends, its disk (the
// overlay) and address stay. A powered-off host is unreachable until
// Reboot boots it again; Stop removes it as any other.
func (l *Lab) PowerOff(ctx context.Context, name string) error {
	h, err := l.hostState(name)
	if err != nil {
		return err
	}
	if !alive(h.PID, h.PIDStart) {
		return nil
	}
	if err := powerOff(ctx, h, 30*time.Second); err != nil {
		return fmt.Errorf("%s: power off: %w", h.Name, err)
	}
	return ctx.Err()
}

// powerOff ends h's container. With a grace period it first sends SIGTERM,
// on which systemd-nspawn asks the container's systemd to power off, and
// waits up to grace for it to end (a cancelled ctx cuts the wait short).
// Then SIGKILL, whatever the container left in its cgroups goes with it (as
// on a VM), and it waits for the process to exit.
func powerOff(ctx context.Context, h *hostState, grace time.Duration) error {
	if grace > 0 && alive(h.PID, h.PIDStart) && ctx.Err() == nil {
		_ = killPID(h.PID, h.PIDStart, sigTERM)
		deadline := time.Now().Add(grace)
		for alive(h.PID, h.PIDStart) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if alive(h.PID, h.PIDStart) {
		_ = killPID(h.PID, h.PIDStart, sigKILL)
	}
	var errs []error
	if err := killCgroups(h.Cgroups, 15*time.Second); err != nil {
		errs = append(errs, err)
	}
	for i := 0; i < 100 && alive(h.PID, h.PIDStart); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(h.PID, h.PIDStart) {
		errs = append(errs, fmt.Errorf("%s: container process %d survived SIGKILL", h.Name, h.PID))
	}
	return errors.Join(errs...)
}

// Reboot powers host name off and boots it again on the same disk, address
// and host key, and waits until it is ready over SSH: what a student's VM
// keeps across a reboot (enabled units, files) is there, what only ran
// (a process started by hand) is not.
func (l *Lab) Reboot(ctx context.Context, name string) error {
	if err := l.PowerOff(ctx, name); err != nil {
		return err
	}
	h, err := l.hostState(name)
	if err != nil {
		return err
	}
	// systemd-nspawn leaves its mount propagation directory behind.
	removeTree(filepath.Join("/run/systemd/nspawn/propagate", h.Machine))
	if err := l.startContainer(h, os.O_APPEND); err != nil {
		return fmt.Errorf("%s: boot: %w", h.Name, err)
	}
	if err := l.save(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := l.waitReady(ctx, h); err != nil {
		return fmt.Errorf("%s: after reboot: %w", h.Name, err)
	}
	return nil
}

// hostState finds a host's record by name ("lab3") or number ("3").
func (l *Lab) hostState(name string) (*hostState, error) {
	hh, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.st.Hosts {
		if h.Name == hh.Name {
			return h, nil
		}
	}
	return nil, fmt.Errorf("no lab host %q", name)
}
