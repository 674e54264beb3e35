package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/lab/labtest"
)

// TestSmoke starts two hosts, logs into each with package remote (host key
// checking on, against the lab's known_hosts), checks systemd and sudo,
// and (in labtest's cleanup) that stopping leaves nothing behind: no
// namespace, veth, mount, process, cgroup or subnet of the lab.
func TestSmoke(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 2})
	hosts := l.Hosts()
	if len(hosts) != 2 {
		t.Fatalf("got %d hosts, want 2", len(hosts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, h := range hosts {
		c := labtest.Dial(t, h)
		for _, tc := range []struct{ cmd, want string }{
			{"systemctl is-system-running", "running"},
			{"sudo -n true && echo sudo-ok", "sudo-ok"},
			{"hostname", h.Name},
			{"id -un", "deploy"},
			{"ip -4 -o addr show host0 | awk '{print $4}'", h.Address + "/30"},
		} {
			res, err := c.Run(ctx, tc.cmd)
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("%s: %q: exit %d, err %v, stderr %q", h.Name, tc.cmd, res.ExitCode, err, res.Stderr)
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != tc.want {
				t.Errorf("%s: %q = %q, want %q", h.Name, tc.cmd, got, tc.want)
			}
		}
	}
}
