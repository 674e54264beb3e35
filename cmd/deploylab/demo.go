package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/deploy"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/lab"
)

// addNodeAppFlags adds up's --app, --node-port and --node-cluster-port.
func addNodeAppFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("app", "go", "what to deploy: go (deploylab's servers), node (the practice's Express app, single and clustered, under PM2) or node-sessions (the stateful cluster's Node model answer: memory, master and stateless on 3110-3112, under PM2)")
	f.Int("node-port", deploy.DefaultNodePort, "with --app node: port of the single Node app (fork mode)")
	f.Int("node-cluster-port", deploy.DefaultNodeClusterPort, "with --app node: port of the Node app in PM2's cluster mode")
}

// upApp is the app up deploys (--app), made with the settings; the Go
// servers' flags are refused with --app node.
func upApp(c *cobra.Command, cfg *config.Config) (deploy.App, error) {
	if cfg.App == "node" || cfg.App == "node-sessions" {
		for _, name := range []string{"supervisor", "port", "cluster-port"} {
			if fl := c.Flags().Lookup(name); fl != nil && fl.Changed {
				return nil, fail.Errorf(fail.Usage, "with --app node use --node-port and --node-cluster-port; the Node app always runs under PM2", "--%s is for --app go", name)
			}
		}
	}
	return deploy.NewApp(cfg.App, deploy.AppOptions{Port: cfg.Port, ClusterPort: cfg.ClusterPort, NodePort: cfg.NodePort, NodeClusterPort: cfg.NodeClusterPort,
		Instances: cfg.Instances, Supervisor: cfg.Supervisor})
}

// addCompareFlags adds bench's --compare and its options.
func addCompareFlags(c *cobra.Command) {
	f := c.Flags()
	f.Bool("compare", false, "measure the practice's Node app (single, PM2 cluster: deploylab up --app node) and deploylab's Go servers (single, cluster: deploylab up) on the same host with the same client, in one table")
	f.Bool("short", false, "run the short plan (fewer requests; deploylab demo's default) instead of the practice's")
	f.Int("node-port", deploy.DefaultNodePort, "with --compare: port of the single Node app")
	f.Int("node-cluster-port", deploy.DefaultNodeClusterPort, "with --compare: port of the Node app in PM2's cluster mode")
}

// compareStacks are the four servers at the configured ports.
func compareStacks(c *cobra.Command, cfg *config.Config) []bench.Stack {
	st := bench.DefaultStacks()
	np, ncp := cfg.NodePort, cfg.NodeClusterPort
	st[0].Port, st[1].Port, st[2].Port, st[3].Port = np, ncp, cfg.Port, cfg.ClusterPort
	return st
}

// runCompare is bench --compare.
func runCompare(r *rootCmd, c *cobra.Command, cfg *config.Config) error {
	f := c.Flags()
	for _, name := range []string{"url", "server", "requests", "concurrency", "keepalive"} {
		if f.Changed(name) {
			return fail.Errorf(fail.Usage, "use --plan FILE (or --short) to choose the scenarios of --compare", "--%s does not go with --compare", name)
		}
	}
	tool := cfg.Tool
	if tool != bench.ToolLoadgen && tool != bench.ToolLoadtest {
		return fail.Errorf(fail.Usage, "use --tool loadgen (default) or --tool loadtest", "unknown tool %q", tool)
	}
	plan := bench.DefaultPlan()
	if cfg.Short {
		plan = bench.ShortPlan()
	}
	if pf := cfg.Plan; pf != "" {
		var err error
		if plan, err = loadPlan(pf); err != nil {
			return err
		}
	} else if !cfg.Short {
		// The stateful cluster's scenario too (its clusters are the bench's own).
		plan.Scenarios = append(plan.Scenarios, bench.SessionsScenario())
	}
	store, err := openResults(c, cfg)
	if err != nil {
		return err
	}
	hosts, err := targets(cfg, "deploylab bench --compare --host deploy@192.168.1.50")
	if err != nil {
		return err
	}
	opts := r.benchOptions(cfg, plan, tool, store)
	var endLive func()
	if opts.Progress, endLive, err = r.startLive(c, cfg, opts.Progress); err != nil {
		return err
	}
	cmp, runErr := bench.Compare(c.Context(), bench.TargetsOf(hosts), compareStacks(c, cfg), opts)
	if cmp != nil && len(cmp.Records) > 0 {
		fmt.Fprintln(r.stdout)
		if err := bench.WriteComparison(r.stdout, cmp); err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "\n%d runs stored in %s\n", len(cmp.Records), store.Dir())
		if err := r.writeBenchReport(c.Context(), cfg, cmp.Records); err != nil {
			return err
		}
	}
	defer endLive()
	if errors.Is(runErr, bench.ErrNotDeployed) {
		return fail.New(fail.Failed, "deploy both stacks first: deploylab up and deploylab up --app node", runErr)
	}
	return runErr
}

const demoLong = `The whole practice in one command, for someone without a VM of their own:

  1. starts a local Debian 12 lab host with Node.js, npm, pm2 and loadtest
     (deploylab lab, node image; the first run builds it: a few minutes),
     or uses the host given with --host / -i;
  2. deploylab up: deploylab's Go servers (single :3000, cluster :3001, systemd);
  3. deploylab up --app node: the practice's Express app (single :3100, PM2
     cluster :3101, pm2-<user>.service);
  4. deploylab bench --compare: the four servers, same host, same client, one
     table (rps, p50/p99, errors, CPU per request, speedups) and the blocking
     experiment, also as an HTML report with charts (informe.html). The
     demo runs a SHORT plan (about a minute); --full runs the practice's
     plan (several minutes);
  5. deploylab grade --out notas.xlsx: the spreadsheet of the default rubric,
     and the class report clase.html;
  6. prints where everything is, and stops the lab host unless --keep.

Running it again reuses what is there: every step is idempotent.

  deploylab demo
  deploylab demo --keep            # then: deploylab lab ssh 1 --lab-dir /var/lib/deploylab/demo
  deploylab demo --host deploy@192.168.1.50 --full`

// DefaultDemoLabDir is the demo's own lab directory, apart from deploylab
// lab's, so that the demo never stops the user's lab hosts.
const DefaultDemoLabDir = "/var/lib/deploylab/demo"

func newDemoCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "demo [--host HOST | -i INVENTORY] [--full] [--keep]",
		Short: "Deploy both stacks to a lab host (or yours), compare them, grade them: the whole practice in one command",
		Long:  demoLong,
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			return runDemo(r, c, cfg)
		},
	}
	addHostFlags(c, 0)
	f := c.Flags()
	f.Bool("keep", false, "leave the lab host running at the end (it is stopped otherwise)")
	f.Bool("full", false, "bench with the practice's plan (several minutes) instead of the short one")
	f.StringP("out", "o", "notas.xlsx", "the spreadsheet grade writes")
	f.String("demo-lab-dir", DefaultDemoLabDir, "where the demo's lab host keeps its state, keys and inventory (--lab-dir is accepted too)")
	// The demo's lab directory is its own setting (demo-lab-dir), apart
	// from lab-dir, so that a lab-dir in deploylab.yaml never makes the
	// demo stop the user's lab hosts; --lab-dir still names it here.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "lab-dir" {
			name = "demo-lab-dir"
		}
		return pflag.NormalizedName(name)
	})
	f.String("cache-dir", "/var/cache/deploylab", "where built host images are cached")
	addResultsDirFlag(c)
	return c
}

// runDemo runs the demo's steps, each one a deploylab command line run in
// this process (same output as when typed).
func runDemo(r *rootCmd, c *cobra.Command, cfg *config.Config) (err error) {
	f := c.Flags()
	ctx := c.Context()
	keep, full, out := cfg.Keep, cfg.Full, cfg.Out
	resultsDir := config.ExpandHome(cfg.ResultsDir)
	// The demo's own lab directory (not the lab-dir setting of deploylab
	// lab): the demo stops its host, never the user's.
	labDir := cfg.DemoLabDir
	if abs, aerr := filepath.Abs(out); aerr == nil {
		out = abs
	}
	var hostArgs []string
	var l *lab.Lab
	if cfg.Host == "" && cfg.Inventory == "" {
		fmt.Fprintf(r.stdout, "== 1/5 lab host (Debian 12 + Node.js, npm, pm2, loadtest) in %s\n", labDir)
		l, err = lab.Start(ctx, lab.Options{Dir: labDir, CacheDir: cfg.CacheDir, Hosts: 1, Variant: lab.VariantNode, Log: r.stderr})
		if err != nil {
			return err
		}
		if !keep {
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
				defer cancel()
				if serr := lab.StopDir(sctx, labDir, r.stderr); serr != nil && err == nil {
					err = serr
				} else if serr == nil {
					fmt.Fprintf(r.stdout, "lab host stopped (deploylab demo --keep leaves it running)\n")
				}
			}()
		}
		hostArgs = []string{"-i", l.InventoryPath()}
	} else {
		fmt.Fprintf(r.stdout, "== 1/5 using the given host(s)\n")
		// The host flags as given, for every step.
		for _, name := range []string{"inventory", "host", "limit", "user", "key", "known-hosts", "accept-new", "password-env", "sudo-password-env", "forks", "timeout"} {
			if fl := f.Lookup(name); fl != nil && fl.Changed {
				hostArgs = append(hostArgs, "--"+name+"="+fl.Value.String())
			}
		}
	}
	if r.configPath != "" {
		hostArgs = append(hostArgs, "--config", r.configPath)
	}
	step := func(title string, args ...string) error {
		fmt.Fprintf(r.stdout, "\n== %s\n$ deploylab %s\n", title, strings.Join(args, " "))
		sub := newRootCmd(r.stdin, r.stdout, r.stderr)
		sub.SetArgs(append(args, hostArgs...))
		if err := sub.ExecuteContext(ctx); err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		return nil
	}
	if err := step("2/5 deploylab's Go servers", "up"); err != nil {
		return err
	}
	if err := step("3/5 the practice's Node app under PM2", "up", "--app", "node"); err != nil {
		return err
	}
	benchHTML := filepath.Join(filepath.Dir(out), "informe.html")
	classHTML := filepath.Join(filepath.Dir(out), "clase.html")
	benchArgs := []string{"bench", "--compare", "--results-dir", resultsDir, "--html", benchHTML}
	title := "4/5 the 4-way comparison, SHORT plan (--full for the practice's)"
	if !full {
		benchArgs = append(benchArgs, "--short")
	} else {
		title = "4/5 the 4-way comparison, the practice's plan"
	}
	if err := step(title, benchArgs...); err != nil {
		return err
	}
	if err := step("5/5 grade with the default rubric", "grade", "--out", out, "--results-dir", resultsDir, "--html", classHTML); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "\n== where everything is\n")
	fmt.Fprintf(r.stdout, "spreadsheet:    %s\n", out)
	fmt.Fprintf(r.stdout, "reports:        %s (bench), %s (class): open them in a browser\n", benchHTML, classHTML)
	fmt.Fprintf(r.stdout, "bench results:  %s (deploylab bench ls --results-dir %s)\n", resultsDir, resultsDir)
	if l != nil {
		h := l.Hosts()[0]
		fmt.Fprintf(r.stdout, "lab host:       %s at %s (user %s), inventory %s\n", h.Name, h.Address, h.User, l.InventoryPath())
		fmt.Fprintf(r.stdout, "servers:        Go http://%[1]s:3000 and :3001, Node http://%[1]s:3100 and PM2 cluster :3101\n", h.Address)
		if keep {
			fmt.Fprintf(r.stdout, "list them:      deploylab ls -i %[1]s   (the Node apps: add --app node)\n", l.InventoryPath())
			fmt.Fprintf(r.stdout, "log in:         deploylab lab ssh 1 --lab-dir %s   (then: pm2 ls)\n", labDir)
			fmt.Fprintf(r.stdout, "stop it:        deploylab lab stop --lab-dir %s\n", labDir)
		}
	}
	return nil
}
