package checks

import (
	"slices"

	"github.com/deploylab/deploylab/observe"
)

// DefaultUnits are the unit globs the probe always reports.
var DefaultUnits = []string{"pm2-*.service", "deploylab-*.service"}

// ProbeOptions returns what observe must gather for the rubric's checks:
// every part, the default units, the checks' ports, paths, files, units and
// commands (each command reported under CommandKey(command)).
func (r *Rubric) ProbeOptions() observe.Options {
	o := observe.Options{Units: slices.Clone(DefaultUnits)}
	r.walk(func(c *Check) {
		if c.Port != 0 && !slices.Contains(o.Ports, c.Port) {
			o.Ports = append(o.Ports, c.Port)
		}
		if p, ok := c.Params.(prober); ok {
			p.probe(&o)
		}
	})
	if len(o.Paths) == 0 {
		o.Paths = []string{"/", "/api/50"}
	}
	slices.Sort(o.Ports)
	return o
}

// ParseProbe reads the probe's output into facts (Reachable is set; Host is
// left to the caller). Output cut short (no end marker) is parsed as far as
// it goes and noted.
func ParseProbe(out []byte) (HostFacts, error) {
	h, err := observe.Parse(out)
	if err != nil {
		return HostFacts{}, err
	}
	return FactsOf(h), nil
}

// FactsOf is the facts the checks read from what observe saw.
func FactsOf(h observe.Host) HostFacts {
	uid := h.UID
	if uid < 0 {
		uid = 0
	}
	return HostFacts{
		Reachable:    true,
		ProbeVersion: h.ProbeVersion,
		Hostname:     h.Hostname,
		User:         h.User,
		UID:          uid,
		Kernel:       h.Kernel,
		OS:           h.OSName,
		CPUs:         h.CPUs,
		Listeners:    h.Listeners,
		Processes:    h.Processes,
		HTTP:         h.HTTP,
		Files:        h.Files,
		PM2:          h.PM2,
		PM2Dumps:     h.PM2Dumps,
		Units:        h.Units,
		Tools:        h.Tools,
		History:      h.History,
		Blocking:     h.Blocking,
		Commands:     h.Commands,
		MachineID:    h.MachineID,
		HostKeys:     h.HostKeys,
		HistoryFiles: h.HistoryFiles,
		Notes:        h.Notes,
	}
}
