package observe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxPM2Bytes bounds the JSON ParsePM2 decodes.
const maxPM2Bytes = 8 << 20

// pm2JSON is the part of `pm2 jlist` (and of dump.pm2, whose entries are
// flat pm2_env objects) that is read. PM2's environment (which may hold
// secrets) is not kept.
type pm2JSON struct {
	Name     string          `json:"name"`
	PMID     json.RawMessage `json:"pm_id"`
	PID      int             `json:"pid"`
	Monit    *pm2Monit       `json:"monit"`
	Env      *pm2Env         `json:"pm2_env"`
	ExecMode string          `json:"exec_mode"`
	Status   string          `json:"status"`
	Inst     json.RawMessage `json:"instances"`
	Exec     string          `json:"pm_exec_path"`
	Cwd      string          `json:"pm_cwd"`
}

type pm2Env struct {
	ExecMode string          `json:"exec_mode"`
	Status   string          `json:"status"`
	Restarts int             `json:"restart_time"`
	Inst     json.RawMessage `json:"instances"`
	Exec     string          `json:"pm_exec_path"`
	Cwd      string          `json:"pm_cwd"`
	Started  int64           `json:"pm_uptime"`
	Port     json.RawMessage `json:"PORT"`
	OutLog   string          `json:"pm_out_log_path"`
	ErrLog   string          `json:"pm_err_log_path"`
}

// pm2Monit is PM2's own sample of a process (pidusage).
type pm2Monit struct {
	CPU    float64 `json:"cpu"`
	Memory int64   `json:"memory"`
}

// jsonList is where the JSON list starts in body: the first "[" followed
// by "{" or "]", so that PM2's messages before it ("[PM2] Spawning PM2
// daemon") are skipped; -1 when there is none.
func jsonList(body string) int {
	for j := 0; j < len(body); j++ {
		if body[j] != '[' {
			continue
		}
		rest := strings.TrimLeft(body[j+1:], " \t\r\n")
		if strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, "]") {
			return j
		}
	}
	return -1
}

// ParsePM2 reads `pm2 jlist`'s array (dump: dump.pm2's); PM2 sometimes
// prints warnings before it. At most MaxPM2Apps apps are kept.
func ParsePM2(body string, dump bool) ([]PM2App, error) {
	i := jsonList(body)
	if i < 0 {
		msg := strings.TrimSpace(body)
		if msg == "" {
			return nil, errors.New("empty output")
		}
		return nil, fmt.Errorf("no JSON list in %q", clip(strings.Join(strings.Fields(clip(msg, 1000)), " "), 120))
	}
	body = body[i:]
	if len(body) > maxPM2Bytes {
		return nil, fmt.Errorf("JSON list longer than %d MiB", maxPM2Bytes>>20)
	}
	var raw []pm2JSON
	if err := json.NewDecoder(strings.NewReader(body)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("bad JSON: %s", clip(err.Error(), 200))
	}
	if len(raw) > MaxPM2Apps {
		raw = raw[:MaxPM2Apps]
	}
	apps := make([]PM2App, 0, len(raw))
	for _, r := range raw {
		a := PM2App{Name: r.Name, PID: r.PID, ExecMode: r.ExecMode, Status: r.Status, Script: r.Exec, Cwd: r.Cwd}
		inst := r.Inst
		if r.Env != nil {
			a.ExecMode, a.Status, a.Restarts, a.Script, a.Cwd = r.Env.ExecMode, r.Env.Status, r.Env.Restarts, r.Env.Exec, r.Env.Cwd
			a.Started, a.OutLog, a.ErrLog = r.Env.Started, clip(r.Env.OutLog, MaxField), clip(r.Env.ErrLog, MaxField)
			a.Port = strings.Trim(clip(string(r.Env.Port), 32), `"`)
			if a.Port == "null" {
				a.Port = ""
			}
			if len(r.Env.Inst) > 0 {
				inst = r.Env.Inst
			}
		}
		a.PMID, _ = strconv.Atoi(strings.Trim(clip(string(r.PMID), 32), `"`))
		a.Instances = strings.Trim(clip(string(inst), 32), `"`)
		if a.Instances == "null" {
			a.Instances = ""
		}
		if r.Monit != nil {
			a.CPU, a.Memory = r.Monit.CPU, r.Monit.Memory
		}
		if dump && r.PID != 0 {
			a.PID = r.PID
		}
		a.Name, a.ExecMode, a.Status = clip(a.Name, MaxName), clip(a.ExecMode, MaxName), clip(a.Status, MaxName)
		a.Script, a.Cwd = clip(a.Script, MaxField), clip(a.Cwd, MaxField)
		apps = append(apps, a)
	}
	return apps, nil
}
