package lab_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/lab/labtest"
)

// TestReboot: a rebooted host keeps its disk, address and host key, loses
// what only ran, and brings back what is enabled; a powered-off host is
// unreachable until it is booted again, and Stop removes it all the same.
func TestReboot(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(name, cmd string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		code, err := l.Run(ctx, name, cmd, &out, io.Discard)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, cmd, err)
		}
		return strings.TrimSpace(out.String()), code
	}
	keys := func() string {
		b, err := os.ReadFile(l.KnownHostsPath())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := keys()
	bootID, _ := run("lab1", "cat /proc/sys/kernel/random/boot_id; echo kept >~/file; setsid sleep 1000 </dev/null >/dev/null 2>&1 &")
	if _, code := run("lab1", "pgrep -x sleep"); code != 0 {
		t.Fatal("the process started by hand is not running")
	}

	if err := l.Reboot(ctx, "lab1"); err != nil {
		t.Fatal(err)
	}
	if id, _ := run("lab1", "cat /proc/sys/kernel/random/boot_id"); id == bootID {
		t.Errorf("boot id %s did not change: not rebooted", id)
	}
	if got, _ := run("lab1", "cat ~/file"); got != "kept" {
		t.Errorf("~/file after reboot = %q, want the disk kept", got)
	}
	if _, code := run("lab1", "pgrep -x sleep"); code == 0 {
		t.Error("a process started by hand survived the reboot")
	}
	if got, _ := run("lab1", "systemctl is-active ssh"); got != "active" {
		t.Errorf("ssh after reboot: %q", got)
	}
	if keys() != before {
		t.Error("known_hosts changed across a reboot")
	}

	if err := l.PowerOff(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	sts, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == "lab2" && (s.Running || s.Reachable) {
			t.Errorf("lab2 powered off but its status is %+v", s)
		}
	}
	if err := l.PowerOff(ctx, "2"); err != nil {
		t.Errorf("a second power-off: %v", err)
	}
	// labtest's cleanup stops the lab and checks nothing is left behind.
}
