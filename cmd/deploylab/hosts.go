package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/remote"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addHostFlags adds the flags that say which hosts to work on and how to
// reach them, shared by every command that works on hosts. Their values
// reach the command through config.Load (flag > DEPLOYLAB_* > file).
// Settings in the inventory win over --user, --key, --known-hosts and
// --password-env, which fill in what the inventory leaves out (as Ansible's
// -u does).
//
// timeout is the command's default time limit for one host's whole work
// (0: none); --connect-timeout bounds the connection alone.
func addHostFlags(c *cobra.Command, timeout time.Duration) {
	f := c.Flags()
	f.StringP("inventory", "i", "", "inventory file (YAML or Ansible INI) listing the hosts")
	f.String("host", "", "one host, [user@]address[:port], instead of an inventory")
	f.String("limit", "", "only these hosts or groups (Ansible-style patterns: alu0*,!alu05)")
	f.String("user", "", "SSH user when the inventory gives none (default: your user name)")
	f.String("key", "", "SSH private key file when the inventory gives none (default: the agent and ~/.ssh/id_*)")
	f.String("known-hosts", "~/.ssh/known_hosts", "known_hosts file when the inventory gives none")
	f.Bool("accept-new", false, "trust (and record) the key of a host seen for the first time; a changed key is always refused")
	f.String("password-env", "", "name of an environment variable holding the SSH password (never the password itself)")
	f.String("sudo-password-env", "", "name of an environment variable holding the sudo password, for users whose sudo asks for one (on a terminal it is asked instead)")
	f.Int("forks", 10, "how many hosts to work on at once")
	f.Duration("timeout", timeout, "time limit for one host's whole work (a bare number is seconds; 0: none)")
	f.Duration("connect-timeout", 30*time.Second, "time limit for connecting to a host (TCP and SSH handshake)")
}

// targets are the configured hosts (inventory or --host, and --limit) and
// how to reach each. example is a command line shown when no host was given.
func targets(cfg *config.Config, example string) ([]fleet.Target, error) {
	return fleet.Select(fleet.SelectionOf(cfg, example))
}

// dialOptions are the remote options of this run. When stdin is a
// terminal, encrypted keys' passphrases, login passwords (for hosts whose
// key is refused and that have no --password-env) and sudo passwords (when
// sudo wants one and --sudo-password-env gives none) are asked for there: one
// prompt at a time however many hosts run at once, and a key's passphrase
// once per run. Elsewhere (scripts, CI) nothing is asked: encrypted keys are
// skipped and password logins need --password-env.
func (r *rootCmd) dialOptions() []remote.Option {
	r.dialOnce.Do(func() { r.dialOpts = r.newDialOptions() })
	return r.dialOpts
}

func (r *rootCmd) newDialOptions() []remote.Option {
	// A password from the configuration sent to a second host is warned
	// about (once): any of those hosts can read it.
	warn := remote.WithSecretWarnings(func(msg string) { fmt.Fprintln(r.stderr, "warning: "+msg) })
	f, ok := r.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return []remote.Option{warn}
	}
	return append([]remote.Option{warn}, remote.TerminalPrompts()...)
}

// dial connects to h with this run's dialOptions.
func (r *rootCmd) dial(ctx context.Context, h remote.Host) (*remote.Client, error) {
	return remote.Dial(ctx, h, r.dialOptions()...)
}
