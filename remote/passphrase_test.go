package remote

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestPassphraseOncePerRun dials several real sshd hosts, twice each, all at
// once, with one encrypted key and one WithPassphrase option (as a CLI run
// does): the passphrase is asked once for the whole run and every host
// authenticates. The prompt hands back the same slice every time, as a caller
// that caches its answer does: remote must not zero it under the caller.
func TestPassphraseOncePerRun(t *testing.T) {
	const hosts, connsPerHost = 3, 2
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var khText bytes.Buffer
	ports := make([]int, hosts)
	for i := range hosts {
		s, err := startSSHD(0, env.hostKeys)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
		ports[i] = s.port
		for _, hk := range env.hostKeys {
			khText.WriteString(knownHostsLine(s.port, hk) + "\n")
		}
	}
	if err := os.WriteFile(kh, khText.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{env.encKey, env.encPEMKey} {
		t.Run(filepath.Base(key), func(t *testing.T) {
			var asked atomic.Int32
			answer := []byte(testPassphrase)
			opt := WithPassphrase(func(ctx context.Context, file string) ([]byte, error) {
				asked.Add(1)
				return answer, nil
			})
			var wg sync.WaitGroup
			errs := make(chan error, hosts*connsPerHost)
			for i := range hosts * connsPerHost {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h := testHost()
					h.Name = fmt.Sprintf("h%d", i)
					h.Port = ports[i%hosts]
					h.KnownHostsFile = kh
					h.KeyFiles = []string{key}
					c, err := Dial(testCtx(t), h, baseOpts(opt)...)
					if err != nil {
						errs <- fmt.Errorf("host %d: %w", i, err)
						return
					}
					defer c.Close()
					if _, err := c.Run(testCtx(t), "true"); err != nil {
						errs <- fmt.Errorf("host %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("passphrase asked %d times for %d connections, want once", n, hosts*connsPerHost)
			}
			if string(answer) != testPassphrase {
				t.Errorf("the caller's passphrase was overwritten: %q", answer)
			}
		})
	}
}
