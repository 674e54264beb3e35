package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/remote"
	"github.com/spf13/cobra"
)

// rootCmd is the command tree plus what main needs to know after it ran.
type rootCmd struct {
	*cobra.Command
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// ran is set once a command's own code starts (after cobra parsed the
	// command line), so main can tell usage errors from run failures.
	ran        bool
	configPath string

	// dialOnce makes dialOpts, shared by every host of the run.
	dialOnce sync.Once
	dialOpts []remote.Option
}

const rootLong = `deploylab automates the web-deployment practice "deploy a Node/Express app on a
Debian VM, with and without clustering, load-test both, run it under a process
manager, and grade it", for one student's VM or a whole class.

Settings come from flags, then DEPLOYLAB_* environment variables (DEPLOYLAB_FORKS,
DEPLOYLAB_LAB_DIR, ...), then deploylab.yaml (in the working directory or
~/.config/deploylab/), then built-in defaults. A setting has the same name
everywhere: --accept-new, DEPLOYLAB_ACCEPT_NEW, accept-new: true. Every flag of
every command is such a setting (--node-port: DEPLOYLAB_NODE_PORT, node-port).
Durations take units (30s, 2m) or a bare number of seconds. --timeout bounds
each host's whole work (its default depends on the command), --connect-timeout
the connection alone.`

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *rootCmd {
	r := &rootCmd{stdin: stdin, stdout: stdout, stderr: stderr}
	r.Command = &cobra.Command{
		Use:           "deploylab",
		Short:         "Deploy, load-test and grade the Node/Express deployment practice",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			r.ran = true
		},
	}
	r.SetIn(stdin)
	r.SetOut(stdout)
	r.SetErr(stderr)
	r.PersistentFlags().StringVar(&r.configPath, "config", "", "read settings from this file instead of ./"+config.FileName)
	r.PersistentFlags().BoolP("verbose", "v", false, "print more detail")
	r.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fail.New(fail.Usage, "see: "+c.CommandPath()+" --help", err)
	})
	// Every command's help ends with the exit-code table.
	r.SetUsageTemplate(r.UsageTemplate() + "\n" + fail.ExitCodeTable + "\n")
	r.AddCommand(newVersionCmd(r), newLabCmd(r), newUpCmd(r), newBenchCmd(r), newGradeCmd(r), newDemoCmd(r))
	r.AddCommand(newVerbCmds(r)...)
	return r
}

// load reads the configuration for c (its flags and the persistent ones).
// Its warnings go to stderr, and the run's --forks and --timeout become the
// defaults of every host loop under c's context (fleet.WithDefaults).
func (r *rootCmd) load(c *cobra.Command) (*config.Config, error) {
	cfg, err := config.Load(c.Flags(), r.configPath)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(r.stderr, "deploylab: warning: %s\n", w)
	}
	c.SetContext(fleet.WithDefaults(c.Context(), fleet.Options{Forks: cfg.Forks, Timeout: cfg.Timeout}))
	return cfg, nil
}

// exactArgs is cobra.ExactArgs with a usage-classified error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return fail.Errorf(fail.Usage, "usage: "+c.UseLine(), "%s takes %s, got %d argument(s)", c.CommandPath(), what, len(args))
		}
		return nil
	}
}

// noArgs refuses positional arguments with a usage-classified error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fail.Errorf(fail.Usage, "usage: "+c.UseLine(), "%s takes no arguments, got %q", c.CommandPath(), args[0])
	}
	return nil
}
