package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/lab"
	"github.com/spf13/cobra"
)

const labLong = `Local, throw-away Debian 12 hosts for trying deploylab without a VM of your own,
and for its tests. Each host is a systemd-nspawn container booting systemd as
PID 1, with sshd, a "deploy" user with sudo, its own host keys and its own
network namespace (10.77.N.2, reachable only from this machine).

The first start builds a Debian 12 image with debootstrap (about 2 minutes)
and caches it in --cache-dir; later starts take seconds. Needs root and the
Debian packages systemd-container and debootstrap.

  deploylab lab start --hosts 3
  deploylab lab status
  deploylab lab ssh 1 -- systemctl is-system-running
  deploylab up -i "$(deploylab lab inventory)"
  deploylab lab stop`

func newLabCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Start, inspect and stop local Debian 12 test hosts",
		Long:  labLong,
		Args:  noArgs,
	}
	c.PersistentFlags().String("lab-dir", "/var/lib/deploylab/lab", "where the lab keeps its state, keys and inventory")
	c.PersistentFlags().String("cache-dir", "/var/cache/deploylab", "where built host images are cached")
	c.AddCommand(newLabStartCmd(r), newLabStatusCmd(r), newLabSSHCmd(r), newLabInventoryCmd(r), newLabStopCmd(r), newLabImageCmd(r))
	return c
}

func newLabStartCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "start",
		Short: "Start lab hosts (reuses running ones that match)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			l, err := lab.Start(c.Context(), lab.Options{Dir: cfg.LabDir, CacheDir: cfg.CacheDir, Hosts: cfg.Hosts, Variant: cfg.Variant, Log: r.stderr})
			if err != nil {
				return err
			}
			if err := printLabStatus(r, c, l); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "\ninventory: %s\n", l.InventoryPath())
			return nil
		},
	}
	c.Flags().Int("hosts", 1, "how many hosts to start (1-250)")
	c.Flags().String("variant", "base", "image: base (Debian 12 + sshd) or node (also Node.js, npm, express, pm2, loadtest)")
	return c
}

func newLabStatusCmd(r *rootCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each lab host: address, SSH reachable, systemd state",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := openLab(r, c)
			if err != nil {
				return err
			}
			return printLabStatus(r, c, l)
		},
	}
}

func printLabStatus(r *rootCmd, c *cobra.Command, l *lab.Lab) error {
	st, err := l.Status(c.Context())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(r.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tSSH\tSYSTEMD")
	down := 0
	for _, h := range st {
		ssh := "ok"
		if !h.Reachable {
			ssh, down = "unreachable", down+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Name, h.Address, ssh, h.System)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if down > 0 {
		return fail.Errorf(fail.Unreachable, "restart the lab: deploylab lab stop && deploylab lab start", "%d of %d lab hosts unreachable", down, len(st))
	}
	return nil
}

func newLabSSHCmd(r *rootCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "ssh N [-- command...]",
		Short: "Log in to lab host N, or run a command on it",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 {
				return fail.Errorf(fail.Usage, "usage: "+c.UseLine(), "lab ssh needs a host number")
			}
			if c.ArgsLenAtDash() > 1 {
				return fail.Errorf(fail.Usage, "put the command after --: deploylab lab ssh 1 -- uname -a", "lab ssh takes one host number before --")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return fail.Errorf(fail.Usage, "hosts are numbered from 1: see deploylab lab status", "lab ssh: %q is not a host number", args[0])
			}
			l, err := openLab(r, c)
			if err != nil {
				return err
			}
			code, err := l.SSH(c.Context(), n, args[1:], r.stdin, r.stdout, r.stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitStatus{code: code}
			}
			return nil
		},
	}
}

func newLabInventoryCmd(r *rootCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "inventory",
		Short: "Print the path of the running lab's inventory (for -i)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := openLab(r, c)
			if err != nil {
				return err
			}
			fmt.Fprintln(r.stdout, l.InventoryPath())
			return nil
		},
	}
}

func newLabStopCmd(r *rootCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop every lab host and remove every trace (processes, mounts, namespaces)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			return lab.StopDir(c.Context(), cfg.LabDir, r.stderr)
		},
	}
}

func newLabImageCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "image",
		Short: "Build the cached host image now (start builds it when missing)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			_, err = lab.EnsureImage(c.Context(), cfg.CacheDir, cfg.Variant, r.stderr)
			return err
		},
	}
	c.Flags().String("variant", "base", "image: base or node")
	return c
}

func openLab(r *rootCmd, c *cobra.Command) (*lab.Lab, error) {
	cfg, err := r.load(c)
	if err != nil {
		return nil, err
	}
	return lab.Open(cfg.LabDir)
}

// exitStatus carries a remote command's exit status out of `lab ssh`.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string {
	return fmt.Sprintf("remote command exited with status %d", e.code)
}
