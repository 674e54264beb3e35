package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/deploylab/deploylab/internal/safetext"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/remote"
)

const benchLong = `Load-test the single and the clustered server on each host, as the practice
does: the load generator runs on the host itself against localhost, so the
figures are the VM's, not the network's.

The default plan is the practice's: for each server (single on --port 3000,
cluster on --cluster-port 3001), /api/500000 -n 1000 -c 100, /api/500000
-n 10000 -c 100, / -n 10000 -c 100, and the blocking experiment (a request
to /api/5000000000 and, while it computes, four GET / whose waits are
measured). --plan runs your own plan (YAML; --print-plan shows the default
one to start from); --url with -n and -c runs one scenario.

--plan sessions measures the cluster-mode lesson's stateful server: for each
sessions mode (memory: tokens per worker; master: shared through the master;
stateless: signed tokens) the bench starts a sumcluster of its own on the
host (127.0.0.1:3290, 2 workers, as the login user), 200 users log in and
make 4 GET /me each over fresh connections while a worker is killed (kill -9)
and one recycled, then GET /me is measured with 10 logins/s of churn. The
table gives per mode the sessions lost, the time for a new token and a
logout to reach every worker (p50/p99), the GET /me rps, and one sentence
on why. --compare (without --short) runs it too.

Hosts run in parallel (--forks at a time), the scenarios of a host one after
the other, each server after a discarded warm-up. The load generator is
deploylab's loadgen (uploaded to ~/.cache/deploylab/bin on the host, skipped
when unchanged), or npm's loadtest with --tool loadtest. Around each run the
client's and the servers' CPU time and the cluster's requests per worker are
sampled on the host.

Every run is stored as one JSON file (schema deploylab.bench/v1) under
--results-dir, with the server's stack (go for deploylab up's servers, node
for up --app node's with --compare); deploylab grade reads the latest per
server and route, the go stack's when both were measured. The table compares single
and cluster (rps, latency percentiles, errors, speedup, CPU, balance of the
workers) and, where the single server wins, says why from the figures.
Ctrl-C stops; the runs already finished are kept and shown.

  deploylab bench --host deploy@192.168.1.50
  deploylab bench -i clase.yaml --limit alu0* --forks 5
  deploylab bench --host vm --url /api/500000 -n 5000 -c 50 --server cluster
  deploylab bench --host vm --tool loadtest
  deploylab bench --host vm --compare          # Node single/PM2 cluster vs Go single/cluster
  deploylab bench --host vm --plan sessions    # sessions kept per worker, shared, or stateless
  deploylab bench --host vm --stack node --port 3100 --cluster-port 3101
  deploylab bench ls --host alu01
  deploylab bench show 20261122-103000
  deploylab bench --host vm --html informe.html --charts graficas/
  deploylab bench --host vm --compare --live   # the report at http://127.0.0.1:8080/ as runs finish`

func newBenchCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench (--host HOST | -i INVENTORY) [--plan FILE | --url ROUTE -n N -c C]",
		Short: "Load-test the single and clustered servers on the hosts and compare them",
		Long:  benchLong,
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			if cfg.PrintPlan {
				_, err := r.stdout.Write(bench.DefaultPlanYAML())
				return err
			}
			if cfg.Compare {
				return runCompare(r, c, cfg)
			}
			return runBench(r, c, cfg)
		},
	}
	addHostFlags(c, time.Hour)
	f := c.Flags()
	f.String("plan", "", "run the scenarios of this plan file (YAML) instead of the practice's; --plan sessions: the stateful cluster's scenario")
	f.Bool("print-plan", false, "print the default plan (to start a plan of your own) and exit")
	f.String("url", "", "run one scenario: a route (/api/500000) on each server, or a full URL requested from the host")
	f.IntP("requests", "n", 0, "with --url: number of requests")
	f.IntP("concurrency", "c", 0, "with --url: concurrent clients")
	f.BoolP("keepalive", "k", false, "with --url: reuse connections")
	f.StringSlice("server", nil, "only these servers of the plan: single, cluster")
	f.String("tool", bench.ToolLoadgen, "load generator on the host: loadgen (deploylab's) or loadtest (npm's, when installed)")
	f.String("stack", "", "(default go) what the plan's servers are, stored with the results: go (deploylab up's) or node (up --app node's; --port 3100 --cluster-port 3101)")
	f.Int("port", 3000, "port of the single server (default plan)")
	f.Int("cluster-port", 3001, "port of the clustered server (default plan)")
	addResultsDirFlag(c)
	addCompareFlags(c)
	addBenchReportFlags(c, true)
	c.AddCommand(newBenchLsCmd(r), newBenchShowCmd(r))
	return c
}

func addResultsDirFlag(c *cobra.Command) {
	c.Flags().String("results-dir", config.Defaults["results-dir"].(string), "where the results are stored, one JSON file per run")
}

// benchPlan builds the plan from --plan, --url/-n/-c/-k and --server.
func benchPlan(cfg *config.Config) (*bench.Plan, error) {
	planFile, route, n, conc, keep, servers := cfg.Plan, cfg.URL, cfg.Requests, cfg.Concurrency, cfg.Keepalive, cfg.Server
	var p *bench.Plan
	var err error
	if planFile != "" {
		if p, err = loadPlan(planFile); err != nil {
			return nil, err
		}
	} else {
		p = bench.DefaultPlan()
		for i := range p.Servers {
			switch p.Servers[i].Name {
			case bench.ModeSingle:
				p.Servers[i].Port = cfg.Port
			case bench.ModeCluster:
				p.Servers[i].Port = cfg.ClusterPort
			}
		}
	}
	if route != "" {
		if p, err = bench.OneOff(p, route, n, conc, keep); err != nil {
			return nil, err
		}
	} else if n != 0 || conc != 0 || keep {
		return nil, fail.Errorf(fail.Usage, "e.g. deploylab bench --host vm --url /api/500000 -n 5000 -c 50", "-n, -c and -k go with --url")
	}
	if stack := cfg.Stack; stack != "" {
		if stack != bench.LangGo && stack != bench.LangNode {
			return nil, fail.Errorf(fail.Usage, "use --stack go (deploylab up's servers) or --stack node (up --app node's)", "unknown stack %q", stack)
		}
		for i := range p.Servers {
			p.Servers[i].Stack = stack
		}
	}
	var names []string
	for _, s := range servers {
		if s != "both" && s != "all" {
			names = append(names, s)
		}
	}
	return p.WithServers(names)
}

// loadPlan reads a plan file, or names a built-in plan: sessions (when no
// file of that name exists).
func loadPlan(name string) (*bench.Plan, error) {
	if name == bench.SessionsPlanName {
		if _, err := os.Stat(name); err != nil {
			return bench.SessionsPlan(), nil
		}
	}
	return bench.LoadPlan(name)
}

func runBench(r *rootCmd, c *cobra.Command, cfg *config.Config) error {
	tool := cfg.Tool
	if tool != bench.ToolLoadgen && tool != bench.ToolLoadtest {
		return fail.Errorf(fail.Usage, "use --tool loadgen (default) or --tool loadtest", "unknown tool %q", tool)
	}
	plan, err := benchPlan(cfg)
	if err != nil {
		return err
	}
	store, err := openResults(c, cfg)
	if err != nil {
		return err
	}
	hosts, err := targets(cfg, "deploylab bench --host deploy@192.168.1.50")
	if err != nil {
		return err
	}
	opts := r.benchOptions(cfg, plan, tool, store)
	var endLive func()
	if opts.Progress, endLive, err = r.startLive(c, cfg, opts.Progress); err != nil {
		return err
	}
	out, runErr := bench.Run(c.Context(), bench.TargetsOf(hosts), opts)
	if out == nil {
		return runErr
	}
	if recs := out.Records(); len(recs) > 0 {
		fmt.Fprintln(r.stdout)
		if err := bench.WriteTable(r.stdout, recs); err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "\n%d runs stored in %s (deploylab bench show %s)\n", len(recs), store.Dir(), out.Batch)
		if err := r.writeBenchReport(c.Context(), cfg, recs); err != nil {
			return err
		}
	}
	defer endLive()
	if len(out.Hosts) > 1 {
		// One line per failed host; the exit error counts them.
		for _, h := range out.Hosts {
			if h.Err == nil {
				continue
			}
			fmt.Fprintf(r.stderr, "%s\n", safetext.Line(h.Err.Error())) // already "host: ..."
			if hint := fail.HintOf(h.Err); hint != "" {
				fmt.Fprintf(r.stderr, "%s: hint: %s\n", h.Target.Name, hint)
			}
		}
	}
	return runErr
}

func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func openResults(c *cobra.Command, cfg *config.Config) (*bench.Store, error) {
	s, err := bench.OpenStore(config.ExpandHome(cfg.ResultsDir))
	if s != nil {
		s.Warn = c.ErrOrStderr()
	}
	return s, err
}

func newBenchLsCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "ls [--host NAME]",
		Short: "List the stored bench results",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			store, err := openResults(c, cfg)
			if err != nil {
				return err
			}
			runs, err := store.List(cfg.Host)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				fmt.Fprintf(r.stderr, "no results in %s\n", store.Dir())
				return nil
			}
			return bench.WriteList(r.stdout, runs)
		},
	}
	c.Flags().String("host", "", "only this host's results (its inventory name)")
	addResultsDirFlag(c)
	return c
}

func newBenchShowCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Show a stored run, or a whole bench (its batch ID) as the comparison table",
		Args:  exactArgs(1, "one result or batch ID (see deploylab bench ls)"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			store, err := openResults(c, cfg)
			if err != nil {
				return err
			}
			asJSON := cfg.JSON
			runs, err := store.Batch(args[0])
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				run, err := store.Load(args[0])
				if err != nil {
					return err
				}
				runs = []*bench.Record{run}
			}
			if asJSON {
				enc := json.NewEncoder(r.stdout)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if len(runs) == 1 {
					return enc.Encode(runs[0])
				}
				return enc.Encode(runs)
			}
			if err := bench.WriteTable(r.stdout, runs); err != nil {
				return err
			}
			if err := r.writeBenchReport(c.Context(), cfg, runs); err != nil {
				return err
			}
			if len(runs) == 1 {
				x := runs[0]
				stack := ""
				if st := x.Server.StackName(); st != "" {
					stack = ", stack " + st
				}
				fmt.Fprintf(r.stdout, "\nid %s, at %s%s, url %s\n", x.ID, x.At.Local().Format("2006-01-02 15:04:05"), stack, x.Server.URL)
				for _, n := range append(x.Notes, x.Result.Notes...) {
					fmt.Fprintf(r.stdout, "note: %s\n", safetext.Line(n))
				}
			}
			return nil
		},
	}
	c.Flags().Bool("json", false, "print the stored JSON document(s)")
	addResultsDirFlag(c)
	addBenchReportFlags(c, false)
	return c
}

// benchOptions are the options of a bench run from the command line (plain
// or --compare): this run's dialer, the loadgen built for each host's
// architecture, and progress on stderr.
func (r *rootCmd) benchOptions(cfg *config.Config, plan *bench.Plan, tool string, store *bench.Store) bench.Options {
	return bench.Options{
		Plan: plan, Tool: tool, Store: store, Forks: cfg.Forks,
		Dial: func(ctx context.Context, t bench.Target) (remote.Executor, error) {
			return r.dial(ctx, t.Remote)
		},
		Loadgen: func(ctx context.Context, goarch string) ([]byte, error) {
			return payload.Program(ctx, goarch, payload.Loadgen)
		},
		Sumcluster: func(ctx context.Context, goarch string) ([]byte, error) {
			return payload.Program(ctx, goarch, payload.Sumcluster)
		},
		Progress: bench.NewProgress(r.stderr, writerIsTerminal(r.stderr)),
	}
}
