package bench

import (
	"time"

	"github.com/deploylab/deploylab/payload/loadgen"
)

// Schema is the value of Record.Schema: the stored result document's
// version. Adding an optional field keeps v1; removing or redefining one
// makes v2.
const Schema = "deploylab.bench/v1"

// Record is one measured run: one scenario against one server on one host,
// with everything needed to compare it later. It is stored as one JSON file.
type Record struct {
	Schema string `json:"schema"`
	// ID is unique in the store: "<batch>-<host>-<server>-<scenario>".
	ID string `json:"id"`
	// Batch groups the runs of one deploylab bench invocation:
	// "20261122-103015" (UTC).
	Batch string    `json:"batch"`
	At    time.Time `json:"at"`
	Host  HostInfo  `json:"host"`
	// Tool is the load generator that ran on the host: loadgen or loadtest,
	// with its version and the cores it used (loadtest v7+ is a cluster).
	Tool     ToolInfo   `json:"tool"`
	Scenario Scenario   `json:"scenario"`
	Server   ServerInfo `json:"server"`
	// Result is the load generator's result (schema deploylab.loadgen/v1).
	// For a blocking scenario it is the light requests' result: their
	// latencies are how long they waited.
	Result *loadgen.Result `json:"result"`
	// Heavy is the blocking scenario's long request.
	Heavy *loadgen.Result `json:"heavy,omitempty"`
	// Sessions is a sessions scenario's figures (one mode; Result then
	// holds its request counts and rate).
	Sessions *loadgen.SessionsResult `json:"sessions,omitempty"`
	// CPU is what the client and the server used during the run.
	CPU *CPU `json:"cpu,omitempty"`
	// Workers are the cluster's per-worker counts, from sumcluster's stats
	// before and after the run.
	Workers []WorkerCount `json:"workers,omitempty"`
	Notes   []string      `json:"notes,omitempty"`
}

// HostInfo says where a run was made.
type HostInfo struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Student  string `json:"student,omitempty"`
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel"`
	Arch     string `json:"arch"`
	OS       string `json:"os,omitempty"`
	MemTotal int64  `json:"mem_total,omitempty"`
}

// ToolInfo names the load generator.
type ToolInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Cores is the number of processes (loadtest) or threads (loadgen's
	// GOMAXPROCS) the tool ran on, when known.
	Cores int `json:"cores,omitempty"`
	// Path is where it ran from on the host.
	Path string `json:"path,omitempty"`
}

// ServerInfo is the server measured.
type ServerInfo struct {
	// Mode is single, cluster or custom (a one-off URL).
	Mode string `json:"mode"`
	Port int    `json:"port,omitempty"`
	URL  string `json:"url"`
	Unit string `json:"unit,omitempty"`
	// Workers is the number of cluster workers during the run, when known.
	Workers int `json:"workers,omitempty"`
	// Stack is the server's implementation: LangGo (deploylab up's
	// sumserver/sumcluster) or LangNode (up --app node's Express app under
	// PM2). Plain runs store the plan server's stack (go unless the plan
	// says otherwise); bench --compare stores each stack's. Optional: a
	// record without it (written before the field existed) is go. A custom
	// URL run on no plan server has none.
	Stack string `json:"stack,omitempty"`
}

// StackName is the server's stack with the default applied: Stack, or
// LangGo when it is absent, or "" for a custom URL run without one.
func (s ServerInfo) StackName() string {
	switch {
	case s.Stack != "":
		return s.Stack
	case s.Mode == ModeCustom:
		return ""
	}
	return LangGo
}

// CPU is processor time used during a run, measured on the host from
// /proc (and the server unit's cgroup) before and after it.
type CPU struct {
	// WallS is the time between the two samples.
	WallS float64 `json:"wall_s"`
	// ClientS is the load generator's user+system time (all its processes).
	ClientS float64 `json:"client_s"`
	// ServerS is the server's user+system time (all its processes), when
	// it could be measured; ServerSource says how (cgroup, procs).
	ServerS      *float64 `json:"server_s,omitempty"`
	ServerSource string   `json:"server_source,omitempty"`
	// MachineS is the whole machine's busy time (/proc/stat), all CPUs.
	MachineS float64 `json:"machine_s"`
	CPUs     int     `json:"cpus"`
}

// ClientCores is the client's average use in cores (1.0 = one core busy),
// or -1 when unknown.
func (c *CPU) ClientCores() float64 {
	if c == nil || c.WallS <= 0 {
		return -1
	}
	return c.ClientS / c.WallS
}

// ServerCores is the server's average use in cores, or -1 when unknown.
func (c *CPU) ServerCores() float64 {
	if c == nil || c.WallS <= 0 || c.ServerS == nil {
		return -1
	}
	return *c.ServerS / c.WallS
}

// WorkerCount is one cluster worker's requests served during the run.
type WorkerCount struct {
	Slot int `json:"slot"`
	ID   int `json:"id"`
	PID  int `json:"pid"`
	// Before and After are the worker's served counter in the two samples;
	// Requests = After - Before (Before is 0 for a worker started during
	// the run).
	Before   uint64 `json:"before"`
	After    uint64 `json:"after"`
	Requests uint64 `json:"requests"`
}

// Route is the scenario's route as the grader keys it: the path (for a
// full URL, its path).
func (r *Record) Route() string {
	return routePath(r.Scenario.Route)
}

// ServerCPUPerRequestUS is the server's CPU time per completed request, in
// microseconds, or -1 when unknown.
func (r *Record) ServerCPUPerRequestUS() float64 {
	if r.CPU == nil || r.CPU.ServerS == nil || r.Result == nil || r.Result.Completed == 0 {
		return -1
	}
	return *r.CPU.ServerS * 1e6 / float64(r.Result.Completed)
}

// ClientCPUPerRequestUS is the client's CPU time per completed request, in
// microseconds, or -1 when unknown.
func (r *Record) ClientCPUPerRequestUS() float64 {
	if r.CPU == nil || r.Result == nil || r.Result.Completed == 0 {
		return -1
	}
	return r.CPU.ClientS * 1e6 / float64(r.Result.Completed)
}
