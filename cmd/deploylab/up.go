package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/deploylab/deploylab/deploy"
	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/remote"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

const upLong = `Deploy the practice's servers to each host and leave them serving: the single
server on --port (3000) and the clustered server on --cluster-port (3001), each
under a hardened systemd unit (unprivileged, sandboxed, restarted on failure),
verified over HTTP from the host itself.

For each host, in parallel (--forks at a time), deploylab gathers its facts,
builds the servers for its architecture on this machine (the host needs only
sshd, systemd and a shell), uploads them to /opt/deploylab/releases/<hash>/,
switches /opt/deploylab/current to it, writes the units, starts the servers
(a new binary of the clustered server is reloaded with zero failed requests),
checks / and /api/50 and records systemd-analyze security's exposure score.

Every task reports ok, changed, skipped or failed; a second run changes
nothing. The PLAY RECAP counts them per host (ok counts changed tasks too, as
in Ansible). One host failing or unreachable never stops the others.

--app node deploys the practice's own stack instead: Node.js and npm (Debian's,
through apt, when missing), the Express app and its clustered version in
~/deploylab-node with package.json and package-lock.json, npm ci (offline from
npm's cache first: the host may have no internet), pm2 and loadtest (the
host's, else installed in ~/deploylab-node/.tools), an ecosystem.config.js
(single app in fork mode on --node-port 3100, PM2 cluster mode with
--instances on --node-cluster-port 3101), pm2 startup (pm2-<user>.service)
and pm2 save. The Node ports default to 3100/3101 so that both stacks run
side by side for deploylab bench --compare.

  deploylab up --host deploy@192.168.1.50
  deploylab up --host deploy@192.168.1.50 --app node
  deploylab up -i clase.yaml --limit 'tarde,!alu07'
  deploylab up -i clase.yaml --check        # what would change; changes nothing
  deploylab up -i clase.yaml --json > up.json`

func newUpCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "up (--host HOST | -i INVENTORY)",
		Short: "Deploy the single and clustered servers to the hosts, hardened and verified",
		Long:  upLong,
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			check, asJSON := cfg.Check, cfg.JSON
			app, err := upApp(c, cfg)
			if err != nil {
				return err
			}
			targets, err := targets(cfg, "deploylab up --host deploy@192.168.1.50")
			if err != nil {
				return err
			}
			names := fleet.Names(targets)
			var obs progress
			switch {
			case asJSON:
			case isTerminal(r.stdout):
				obs = newBarProgress(r.stdout, names, len(deploy.TaskNames(app))+1, cfg.Verbose)
			default:
				obs = newLineProgress(r.stdout, names)
			}
			o := deploy.UpOptions{App: app, Forks: cfg.Forks, Check: check,
				Dial: func(ctx context.Context, h remote.Host) (remote.Executor, error) { return r.dial(ctx, h) }}
			if obs != nil {
				o.Observer = obs
			}
			rc, err := deploy.Up(c.Context(), targets, o)
			if obs != nil {
				obs.wait()
			}
			if err != nil {
				return err
			}
			return finishRecap(r, cfg.JSON, rc)
		},
	}
	addHostFlags(c, 15*time.Minute)
	f := c.Flags()
	f.Bool("check", false, "report what would change, change nothing")
	f.Bool("json", false, "print the result as JSON (schema deploylab.up/v1) instead of lines and a recap")
	f.Int("port", deploy.DefaultPort, "port of the single server")
	f.Int("cluster-port", deploy.DefaultClusterPort, "port of the clustered server")
	f.Int("instances", 0, "workers of the clustered server: 0 = one per CPU, -1 = CPUs-1, N")
	addNodeAppFlags(c)
	f.String("supervisor", deploy.SupervisorSystemd, "what runs the servers: systemd (hardened units) or pm2 (an ecosystem file, fork mode; needs pm2 on the host)")
	return c
}

// progress is an Observer the command waits for before the recap.
type progress interface {
	deploy.Observer
	wait()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// lineProgress prints one line per finished task: for logs, CI and tests.
type lineProgress struct {
	mu    sync.Mutex
	w     io.Writer
	width int
}

func newLineProgress(w io.Writer, hosts []string) *lineProgress {
	return &lineProgress{w: w, width: deploy.HostWidth(hosts)}
}

func (p *lineProgress) HostStart(string)            {}
func (p *lineProgress) TaskStart(string, string)    {}
func (p *lineProgress) HostDone(*deploy.HostReport) {}
func (p *lineProgress) wait()                       {}

func (p *lineProgress) TaskDone(host string, r deploy.TaskResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, deploy.TaskLine(host, p.width, r))
}

// barProgress shows a live line per host on a terminal, and prints the
// tasks that changed or failed (every task with -v) above the bars.
type barProgress struct {
	p       *mpb.Progress
	bars    map[string]*mpb.Bar
	mu      sync.Mutex
	current map[string]string
	width   int
	total   int64
	verbose bool
}

func newBarProgress(w io.Writer, hosts []string, tasks int, verbose bool) *barProgress {
	bp := &barProgress{
		p:       mpb.New(mpb.WithOutput(w), mpb.WithWidth(24)),
		bars:    map[string]*mpb.Bar{},
		current: map[string]string{},
		width:   deploy.HostWidth(hosts),
		total:   int64(tasks),
		verbose: verbose,
	}
	for _, h := range hosts {
		bp.bars[h] = bp.p.AddBar(bp.total,
			mpb.PrependDecorators(
				decor.Name(h, decor.WC{W: bp.width + 1, C: decor.DindentRight}),
				decor.CountersNoUnit("%d/%d", decor.WC{W: 6}),
			),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				bp.mu.Lock()
				defer bp.mu.Unlock()
				return bp.current[h]
			})),
		)
	}
	return bp
}

func (bp *barProgress) set(host, s string) {
	bp.mu.Lock()
	bp.current[host] = s
	bp.mu.Unlock()
}

func (bp *barProgress) HostStart(host string) { bp.set(host, "connecting") }

func (bp *barProgress) TaskStart(host, task string) { bp.set(host, task+" ...") }

func (bp *barProgress) TaskDone(host string, r deploy.TaskResult) {
	if b := bp.bars[host]; b != nil {
		b.Increment()
	}
	if bp.verbose || r.Status == deploy.Changed || r.Status == deploy.Failed || r.Status == deploy.Unreachable {
		fmt.Fprintln(bp.p, deploy.TaskLine(host, bp.width, r))
	}
}

func (bp *barProgress) HostDone(h *deploy.HostReport) {
	s := fmt.Sprintf("ok=%d changed=%d", h.OK, h.Changed)
	switch {
	case h.Unreachable > 0:
		s = "unreachable"
	case h.Failed > 0:
		s = "failed"
	}
	bp.set(h.Host, s)
	if b := bp.bars[h.Host]; b != nil {
		if h.Err() != nil {
			b.Abort(false)
		} else {
			b.SetCurrent(bp.total) // completes the bar
		}
	}
}

func (bp *barProgress) wait() { bp.p.Wait() }
