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
	// File names may come from the host (pm2 jlist): they are quoted in
	// every command, the output names them by index, and the label is
	// made of safe characters.
	sizes := map[int]int64{}
	read := func(first bool) error {
		var b strings.Builder
		for i, f := range files {
			fmt.Fprintf(&b, "echo \"@@file %d $(stat -c %%s %s 2>/dev/null || echo 0)\"\n", i, q(f))
		}
		out, err := run(ctx, h, "read logs", b.String())
		if err != nil {
			return err
		}
		var cmd strings.Builder
		for _, line := range strings.Split(out, "\n") {
			var i int
			var n int64
			if _, err := fmt.Sscanf(line, "@@file %d %d", &i, &n); err != nil || i < 0 || i >= len(files) {
				continue
			}
			f := files[i]
			prev, seen := sizes[i]
			sizes[i] = n
			label := logLabel(f)
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

// logLabel is a log file's name without .log, in characters sed's
// replacement takes as they are.
func logLabel(f string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, strings.TrimSuffix(path.Base(f), ".log"))
}
