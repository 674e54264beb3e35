package lab_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
)

// TestNodeVariant checks the node image: Debian's node and npm, pm2 and
// loadtest on the PATH, and express installable offline from npm's cache
// (the hosts have no internet).
func TestNodeVariant(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 1, Variant: lab.VariantNode})
	if l.Variant() != lab.VariantNode {
		t.Fatalf("variant %q, want node", l.Variant())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, c := range []struct{ name, cmd, want string }{
		{"node", "node --version", "v18."},
		{"npm", "npm --version", "9."},
		{"pm2", "pm2 --version", ""},
		{"loadtest", "loadtest --version", ""},
		{"express offline", `d=$(mktemp -d) && cd "$d" && npm init -y >/dev/null && npm install --offline --no-audit --no-fund express >/dev/null && node -e 'const e=require("express"); console.log("express", typeof e())'`, "express function"},
	} {
		var out, errb bytes.Buffer
		code, err := l.Run(ctx, "lab1", c.cmd, &out, &errb)
		if err != nil || code != 0 {
			t.Errorf("%s: %q: exit %d, err %v, stderr %s", c.name, c.cmd, code, err, errb.String())
			continue
		}
		got := strings.TrimSpace(out.String())
		if got == "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q printed %q, want %q in it", c.name, c.cmd, got, c.want)
		}
		t.Logf("%s: %s", c.name, lastLine(got))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
