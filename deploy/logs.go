package deploy

import (
	"context"
	"fmt"
	"github.com/deploylab/deploylab/internal/safetext"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/remote"
)

// LogsOptions configure Logs.
type LogsOptions struct {
	Deployment Deployment
	Services   []Service
	// Lines is how many past lines to print per host (journalctl -n); 0
	// means 50.
	Lines int
	// Follow keeps printing new lines until ctx is done.
	Follow bool
	// Poll is how often Follow asks for new lines; 0 means 1s.
	Poll time.Duration
	Dial DialFunc
	// Prefix puts "host | " before each line (for several hosts).
	Prefix bool
	// Node, when set, prints the practice's Node apps' PM2 log files (up
	// --app node); Services are then the Node deployment's.
	Node *NodeDeployment
}

// Logs prints the services' last lines of each target to w: the journal
// (journalctl -u for the units) under systemd, the apps' log files under PM2.
// With Follow it then polls every host for lines after the last one seen
// (journalctl --after-cursor, or the files' new bytes), until ctx is
// cancelled, which is not an error.
func Logs(ctx context.Context, targets []Target, w io.Writer, o LogsOptions) error {
	d := o.Deployment
	if o.Node != nil {
		d = o.Node.Deployment()
	}
	if d.Root == "" {
		d, _ = NewDeployment(DeploymentOptions{})
	}
	if len(targets) == 0 {
		return fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts")
	}
	svcs := o.Services
	if svcs == nil {
		svcs = d.Services
	}
	if o.Lines <= 0 {
		o.Lines = 50
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	dial := o.Dial
	if dial == nil {
		dial = func(ctx context.Context, h remote.Host) (remote.Executor, error) { return remote.Dial(ctx, h) }
	}
	var mu sync.Mutex
	emit := func(host, text string) {
		mu.Lock()
		defer mu.Unlock()
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if line == "" {
				continue
			}
			// The host's log lines: escaped (no terminal sequences).
			if o.Prefix {
				fmt.Fprintf(w, "%s | %s\n", host, safetext.Line(line))
			} else {
				fmt.Fprintln(w, safetext.Line(line))
			}
		}
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = logsHost(ctx, t, d, svcs, o, dial, emit)
		}()
	}
	wg.Wait()
	if o.Follow && ctx.Err() != nil {
		return nil
	}
	var bad []error
	for i, err := range errs {
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", targets[i].Name, err))
		}
	}
	if len(bad) == 1 {
		return bad[0]
	}
	if len(bad) > 1 {
		return fail.New(fail.KindOf(bad[0]), fail.HintOf(bad[0]), fmt.Errorf("%d of %d hosts: %w", len(bad), len(targets), bad[0]))
	}
	return nil
}

func logsHost(ctx context.Context, t Target, d Deployment, svcs []Service, o LogsOptions, dial DialFunc, emit func(host, text string)) error {
	ex, err := dial(ctx, t.Host)
	if err != nil {
		return err
	}
	defer ex.Close()
	h := &HostRun{Name: t.Name, Exec: ex}
	if o.Node != nil {
		return nodeLogs(ctx, h, *o.Node, svcs, o, emit)
	}
	out, err := sh(ctx, h, "read supervisor", supervisorScript(d))
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == SupervisorPM2 {
		return pm2Logs(ctx, h, d, svcs, o, emit)
	}
	var units []string
	for _, s := range svcs {
		units = append(units, "-u "+q(s.Unit()))
	}
	base := "journalctl --no-pager -o short-iso --show-cursor " + strings.Join(units, " ")
	out, err = sh(ctx, h, "journalctl", fmt.Sprintf("%s -n %d", base, o.Lines))
	if err != nil {
		return err
	}
	cursor := emitJournal(t.Name, out, emit)
	for o.Follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Poll):
		}
		cmd := base + " -n 1000"
		if cursor != "" {
			cmd = base + " --after-cursor " + q(cursor)
		}
		out, err := sh(ctx, h, "journalctl", cmd)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if c := emitJournal(t.Name, out, emit); c != "" {
			cursor = c
		}
	}
	return nil
}

// emitJournal emits journalctl's lines and returns its cursor.
func emitJournal(host, out string, emit func(host, text string)) string {
	var keep []string
	cursor := ""
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(line, "-- cursor: "); ok {
			cursor = strings.TrimSpace(c)
			continue
		}
		if line == "-- No entries --" {
			continue
		}
		keep = append(keep, line)
	}
	emit(host, strings.Join(keep, "\n"))
	return cursor
}

// pm2Logs prints the PM2 apps' log files (PM2's own logs command streams
// forever and colours its output: the files are read instead).
func pm2Logs(ctx context.Context, h *HostRun, d Deployment, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	var files []string
	for _, s := range svcs {
		for _, kind := range []string{"out", "error"} {
			files = append(files, fmt.Sprintf("%s/.pm2/logs/%s-%s.log", d.PM2Home(), pm2Name(s), kind))
		}
	}
	return tailFiles(ctx, h, sh, files, o, emit)
}

// nodeLogs prints the Node apps' PM2 log files, read as the login user.
func nodeLogs(ctx context.Context, h *HostRun, n NodeDeployment, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	st, err := readNodeState(ctx, h, n)
	if err != nil {
		return err
	}
	files := nodeLogFiles(st, svcs)
	if len(files) == 0 {
		return fail.Errorf(fail.Failed, "deploy it first: deploylab up --app node", "no PM2 log file of the Node apps for user %s (in %s/logs)", st.User, st.PM2Home)
	}
	return tailFiles(ctx, h, userSh, files, o, emit)
}

// tailFiles prints the last o.Lines lines of each file (read with run),
// each line after the file's name ("deploylab-node-cluster-out-1 | ..."),
// then with o.Follow the bytes added to them, until ctx is cancelled.
func tailFiles(ctx context.Context, h *HostRun, run func(ctx context.Context, h *HostRun, what, script string) (string, error),
	files []string, o LogsOptions, emit func(host, text string)) error {
	sizes := map[string]int64{}
	read := func(first bool) error {
		var b strings.Builder
		for _, f := range files {
			fmt.Fprintf(&b, "echo \"@@file %s $(stat -c %%s %s 2>/dev/null || echo 0)\"\n", f, q(f))
		}
		out, err := run(ctx, h, "read logs", b.String())
		if err != nil {
			return err
		}
		var cmd strings.Builder
		for _, line := range strings.Split(out, "\n") {
			var f string
			var n int64
			if _, err := fmt.Sscanf(line, "@@file %s %d", &f, &n); err != nil {
				continue
			}
			prev, seen := sizes[f]
			sizes[f] = n
			label := strings.TrimSuffix(path.Base(f), ".log")
			switch {
			case first:
				fmt.Fprintf(&cmd, "tail -n %d %s 2>/dev/null | sed %s\n", o.Lines, q(f), q("s|^|"+label+" \\| |"))
			case seen && n > prev:
				fmt.Fprintf(&cmd, "tail -c +%d %s 2>/dev/null | head -c %d | sed %s\n", prev+1, q(f), n-prev, q("s|^|"+label+" \\| |"))
			}
		}
		if cmd.Len() == 0 {
			return nil
		}
		out, err = run(ctx, h, "read logs", cmd.String()+"exit 0\n")
		if err != nil {
			return err
		}
		emit(h.Name, out)
		return nil
	}
	if err := read(true); err != nil {
		return err
	}
	for o.Follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Poll):
		}
		if err := read(false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}
