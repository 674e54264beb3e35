package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func newVersionCmd(r *rootCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print deploylab's version",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(r.stdout, versionString())
			return err
		},
	}
}

func versionString() string {
	commit := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if len(s.Value) > 12 {
					commit = s.Value[:12]
				} else {
					commit = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" && commit != "" {
					commit += "+dirty"
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("deploylab %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
