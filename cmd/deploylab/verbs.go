package main

import (
	"context"
	"fmt"
	"time"

	"github.com/deploylab/deploylab/deploy"
	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/remote"
	"github.com/spf13/cobra"
)

// PM2's verbs for what up deployed: ls, logs, reload, restart, stop,
// start, down, monit.

// serviceArg accepts at most one argument: single, cluster or all.
func serviceArg(c *cobra.Command, args []string) error {
	if len(args) > 1 {
		return fail.Errorf(fail.Usage, "usage: "+c.UseLine(), "%s takes at most one service (single, cluster or all), got %d arguments", c.CommandPath(), len(args))
	}
	return nil
}

// verbSetup is what every verb starts with: the configuration, the
// deployment, the selected services and the targets.
type verbSetup struct {
	cfg *config.Config
	// app is what --app names: the Go servers or the Node app.
	app      deploy.App
	services []deploy.Service
	targets  []deploy.Target
	names    []string
	dial     deploy.DialFunc
}

func (r *rootCmd) verbSetup(c *cobra.Command, args []string) (*verbSetup, error) {
	cfg, err := r.load(c)
	if err != nil {
		return nil, err
	}
	app, err := deploy.NewApp(cfg.App, deploy.AppOptions{})
	if err != nil {
		return nil, err
	}
	arg := ""
	if len(args) == 1 {
		arg = args[0]
	}
	svcs, err := app.Deployment().SelectServices(arg)
	if err != nil {
		return nil, err
	}
	ts, err := targets(cfg, c.CommandPath()+" --host deploy@192.168.1.50")
	if err != nil {
		return nil, err
	}
	return &verbSetup{cfg: cfg, app: app, services: svcs, targets: ts, names: fleet.Names(ts),
		dial: func(ctx context.Context, h remote.Host) (remote.Executor, error) { return r.dial(ctx, h) }}, nil
}

// lsOptions are ls's (and monit's) options for this setup.
func (v *verbSetup) lsOptions() deploy.LsOptions {
	return deploy.LsOptions{App: v.app, Services: v.services, Forks: v.cfg.Forks, Dial: v.dial}
}

const verbsFoot = `
SERVICE is single (the single server), cluster (the clustered server) or all
(the default). With --app node the verb acts on the practice's Express app
that deploylab up --app node runs under the login user's PM2
(deploylab-node-single and deploylab-node-cluster), through pm2 jlist and
PM2's own verbs.`

func newLsCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:     "ls [SERVICE] (--host HOST | -i INVENTORY)",
		Aliases: []string{"ps", "status"},
		Short:   "List the deployed servers per host: status, pid, uptime, restarts, CPU, memory, requests",
		Long: `List what deploylab up deployed on each host, like pm2 ls: per service its
mode, status, main pid, uptime, restarts, CPU and memory, and under the
clustered server each worker with the requests it served. The figures come
from the supervisor (systemctl show, or pm2 jlist), /proc and the cluster
master's statistics socket, in one round trip per host.
` + verbsFoot + `

  deploylab ls --host deploy@192.168.1.50
  deploylab ls cluster -i clase.yaml --json`,
		Args: serviceArg,
		RunE: func(c *cobra.Command, args []string) error {
			v, err := r.verbSetup(c, args)
			if err != nil {
				return err
			}
			asJSON := v.cfg.JSON
			hosts, rc := deploy.Ls(c.Context(), v.targets, v.lsOptions())
			if asJSON {
				err = deploy.WriteLsJSON(r.stdout, hosts)
			} else {
				err = deploy.WriteLs(r.stdout, hosts)
			}
			if err != nil {
				return err
			}
			return rc.Err()
		},
	}
	addHostFlags(c, time.Minute)
	addAppFlag(c)
	c.Flags().Bool("json", false, "print JSON (schema deploylab.ls/v1) instead of tables")
	return c
}

func newMonitCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "monit [SERVICE] (--host HOST | -i INVENTORY)",
		Short: "Watch the servers' per-worker figures, refreshed every second, until Ctrl-C",
		Long: `Show ls's table and refresh it every --interval (1s) until Ctrl-C, like pm2
monit. On a terminal the screen is redrawn; otherwise (or with --count N)
plain snapshots are printed one after another, N of them.
` + verbsFoot,
		Args: serviceArg,
		RunE: func(c *cobra.Command, args []string) error {
			v, err := r.verbSetup(c, args)
			if err != nil {
				return err
			}
			tty := isTerminal(r.stdout)
			o := deploy.MonitOptions{LsOptions: v.lsOptions(), Count: v.cfg.Count, Interval: v.cfg.Interval}
			return deploy.Monit(c.Context(), v.targets, o, func(i int, hosts []deploy.HostStatus) error {
				if tty {
					fmt.Fprint(r.stdout, "\033[H\033[2J")
				} else if i > 0 {
					fmt.Fprintln(r.stdout)
				}
				fmt.Fprintf(r.stdout, "deploylab monit  %s  (Ctrl-C to quit)\n\n", time.Now().Format("15:04:05"))
				return deploy.WriteLs(r.stdout, hosts)
			})
		},
	}
	addHostFlags(c, time.Minute)
	addAppFlag(c)
	c.Flags().Int("count", 0, "print this many snapshots and exit (0: until Ctrl-C)")
	c.Flags().Duration("interval", time.Second, "time between refreshes")
	return c
}

func newLogsCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "logs [SERVICE] (--host HOST | -i INVENTORY)",
		Short: "Print the servers' logs (journalctl, or PM2's log files); -f follows them",
		Long: `Print the last --lines lines of the servers' logs on each host: the units'
journal under systemd, the apps' log files under PM2. With -f, keep printing
new lines until Ctrl-C. With several hosts each line starts with the host.
` + verbsFoot,
		Args: serviceArg,
		RunE: func(c *cobra.Command, args []string) error {
			v, err := r.verbSetup(c, args)
			if err != nil {
				return err
			}
			follow, lines := v.cfg.Follow, v.cfg.Lines
			if lines < 1 {
				return fail.Errorf(fail.Usage, "give --lines 1 or more", "--lines %d is not a line count", lines)
			}
			return deploy.Logs(c.Context(), v.targets, r.stdout, deploy.LogsOptions{App: v.app, Services: v.services,
				Lines: lines, Follow: follow, Dial: v.dial, Prefix: len(v.targets) > 1})
		},
	}
	addHostFlags(c, 0)
	addAppFlag(c)
	c.Flags().BoolP("follow", "f", false, "keep printing new lines until Ctrl-C")
	c.Flags().IntP("lines", "n", 50, "how many past lines to print per host")
	return c
}

func newControlCmd(r *rootCmd, verb deploy.Verb, short, long string) *cobra.Command {
	c := &cobra.Command{
		Use:   string(verb) + " [SERVICE] (--host HOST | -i INVENTORY)",
		Short: short,
		Long:  long + "\n" + verbsFoot,
		Args:  serviceArg,
		RunE: func(c *cobra.Command, args []string) error {
			v, err := r.verbSetup(c, args)
			if err != nil {
				return err
			}
			o := deploy.ControlOptions{App: v.app, Services: v.services, Forks: v.cfg.Forks, Dial: v.dial}
			if !v.cfg.JSON {
				o.Observer = newLineProgress(r.stdout, v.names)
			}
			rc, err := deploy.Control(c.Context(), v.targets, verb, o)
			if err != nil {
				return err
			}
			return finishRecap(r, v.cfg.JSON, rc)
		},
	}
	addHostFlags(c, 5*time.Minute)
	addAppFlag(c)
	c.Flags().Bool("json", false, "print the result as JSON instead of a recap")
	return c
}

// finishRecap prints the recap (or JSON) and returns the run's error.
func finishRecap(r *rootCmd, asJSON bool, rc *deploy.Recap) error {
	if asJSON {
		if err := deploy.WriteJSON(r.stdout, rc); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(r.stdout)
		if err := deploy.WriteRecap(r.stdout, rc); err != nil {
			return err
		}
	}
	return rc.Err()
}

func newDownCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "down (--host HOST | -i INVENTORY)",
		Short: "Remove what up deployed: services, units, files and users; the host is left as found",
		Long: `Undo deploylab up on each host: stop and remove the servers (their systemd
units, or their PM2 apps, the pm2 startup unit and the PM2 user up created),
remove /opt/deploylab, reload systemd, and check that no unit, file, user or
process of deploylab is left. A second run changes nothing.

With --app node it undoes deploylab up --app node instead: the two apps leave
PM2 (pm2 delete, pm2 save), and when no other PM2 app is left, what up added
goes too (pm2-<user>.service, ~/.pm2, npm -g packages, Debian's nodejs and
npm, ~/.npm: only what up recorded it installed), then ~/deploylab-node.

  deploylab down --host deploy@192.168.1.50
  deploylab down --host deploy@192.168.1.50 --app node
  deploylab down -i clase.yaml --check      # what would be removed`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			v, err := r.verbSetup(c, nil)
			if err != nil {
				return err
			}
			check, asJSON := v.cfg.Check, v.cfg.JSON
			o := deploy.DownOptions{App: v.app, Forks: v.cfg.Forks, Check: check, Dial: v.dial}
			if !asJSON {
				o.Observer = newLineProgress(r.stdout, v.names)
			}
			rc, err := deploy.Down(c.Context(), v.targets, o)
			if err != nil {
				return err
			}
			return finishRecap(r, v.cfg.JSON, rc)
		},
	}
	addHostFlags(c, 10*time.Minute)
	addAppFlag(c)
	c.Flags().Bool("check", false, "report what would be removed, remove nothing")
	c.Flags().Bool("json", false, "print the result as JSON instead of lines and a recap")
	return c
}

// addAppFlag adds --app: which deployment a verb acts on.
func addAppFlag(c *cobra.Command) {
	c.Flags().String("app", "go", "which deployment: go (deploylab's servers), node (the practice's Express app under PM2: up --app node) or node-sessions (up --app node-sessions)")
}

// newVerbCmds are ls, logs, reload, restart, stop, start, down and monit.
func newVerbCmds(r *rootCmd) []*cobra.Command {
	return []*cobra.Command{
		newLsCmd(r),
		newLogsCmd(r),
		newControlCmd(r, deploy.VerbReload, "Reload the servers: zero downtime for the cluster, a restart for the single server",
			`Reload the servers on each host. The clustered server replaces its workers one
at a time with the binary now deployed, without failing a request (systemctl
reload, or SIGHUP through pm2 under PM2); the single server cannot reload, so
it is restarted, and the task says so.`),
		newControlCmd(r, deploy.VerbRestart, "Restart the servers", "Restart the servers on each host (systemctl restart, or pm2 restart)."),
		newControlCmd(r, deploy.VerbStop, "Stop the servers (they stay installed and start again at boot)", "Stop the servers on each host (systemctl stop, or pm2 stop)."),
		newControlCmd(r, deploy.VerbStart, "Start the servers", "Start the servers on each host (systemctl start, or pm2 start)."),
		newDownCmd(r),
		newMonitCmd(r),
	}
}
