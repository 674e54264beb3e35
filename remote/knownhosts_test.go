package remote

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/fail"
)

// TestMalformedKnownHosts: a known_hosts line that does not parse is a
// usage error naming the file and the line, from Dial and from
// CheckKnownHosts, never "unreachable".
func TestMalformedKnownHosts(t *testing.T) {
	for _, bad := range []string{
		"garbage line here",
		"[127.0.0.1]:22 ssh-ed25519 AAAAnotbase64!!",
		"@cert-authority",
		"|1|abc|def ssh-ed25519 AAAA",
		"127.0.0.1 ssh-ed25519",
	} {
		t.Run(bad, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "kh")
			good := mustRead(t, env.knownHostsOK)
			n := strings.Count(good, "\n")
			if err := os.WriteFile(kh, []byte("# comment\n\n"+good+bad+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			h := testHost()
			h.KnownHostsFile = kh
			_, err := Dial(testCtx(t), h, baseOpts()...)
			for _, err := range []error{err, CheckKnownHosts(kh)} {
				var ke *KnownHostsError
				if !errors.As(err, &ke) || fail.KindOf(err) != fail.Usage {
					t.Fatalf("got %v (kind %v), want a usage *KnownHostsError", err, fail.KindOf(err))
				}
				if ke.File != kh || ke.Line != n+3 {
					t.Errorf("file %s line %d, want %s line %d", ke.File, ke.Line, kh, n+3)
				}
				if !strings.HasPrefix(err.Error(), "known_hosts "+kh+" line ") || !strings.Contains(fail.HintOf(err), kh) {
					t.Errorf("message %q hint %q", err, fail.HintOf(err))
				}
			}
		})
	}
	if err := CheckKnownHosts(filepath.Join(t.TempDir(), "absent"), env.knownHostsOK); err != nil {
		t.Errorf("absent or good files: %v", err)
	}
}
