package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/deploylab/deploylab/internal/fail"
)

// checkPrereqs fails, in one line, if this machine cannot run a lab: it
// needs root, systemd-nspawn, debootstrap, ip and overlayfs.
func checkPrereqs() error {
	if os.Geteuid() != 0 {
		return fail.New(fail.Prereq, "run it as root, e.g. sudo deploylab lab start",
			errors.New("the lab needs root: it creates network namespaces, mounts and containers"))
	}
	var tools, pkgs []string
	for _, t := range []struct{ bin, pkg string }{
		{"systemd-nspawn", "systemd-container"},
		{"debootstrap", "debootstrap"},
		{"ip", "iproute2"},
		{"chroot", "coreutils"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			tools = append(tools, t.bin)
			pkgs = append(pkgs, t.pkg)
		}
	}
	if len(tools) > 0 {
		return fail.New(fail.Prereq, "apt-get install "+strings.Join(pkgs, " "),
			fmt.Errorf("the lab needs %s (to build Debian 12 trees and boot them as containers), not found", strings.Join(tools, " and ")))
	}
	if !hasOverlay() {
		exec.Command("modprobe", "overlay").Run()
		if !hasOverlay() {
			return fail.New(fail.Prereq, "load the overlay module: modprobe overlay",
				errors.New("the lab needs overlayfs (each host runs on a copy-on-write view of the cached image), and this kernel lacks it"))
		}
	}
	return nil
}

func hasOverlay() bool {
	b, err := os.ReadFile("/proc/filesystems")
	return err == nil && strings.Contains(string(b), "\toverlay\n")
}
