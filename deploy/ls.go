package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/safetext"
)

// This file holds ls (PM2's "pm2 ls" for what Up deployed): per host, per
// service, its supervisor's view (pid, uptime, restarts) and the processes'
// CPU and memory from /proc, plus the cluster master's per-worker figures,
// all in one batched round trip per host.

// ProcStatus is one service (or one of its workers) as ls shows it.
type ProcStatus struct {
	// Name is the service name (for a worker: "worker <slot>").
	Name string `json:"name"`
	// Mode is "fork" (one process) or "cluster" (a master and workers).
	Mode string `json:"mode,omitempty"`
	// Status: online, stopped, failed, starting, reloading, missing (not
	// installed); a worker's is its state (ready, starting, draining).
	Status   string  `json:"status"`
	PID      int     `json:"pid,omitempty"`
	Uptime   float64 `json:"uptime_s"`
	Restarts int     `json:"restarts"`
	// CPU is the percentage of one CPU used over a short sample (all the
	// service's processes for a service row).
	CPU float64 `json:"cpu_percent"`
	// Memory is the resident set size in bytes (all processes).
	Memory int64 `json:"memory_bytes"`
	// Served counts requests answered; nil when the server does not count.
	Served *uint64 `json:"served,omitempty"`
	// Workers are the cluster's workers.
	Workers []ProcStatus `json:"workers,omitempty"`
	// Supervisor is systemd or pm2.
	Supervisor string `json:"supervisor,omitempty"`
}

// HostStatus is ls's answer for one host.
type HostStatus struct {
	Host     string       `json:"host"`
	Address  string       `json:"address,omitempty"`
	Services []ProcStatus `json:"services"`
	Error    string       `json:"error,omitempty"`
	Hint     string       `json:"hint,omitempty"`
	err      error
}

// Err is why the host could not be read (nil if it was).
func (h HostStatus) Err() error { return h.err }

// statFields is what ls uses of /proc/<pid>/stat (after the command name).
type statFields struct {
	ticks     int64 // utime + stime
	startTick int64
}

func parseStat(fields []string) (statFields, bool) {
	// After "pid (comm) ": state is field 0, utime 11, stime 12, starttime 19.
	if len(fields) < 20 {
		return statFields{}, false
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	stt, _ := strconv.ParseInt(fields[12], 10, 64)
	start, _ := strconv.ParseInt(fields[19], 10, 64)
	return statFields{ticks: ut + stt, startTick: start}, true
}

func parseLs(out string, svcs []Service, sample time.Duration) ([]ProcStatus, error) {
	type svcRaw struct {
		show  strings.Builder // the supervisor's view, as systemctl show prints it
		stats string
	}
	raw := map[string]*svcRaw{}
	var cur *svcRaw
	sup := SupervisorSystemd
	var clk, page int64 = 100, 4096
	var uptime float64
	stat1, stat2 := map[string]statFields{}, map[string]statFields{}
	rssOf := map[string]int64{}
	head := ""
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "@@supervisor "):
			if len(f) > 1 {
				sup = f[1]
			}
		case strings.HasPrefix(line, "@@clk "):
			if len(f) == 3 {
				clk, _ = strconv.ParseInt(f[1], 10, 64)
				page, _ = strconv.ParseInt(f[2], 10, 64)
			}
		case strings.HasPrefix(line, "@@uptime "):
			if len(f) == 2 {
				uptime, _ = strconv.ParseFloat(f[1], 64)
			}
		case line == "@@head":
			if i+1 < len(lines) {
				i++
				head = lines[i]
			}
		case strings.HasPrefix(line, "@@svc "):
			cur = &svcRaw{}
			raw[strings.TrimPrefix(line, "@@svc ")] = cur
		case line == "@@stats":
			if cur != nil && i+1 < len(lines) {
				i++
				cur.stats = strings.TrimSpace(lines[i])
			}
		case strings.HasPrefix(line, "@@stat1 "), strings.HasPrefix(line, "@@stat2 "):
			if len(f) < 3 {
				continue
			}
			if sf, ok := parseStat(f[2:]); ok {
				if f[0] == "@@stat1" {
					stat1[f[1]] = sf
				} else {
					stat2[f[1]] = sf
				}
			}
		case strings.HasPrefix(line, "@@statm "):
			if len(f) >= 4 {
				n, _ := strconv.ParseInt(f[3], 10, 64)
				rssOf[f[1]] = n * page
			}
		default:
			if cur != nil && strings.Contains(line, "=") {
				cur.show.WriteString(line + "\n")
			}
		}
	}
	if clk <= 0 {
		clk = 100
	}
	supervisor, sup := recorded(sup)
	var res []ProcStatus
	for _, s := range svcs {
		r := raw[s.Name]
		ps := ProcStatus{Name: s.Name, Mode: "fork", Supervisor: sup}
		if s.Reload {
			ps.Mode = "cluster"
		}
		if r == nil {
			ps.Status = "unknown"
			res = append(res, ps)
			continue
		}
		show := showUnit(r.show.String())
		ps.PID = show.MainPID
		supervisor.lsRow(&ps, s, show, head, uptime)
		if ps.Status != "online" && ps.Status != "reloading" {
			ps.PID = 0
		}
		key := func(pid int) string { return s.Name + ":" + strconv.Itoa(pid) }
		ps.Memory = rssOf[key(ps.PID)]
		ps.CPU = cpuPercent(stat1[key(ps.PID)], stat2[key(ps.PID)], clk, sample)
		if r.stats != "" && ps.PID != 0 {
			var cs struct {
				Served   uint64 `json:"served"`
				Restarts int    `json:"restarts"`
				Workers  []struct {
					Slot     int     `json:"slot"`
					PID      int     `json:"pid"`
					State    string  `json:"state"`
					Served   uint64  `json:"served"`
					Uptime   float64 `json:"uptime_s"`
					Restarts int     `json:"restarts"`
					RSS      int64   `json:"rss_bytes"`
				} `json:"workers"`
			}
			if err := json.Unmarshal([]byte(r.stats), &cs); err == nil {
				served := cs.Served
				ps.Served = &served
				sort.Slice(cs.Workers, func(i, j int) bool { return cs.Workers[i].Slot < cs.Workers[j].Slot })
				for _, w := range cs.Workers {
					ws := w.Served
					wr := ProcStatus{Name: fmt.Sprintf("worker %d", w.Slot), Status: w.State, PID: w.PID,
						Uptime: w.Uptime, Restarts: w.Restarts, Served: &ws,
						Memory: rssOf[key(w.PID)], CPU: cpuPercent(stat1[key(w.PID)], stat2[key(w.PID)], clk, sample)}
					if wr.Memory == 0 {
						wr.Memory = w.RSS
					}
					ps.Workers = append(ps.Workers, wr)
					ps.Memory += wr.Memory
					ps.CPU += wr.CPU
				}
			}
		}
		res = append(res, ps)
	}
	return res, nil
}

func cpuPercent(a, b statFields, clk int64, sample time.Duration) float64 {
	if a.startTick == 0 || a.startTick != b.startTick || b.ticks < a.ticks {
		return 0
	}
	secs := float64(b.ticks-a.ticks) / float64(clk)
	return secs / sample.Seconds() * 100
}

// WriteLs writes one table per host, like pm2 ls: the services and, under
// the cluster, its workers.
func WriteLs(w io.Writer, hosts []HostStatus) error {
	var b strings.Builder
	for i, h := range hosts {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s", h.Host)
		if h.Address != "" {
			fmt.Fprintf(&b, " (%s)", h.Address)
		}
		b.WriteString("\n")
		if h.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", safetext.Line(h.Error))
			if h.Hint != "" {
				fmt.Fprintf(&b, "  hint: %s\n", safetext.Line(h.Hint))
			}
			continue
		}
		fmt.Fprintf(&b, "  %-12s %-8s %-9s %7s %7s %8s %6s %9s %9s\n", "NAME", "MODE", "STATUS", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "SERVED")
		row := func(name, mode string, p ProcStatus) {
			pid, served := "-", "-"
			if p.PID > 0 {
				pid = strconv.Itoa(p.PID)
			}
			if p.Served != nil {
				served = strconv.FormatUint(*p.Served, 10)
			}
			up := "-"
			if p.Uptime > 0 {
				up = FormatUptime(time.Duration(p.Uptime * float64(time.Second)))
			}
			// Names, modes and statuses come from the host (pm2 jlist).
			fmt.Fprintf(&b, "  %-12s %-8s %-9s %7s %7s %8d %5.1f%% %9s %9s\n", safetext.Line(name), safetext.Line(mode), safetext.Line(p.Status), pid, up, p.Restarts, p.CPU, FormatBytes(p.Memory), served)
		}
		for _, s := range h.Services {
			row(s.Name, s.Mode, s)
			for j, wk := range s.Workers {
				branch := "├─"
				if j == len(s.Workers)-1 {
					branch = "└─"
				}
				row(branch+strings.TrimPrefix(wk.Name, "worker "), "worker", wk)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteLsJSON writes the hosts as JSON (schema deploylab.ls/v1).
func WriteLsJSON(w io.Writer, hosts []HostStatus) error {
	doc := struct {
		Schema string       `json:"schema"`
		Hosts  []HostStatus `json:"hosts"`
	}{"deploylab.ls/v1", hosts}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// FormatUptime prints a duration as pm2 does: 45s, 12m, 3h, 2D.
func FormatUptime(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dD", int(d.Hours()/24))
}

// FormatBytes prints a byte count in binary units: 512B, 7.9MiB.
func FormatBytes(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
}
