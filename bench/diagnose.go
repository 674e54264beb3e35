package bench

import "fmt"

// Cause is one likely reason, read from the figures, why the single server
// beat the cluster.
type Cause struct {
	// Code names the cause for programs and tests: client-cpu, saturated,
	// connection-cost, light-route, short-run, errors, noise, unknown.
	Code string
	Text string
}

// Thresholds of the diagnosis.
const (
	// clientShare: the client used at least this share of the machine's
	// CPUs (0.4 of 2 CPUs = 0.8 of a core).
	clientShare = 0.4
	// saturatedShare: the machine was at least this busy.
	saturatedShare = 0.9
	// connectionCost: the cluster spent this much more server CPU per
	// request than the single server.
	connectionCost = 1.15
	// lightRouteUS: a route costing less server CPU per request than this
	// (microseconds) is light: too little work to share.
	lightRouteUS = 250
	// shortRunS: runs shorter than this are too short to compare.
	shortRunS = 1.0
	// noise: a difference smaller than this share is within run-to-run
	// variation.
	noise = 0.03
)

// Diagnose compares a load scenario's single and cluster runs. It returns
// nil when the cluster served at least as many requests per second;
// otherwise the likely causes from the figures (never empty: "unknown"
// when none stands out).
func Diagnose(single, cluster *Record) []Cause {
	if single == nil || cluster == nil || single.Result == nil || cluster.Result == nil {
		return nil
	}
	s, c := single.Result, cluster.Result
	if c.RPS >= s.RPS || s.RPS <= 0 {
		return nil
	}
	var out []Cause
	add := func(code, format string, args ...any) {
		out = append(out, Cause{Code: code, Text: fmt.Sprintf(format, args...)})
	}
	loss := 1 - c.RPS/s.RPS

	if s.DurationS < shortRunS || c.DurationS < shortRunS {
		add("short-run", "the runs lasted %.2f s (single) and %.2f s (cluster): too short to compare, the start-up of the run weighs too much; use more requests (-n)", s.DurationS, c.DurationS)
	}
	if c.Errors.Total > s.Errors.Total {
		add("errors", "the cluster run had %d failed requests (the single one %d): check the cluster's logs (journalctl -u %s)", c.Errors.Total, s.Errors.Total, unitOr(cluster, "the cluster's unit"))
	}
	cpus := max(cluster.CPU.cpus(), single.CPU.cpus(), cluster.Host.CPUs)
	if cc := cluster.CPU.ClientCores(); cc >= 0 && cpus > 0 && cc/float64(cpus) >= clientShare {
		perReq := ""
		if us := cluster.ClientCPUPerRequestUS(); us >= 0 {
			perReq = fmt.Sprintf(", %.0f µs of CPU per request", us)
		}
		add("client-cpu", "client CPU: the load generator (%s) itself used %.2f of the %d CPUs (%.0f%%%s) during the cluster run; on the same VM it takes the core a second worker would need, so the client, not the server, sets the limit",
			toolName(cluster), cc, cpus, 100*cc/float64(cpus), perReq)
	}
	if cl := cluster.CPU; cl != nil && cl.WallS > 0 && cpus > 0 && cl.MachineS/(cl.WallS*float64(cpus)) >= saturatedShare {
		add("saturated", "the VM's %d CPUs were %.0f%% busy during the cluster run: there was no idle CPU for the extra worker to use", cpus, min(100, 100*cl.MachineS/(cl.WallS*float64(cpus))))
	}
	sUS, cUS := single.ServerCPUPerRequestUS(), cluster.ServerCPUPerRequestUS()
	if sUS > 0 && cUS > 0 && cUS >= connectionCost*sUS {
		how := "the cluster's master accepts every connection and hands it to a worker"
		if !cluster.Scenario.KeepAlive {
			how = "without keep-alive (-k) every request is a new connection, which the cluster's master accepts and hands to a worker"
		}
		add("connection-cost", "connection cost: the cluster spent %.0f µs of server CPU per request against %.0f µs for the single server (+%.0f%%): %s",
			cUS, sUS, 100*(cUS/sUS-1), how)
	}
	if sUS > 0 && sUS < lightRouteUS {
		add("light-route", "light route: %s costs the single server only %.0f µs of CPU per request, so one process keeps up and the work of sharing it (master, second process) outweighs the gain", single.Route(), sUS)
	}
	if loss < noise {
		add("noise", "the difference is %.1f%%, within the usual variation between runs: repeat the bench before drawing conclusions", 100*loss)
	}
	if len(out) == 0 {
		add("unknown", "no cause stands out in the figures (the cluster is %.0f%% slower): repeat the run, and compare with -k and with more requests", 100*loss)
	}
	return out
}

func (c *CPU) cpus() int {
	if c == nil {
		return 0
	}
	return c.CPUs
}

func toolName(r *Record) string {
	if r.Tool.Name == "" {
		return "the client"
	}
	return r.Tool.Name
}

func unitOr(r *Record, def string) string {
	if r.Server.Unit != "" {
		return r.Server.Unit
	}
	return def
}
