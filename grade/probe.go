package grade

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/deploylab/deploylab/internal/safetext"
	"slices"
	"strings"

	"github.com/deploylab/deploylab/checks"
	obs "github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// prober runs scripts on one host, as root when it can (sudo without a
// password, or a configured sudo password), as the login user otherwise.
type prober struct {
	r    Runner
	host string
	// sudo is true once a script ran as root; noSudo once sudo refused.
	sudo, noSudo bool
}

// heredocMark starts the here-document delimiter of every script grade runs:
// the processes whose command line holds it are grade's own (the probe's
// shell, its sudo), not the student's, and are left out of the facts.
const heredocMark = "DEPLOYLAB_EOF_"

// heredoc returns a command that feeds script to `sh -s` on the host.
func heredoc(script []byte) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	mark := heredocMark + hex.EncodeToString(b[:])
	return "sh -s <<'" + mark + "'\n" + strings.TrimRight(string(script), "\n") + "\n" + mark + "\n"
}

// run runs script with sh -s, as root if possible.
func (p *prober) run(ctx context.Context, script []byte) (remote.Result, error) {
	cmd := heredoc(script)
	if !p.noSudo {
		res, err := p.r.RunSudo(ctx, cmd)
		var se *remote.SudoError
		if err == nil {
			p.sudo = true
			return res, nil
		}
		if !errors.As(err, &se) {
			return res, err
		}
		p.noSudo = true
	}
	return p.r.Run(ctx, cmd)
}

// probe observes the host once.
func (p *prober) probe(ctx context.Context, o obs.Options) (checks.HostFacts, error) {
	res, err := p.run(ctx, obs.Script(o))
	if err != nil {
		return checks.HostFacts{}, fmt.Errorf("probe: %w", err)
	}
	h, err := obs.Parse(res.Stdout)
	if err != nil {
		return checks.HostFacts{}, fmt.Errorf("probe: %w (exit status %d: %s)", err, res.ExitCode, firstLine(res.Stderr))
	}
	f := checks.FactsOf(h)
	f.Processes = slices.DeleteFunc(f.Processes, func(pr checks.Process) bool {
		return strings.Contains(pr.Cmdline, heredocMark)
	})
	if !p.sudo {
		f.Notes = append(f.Notes, "probe: ran without root (sudo refused): other users' processes and files may be hidden")
	}
	return f, nil
}

// firstLine is the first line of what the host printed, escaped.
func firstLine(b []byte) string { return safetext.Line(obs.FirstLine(b)) }
