package deploy

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

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
