package checks

import (
	"slices"
	"time"

	"github.com/deploylab/deploylab/observe"
)

// ProbeOptions says what the probe should look at besides what it always
// gathers. The zero value probes "/" and "/api/50" on every app port.
type ProbeOptions struct {
	// Paths to GET on every app port.
	Paths []string
	// Ports to probe besides the app ports the probe finds; with OnlyPorts,
	// only these.
	Ports     []int
	OnlyPorts bool
	// BlockHeavy enables the blocking experiment: BlockHeavy is requested
	// and, while it runs, BlockShort. BlockPorts limits it to some ports.
	BlockHeavy string
	BlockShort string
	BlockPorts []int
	// Files are absolute path globs to read besides the project files found.
	Files []string
	// Units are systemd unit names or globs to report.
	Units []string
	// Commands are shell commands to run; each is reported under
	// CommandKey(command).
	Commands []string
	// Search lists the directories to look for project files in (default:
	// the homes, /srv, /opt, /var/www).
	Search      []string
	MaxFiles    int
	MaxBytes    int
	HTTPTimeout time.Duration
}

// DefaultUnits are the unit globs the probe always reports.
var DefaultUnits = []string{"pm2-*.service", "deploylab-*.service"}

// ProbeOptions returns what the probe must observe for the rubric's checks.
func (r *Rubric) ProbeOptions() ProbeOptions {
	o := ProbeOptions{Units: slices.Clone(DefaultUnits)}
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

// Observe is what observe must gather for these options: every part.
func (o ProbeOptions) Observe() observe.Options {
	cmds := make([]observe.Command, len(o.Commands))
	for i, c := range o.Commands {
		cmds[i] = observe.Command{Name: CommandKey(c), Run: c}
	}
	return observe.Options{
		Paths: o.Paths, Ports: o.Ports, OnlyPorts: o.OnlyPorts,
		BlockHeavy: o.BlockHeavy, BlockShort: o.BlockShort, BlockPorts: o.BlockPorts,
		Files: o.Files, Units: o.Units, Commands: cmds, Search: o.Search,
		MaxFiles: o.MaxFiles, MaxBytes: o.MaxBytes, HTTPTimeout: o.HTTPTimeout,
	}
}

// ProbeScript returns the probe, ready to be fed to `sh -s` on a host
// (observe's script with o's options).
func ProbeScript(o ProbeOptions) []byte { return observe.Script(o.Observe()) }

// ErrNotProbe is returned by ParseProbe for output that is not the probe's.
var ErrNotProbe = observe.ErrNotProbe

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
