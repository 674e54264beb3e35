// Command deploylab deploys the web-deployment practice's servers to Debian
// VMs over SSH, load-tests them and grades them into a spreadsheet. Each
// command is a thin layer over a library package; only this package maps
// errors to exit codes (see fail.ExitCodeTable).
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/deploylab/deploylab/internal/safetext"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/deploylab/deploylab/internal/fail"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one deploylab command line and returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first Ctrl-C, restore the default so a second one kills.
		<-ctx.Done()
		stop()
	}()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return fail.ExitOK
	}
	var es *exitStatus
	if errors.As(err, &es) {
		// `lab ssh N -- cmd` relays the remote command's status, like ssh.
		return es.code
	}
	if ctx.Err() != nil && fail.KindOf(err) == fail.Failed {
		err = fail.New(fail.Interrupted, "", err)
	}
	if !root.ran && fail.KindOf(err) == fail.Failed {
		// Cobra's own errors (unknown command or flag, wrong arguments)
		// happen before any command runs: they are usage errors.
		err = fail.New(fail.Usage, "see: deploylab --help", err)
	}
	printError(stderr, err)
	return fail.ExitCode(err)
}

func printError(w io.Writer, err error) {
	if fail.KindOf(err) == fail.Interrupted {
		fmt.Fprintf(w, "deploylab: interrupted: %s\n", safetext.Text(err.Error()))
	} else {
		fmt.Fprintf(w, "deploylab: error: %s\n", safetext.Text(err.Error()))
	}
	if hint := fail.HintOf(err); hint != "" {
		fmt.Fprintf(w, "hint: %s\n", safetext.Text(hint))
	}
}
