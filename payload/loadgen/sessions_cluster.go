//go:build unix

package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// The disruptions of the sessions scenario on a sumcluster running beside
// the load generator (deploylab bench starts one per mode on the host):
// its workers are read from the master's stats socket and signalled
// directly (the same user started them).

// ClusterWorker is one worker as sumcluster's stats socket shows it.
type ClusterWorker struct {
	PID   int    `json:"pid"`
	State string `json:"state"`
}

// ReadClusterWorkers reads the workers from sumcluster's stats socket.
func ReadClusterWorkers(ctx context.Context, sock string) ([]ClusterWorker, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", sock, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(io.LimitReader(c, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", sock, err)
	}
	var st struct {
		Workers []ClusterWorker `json:"workers"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("stats socket %s: not sumcluster's statistics", sock)
	}
	return st.Workers, nil
}

func readyPIDs(ws []ClusterWorker) map[int]bool {
	m := map[int]bool{}
	for _, w := range ws {
		if w.State == "ready" && w.PID > 0 {
			m[w.PID] = true
		}
	}
	return m
}

// WaitClusterReady polls the stats socket until n workers are ready, none
// of them in not (the workers replaced), or ctx ends.
func WaitClusterReady(ctx context.Context, sock string, n int, not map[int]bool) error {
	var last error
	for {
		ws, err := ReadClusterWorkers(ctx, sock)
		if err == nil {
			ready := readyPIDs(ws)
			ok := len(ready) >= n
			for pid := range not {
				if ready[pid] || pid == 0 {
					continue
				}
				for _, w := range ws {
					if w.PID == pid {
						ok = false
					}
				}
			}
			if ok {
				return nil
			}
			last = fmt.Errorf("%d of %d workers ready", len(ready), n)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d ready workers: %w (last: %v)", n, ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SignalWorker returns a Disruption.Do that sends sig to one ready worker
// of the cluster whose stats socket is sock (SIGKILL: a crash; SIGTERM: a
// recycle, the worker drained and replaced) and waits, up to a minute,
// until n workers are ready again without it.
func SignalWorker(sock string, n int, sig syscall.Signal) func(context.Context) error {
	return func(ctx context.Context) error {
		ws, err := ReadClusterWorkers(ctx, sock)
		if err != nil {
			return err
		}
		victim := 0
		for _, w := range ws {
			if w.State == "ready" {
				victim = w.PID
				break
			}
		}
		if victim <= 0 {
			return errors.New("no ready worker to signal")
		}
		if err := syscall.Kill(victim, sig); err != nil {
			return fmt.Errorf("signal worker %d: %w", victim, err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return WaitClusterReady(wctx, sock, n, map[int]bool{victim: true})
	}
}
