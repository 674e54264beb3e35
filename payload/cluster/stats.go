// Statistics: Master.Stats and the stats socket.

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Stats returns the master's current statistics.
func (m *Master) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	st := Stats{
		PID: os.Getpid(), Addr: m.addr.String(), Schedule: m.cfg.Schedule.String(),
		Instances: m.n, StartedAt: m.started.UTC().Truncate(time.Millisecond),
		Uptime: now.Sub(m.started).Seconds(), Ready: m.ready,
		Forks: m.forks, Restarts: m.restarts, Reloads: m.reloads, Recycled: m.recycled,
		Served:  m.servedGone,
		Workers: []WorkerStats{},
	}
	for _, w := range m.workersLocked() {
		ws := WorkerStats{
			Slot: w.slot, ID: w.id, PID: w.pid, State: stateNames[w.state.Load()],
			Served: w.c.served().Load(), InFlight: w.c.inFlight().Load(), Conns: w.c.conns().Load(),
			Handed: w.handed.Load(), RSS: w.rssRep.Load(), Uptime: now.Sub(w.started).Seconds(),
			Restarts: m.slots[w.slot-1].restarts,
		}
		if r, err := rss(w.pid); err == nil {
			ws.RSS = r
		}
		st.Served += ws.Served
		st.InFlight += ws.InFlight
		st.Workers = append(st.Workers, ws)
	}
	return st
}

func (m *Master) serveStats() { ServeStats(m.statsLn, func() any { return m.Stats() }) }

// ServeStats writes stats() as JSON to each connection ln accepts, until ln
// is closed (sumcluster's master and sumserver serve their statistics so).
func ServeStats(ln net.Listener, stats func() any) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			b, _ := json.MarshalIndent(stats(), "", "  ")
			_, _ = c.Write(append(b, '\n'))
		}()
	}
}

// ListenStats listens on the stats socket path, replacing a stale socket
// file but refusing to steal one a live server serves.
func ListenStats(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("stats socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("stats socket %s: another server is serving it (stop it or pass --stats-socket)", path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("stats socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	// Read-only statistics: any local user (deploylab over SSH) may read them.
	_ = os.Chmod(path, 0o666)
	return ln, nil
}

// ReadStats connects to a stats socket (ListenStats, ServeStats) and returns
// the raw JSON.
func ReadStats(ctx context.Context, path string) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	b, err := io.ReadAll(io.LimitReader(c, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("stats socket %s: not JSON", path)
	}
	return b, nil
}
