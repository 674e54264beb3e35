// Package deploy is deploylab's task engine and the deployments built on it.
//
// The engine runs a list of tasks on many hosts: each host gets one
// connection (package remote), its tasks run in order, and each task reports
// ok (nothing to do), changed (it changed the host, or in check mode would
// have), skipped or failed. Hosts run in parallel, at most Forks at a time;
// a host that fails or cannot be reached never stops the others. The result
// is a Recap, like Ansible's PLAY RECAP, with one row per host.
//
// Tasks are typed by what they share about one host (Task[S]): the engine
// gives each host a zero S.
//
// What runs on the engine is an App's Backend (backend.go): the tasks that
// install and supervise one app, and the verbs over it (up, start, stop,
// reload, restart, ls, logs, down). One file per app: app_go.go
// (Deployment: deploylab's Go servers, under a goSupervisor) and
// app_node.go (NodeDeployment: the practice's Express app); one file per
// supervisor: sup_systemd.go (hardened units) and sup_pm2.go (PM2, for
// both apps).
package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// Status is a task's outcome on one host.
type Status string

const (
	// OK: the host already was as wanted (or the task only observed).
	OK Status = "ok"
	// Changed: the task changed the host (in check mode: would change it).
	Changed Status = "changed"
	// Skipped: the task did not apply (e.g. verify in check mode).
	Skipped Status = "skipped"
	// Failed: the task could not do its job; the host's later tasks do not run.
	Failed Status = "failed"
	// Unreachable: the host could not be reached (or the connection was lost).
	Unreachable Status = "unreachable"
)

// TaskResult is what one task did on one host.
type TaskResult struct {
	Task   string `json:"task"`
	Status Status `json:"status"`
	// Msg says what was found or done, in one line.
	Msg string `json:"msg,omitempty"`
	// Changes lists what changed (or, in check mode, would change).
	Changes []string `json:"changes,omitempty"`
	// Data holds figures for machine output (e.g. exposure scores).
	Data map[string]any `json:"data,omitempty"`
	// Error is the failure, when Status is failed or unreachable.
	Error    string        `json:"error,omitempty"`
	Hint     string        `json:"hint,omitempty"`
	Duration time.Duration `json:"-"`
	Millis   int64         `json:"duration_ms"`
	err      error
}

// Err is the task's error (nil unless failed or unreachable).
func (r TaskResult) Err() error { return r.err }

// Result constructors for tasks.

// Ok is an ok result.
func Ok(format string, args ...any) TaskResult {
	return TaskResult{Status: OK, Msg: fmt.Sprintf(format, args...)}
}

// Change is a changed result listing what changed.
func Change(changes []string, format string, args ...any) TaskResult {
	return TaskResult{Status: Changed, Changes: changes, Msg: fmt.Sprintf(format, args...)}
}

// Skip is a skipped result.
func Skip(format string, args ...any) TaskResult {
	return TaskResult{Status: Skipped, Msg: fmt.Sprintf(format, args...)}
}

// Fail is a failed result; an Unreachable-classified err makes the host
// unreachable.
func Fail(err error) TaskResult {
	return TaskResult{Status: Failed, err: err}
}

// HostRun is one host's run, shared by its tasks.
type HostRun struct {
	Name string
	// Exec is the host's connection.
	Exec remote.Executor
	// Check is true in check mode: tasks must not change anything.
	Check bool
	// Facts are what the facts task observed (facts, listeners, tools),
	// for the later tasks.
	Facts observe.Host
	// Results are the results so far.
	Results []TaskResult
}

// Changed reports whether any task so far changed (or would change) the host.
func (h *HostRun) Changed(tasks ...string) bool {
	for _, r := range h.Results {
		if r.Status != Changed {
			continue
		}
		if len(tasks) == 0 {
			return true
		}
		for _, t := range tasks {
			if r.Task == t {
				return true
			}
		}
	}
	return false
}

// Task is one step of a deployment. S is what the deployment's tasks learn
// about one host and share: each host gets its own, zero at the start.
type Task[S any] struct {
	Name string
	// Do does the task on h (in check mode, reports what it would do).
	Do func(ctx context.Context, h *HostRun, s *S) TaskResult
}

// TaskNamesOf are the tasks' names, in order.
func TaskNamesOf[S any](tasks []Task[S]) []string {
	var names []string
	for _, t := range tasks {
		names = append(names, t.Name)
	}
	return names
}

// Target is a host to run on: its Name (the inventory name, used in
// every report) and Host (how to reach it).
type Target = fleet.Target

// DialFunc connects to a host.
type DialFunc func(ctx context.Context, h remote.Host) (remote.Executor, error)

// Observer follows a run as it happens (for progress output). Its methods
// are called from the hosts' goroutines, concurrently.
type Observer interface {
	HostStart(host string)
	TaskStart(host, task string)
	TaskDone(host string, r TaskResult)
	HostDone(r *HostReport)
}

// RunOptions configure Run.
type RunOptions struct {
	// Forks is how many hosts run at once; 0 means 10.
	Forks int
	// Check: report what would change, change nothing.
	Check bool
	// Dial connects to a host; nil means remote.Dial with its defaults.
	Dial DialFunc
	// Observer, if not nil, sees every event.
	Observer Observer
}

// Run runs tasks on every target and returns the recap. Its error is only
// for a run that could not start; per-host failures are in the recap (see
// Recap.Err).
func Run[S any](ctx context.Context, targets []Target, tasks []Task[S], o RunOptions) *Recap {
	start := time.Now()
	if o.Forks <= 0 {
		o.Forks = 10
	}
	if o.Dial == nil {
		o.Dial = func(ctx context.Context, h remote.Host) (remote.Executor, error) { return remote.Dial(ctx, h) }
	}
	rc := &Recap{Check: o.Check, Hosts: make([]*HostReport, len(targets))}
	// One host's work fills its own report; a host given up (time limit,
	// Ctrl-C, panic) gets a new one saying why, and its late events are
	// dropped.
	gone := make([]atomic.Bool, len(targets))
	fleet.Each(ctx, len(targets), fleet.Options{Forks: o.Forks, Name: func(i int) string { return targets[i].Name }},
		func(ctx context.Context, i int) (*HostReport, error) {
			rep := &HostReport{Host: targets[i].Name, Address: targets[i].Host.Address}
			ho := o
			if o.Observer != nil {
				ho.Observer = &stopObserver{Observer: o.Observer, gone: &gone[i]}
			}
			runHost(ctx, targets[i], tasks, ho, rep)
			return rep, nil
		}, func(r fleet.Result[*HostReport]) {
			rep := r.Value
			if r.Err != nil || rep == nil {
				gone[r.Index].Store(true)
				rep = &HostReport{Host: targets[r.Index].Name, Address: targets[r.Index].Host.Address}
				rep.fail(TaskResult{Task: "connect", Status: Failed, err: r.Err})
				rep.finish()
				if o.Observer != nil {
					o.Observer.HostDone(rep)
				}
			}
			rc.Hosts[r.Index] = rep
		})
	rc.Duration = time.Since(start)
	rc.Millis = rc.Duration.Milliseconds()
	rc.count()
	if ctx.Err() != nil {
		rc.interrupted = ctx.Err()
	}
	return rc
}

// stopObserver passes a host's events on until the host is given up.
type stopObserver struct {
	Observer
	gone *atomic.Bool
}

func (s *stopObserver) HostStart(host string) {
	if !s.gone.Load() {
		s.Observer.HostStart(host)
	}
}

func (s *stopObserver) TaskStart(host, task string) {
	if !s.gone.Load() {
		s.Observer.TaskStart(host, task)
	}
}

func (s *stopObserver) TaskDone(host string, r TaskResult) {
	if !s.gone.Load() {
		s.Observer.TaskDone(host, r)
	}
}

func (s *stopObserver) HostDone(r *HostReport) {
	if !s.gone.Load() {
		s.Observer.HostDone(r)
	}
}

func runHost[S any](ctx context.Context, t Target, tasks []Task[S], o RunOptions, rep *HostReport) {
	obs := o.Observer
	if obs != nil {
		obs.HostStart(t.Name)
	}
	defer func() {
		rep.finish()
		if obs != nil {
			obs.HostDone(rep)
		}
	}()
	if obs != nil {
		obs.TaskStart(t.Name, "connect")
	}
	start := time.Now()
	ex, err := o.Dial(ctx, t.Host)
	if err != nil {
		r := TaskResult{Task: "connect", Status: Failed, err: err}
		r.finish(start)
		rep.fail(r)
		if obs != nil {
			obs.TaskDone(t.Name, rep.Tasks[len(rep.Tasks)-1])
		}
		return
	}
	defer ex.Close()
	h := &HostRun{Name: t.Name, Exec: ex, Check: o.Check}
	state := new(S)
	for _, task := range tasks {
		if obs != nil {
			obs.TaskStart(t.Name, task.Name)
		}
		start := time.Now()
		var r TaskResult
		if err := ctx.Err(); err != nil {
			r = Fail(err)
		} else {
			r = task.Do(ctx, h, state)
		}
		r.Task = task.Name
		r.finish(start)
		h.Results = append(h.Results, r)
		if r.Status == Failed {
			rep.fail(r)
		} else {
			rep.Tasks = append(rep.Tasks, r)
		}
		if obs != nil {
			obs.TaskDone(t.Name, rep.Tasks[len(rep.Tasks)-1])
		}
		if r.Status == Failed || r.Status == Unreachable {
			return
		}
	}
}

// finish fills the result's timing and error fields.
func (r *TaskResult) finish(start time.Time) {
	r.Duration = time.Since(start)
	r.Millis = r.Duration.Milliseconds()
	if r.err != nil {
		if r.Status == Failed && fail.KindOf(r.err) == fail.Unreachable {
			r.Status = Unreachable
		}
		r.Error = r.err.Error()
		r.Hint = fail.HintOf(r.err)
	}
}

// HostReport is one host's row of the recap, with its task results.
type HostReport struct {
	Host    string       `json:"host"`
	Address string       `json:"address,omitempty"`
	Tasks   []TaskResult `json:"tasks"`
	Counts
	// Error is the failure that stopped the host, if any.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	err   error
}

// Err is the error that stopped the host (nil if it finished).
func (h *HostReport) Err() error { return h.err }

func (h *HostReport) fail(r TaskResult) {
	if r.Status == Failed && fail.KindOf(r.err) == fail.Unreachable {
		r.Status = Unreachable
	}
	if r.Error == "" && r.err != nil {
		r.Error, r.Hint = r.err.Error(), fail.HintOf(r.err)
	}
	h.Tasks = append(h.Tasks, r)
	h.err = fmt.Errorf("%s: %s: %w", h.Host, r.Task, r.err)
	h.Error, h.Hint = r.Error, r.Hint
}

func (h *HostReport) finish() {
	h.Counts = Counts{}
	for _, r := range h.Tasks {
		switch r.Status {
		case OK:
			h.OK++
		case Changed:
			h.OK++
			h.Changed++
		case Skipped:
			h.Skipped++
		case Failed:
			h.Failed++
		case Unreachable:
			h.Unreachable++
		}
	}
}

// Counts are a recap row's figures. As in Ansible, OK counts every task
// that succeeded, changed ones included.
type Counts struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Skipped     int `json:"skipped"`
	Unreachable int `json:"unreachable"`
}

func (c *Counts) add(o Counts) {
	c.OK += o.OK
	c.Changed += o.Changed
	c.Failed += o.Failed
	c.Skipped += o.Skipped
	c.Unreachable += o.Unreachable
}

// Recap is the result of a run: one report per host, in target order.
type Recap struct {
	Check    bool          `json:"check"`
	Hosts    []*HostReport `json:"hosts"`
	Total    Counts        `json:"total"`
	Duration time.Duration `json:"-"`
	Millis   int64         `json:"duration_ms"`

	interrupted error
}

func (rc *Recap) count() {
	rc.Total = Counts{}
	for _, h := range rc.Hosts {
		rc.Total.add(h.Counts)
	}
}

// Err summarises the run for the exit code: nil when every host finished;
// else a fail.Auth error if a host refused us (host key, login, sudo), else
// fail.Unreachable if a host could not be reached, else fail.Failed.
// An interrupted run returns the context's error.
func (rc *Recap) Err() error {
	if rc.interrupted != nil {
		return fmt.Errorf("run interrupted: %w", rc.interrupted)
	}
	var failed, unreachable, auth []*HostReport
	for _, h := range rc.Hosts {
		if h.err == nil {
			continue
		}
		switch {
		case fail.KindOf(h.err) == fail.Auth:
			auth = append(auth, h)
		case h.Unreachable > 0:
			unreachable = append(unreachable, h)
		default:
			failed = append(failed, h)
		}
	}
	n := len(failed) + len(unreachable) + len(auth)
	if n == 0 {
		return nil
	}
	all := append(append(append([]*HostReport{}, auth...), unreachable...), failed...)
	what := fmt.Sprintf("%d of %d hosts", n, len(rc.Hosts))
	if len(rc.Hosts) == 1 {
		what = "the host"
	}
	var err error
	if n == 1 {
		err = all[0].err
	} else {
		var names []string
		for _, h := range all {
			names = append(names, h.Host)
		}
		err = fmt.Errorf("%s did not finish (%s); see the tasks above", what, strings.Join(names, ", "))
	}
	switch {
	case len(auth) > 0:
		hint := auth[0].Hint
		return fail.New(fail.Auth, hint, err)
	case len(unreachable) > 0:
		hint := unreachable[0].Hint
		if n > 1 {
			hint = "the other hosts were done; check the unreachable ones and run again (a second run only does what is missing)"
		}
		return fail.New(fail.Unreachable, hint, err)
	default:
		hint := failed[0].Hint
		return fail.New(fail.Failed, hint, err)
	}
}
