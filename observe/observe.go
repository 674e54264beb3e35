// Package observe gathers what a host shows — facts (OS, CPUs, memory, user,
// sudo, disk), processes, listening sockets, systemd units, PM2 daemons and
// their saved lists, tools and their versions, project files, shell history,
// HTTP answers from the host to itself, commands' output — in one round trip,
// and parses it. deploy's facts task, bench, ls and grade all read a host
// through it.
//
// One script (observe.sh, embedded) prints every part as a marked section;
// Parse reads them with one parser per format (ParseProcesses, ParseSS,
// ParseProcNet, ParsePM2, ParseUnits, ParseHistory, ParseTools, the facts'
// key=value lines), each fuzz-tested: the host is not trusted, so no output
// makes a parser panic, and everything kept is bounded (see the Max*
// constants; what is dropped is said in Notes).
//
// Programs are run from system directories only: the script sets PATH to
// /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin and runs ss,
// ps, systemctl, curl... from it, never from the caller's $PATH or a home.
// Tools found elsewhere — on the caller's PATH, in a home (nvm's node, npm
// -g into ~/.npm-global, a project's node_modules/.bin/loadtest) — are
// reported, system directories first, with the version read from their
// package.json or their nvm path, not by running them. The one
// program run from a home is a PM2 daemon's own pm2 (next to the node that
// runs it, as nvm installs it), for `pm2 jlist`, and only as the daemon's
// user (runuser), never as root: a root-owned daemon is read only with a pm2
// from a system directory (/usr/bin, /usr/local/bin,
// /usr/lib/node_modules/pm2, /usr/local/lib/node_modules/pm2).
package observe

import (
	"bytes"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed observe.sh
var script []byte

// Part is a part of what the script can gather.
type Part string

// The parts. The meta facts (host, OS, CPUs, memory, user, sudo) are
// always gathered.
const (
	PartFacts     Part = "facts"     // + free disk space (/ and Options.Dirs)
	PartListeners Part = "listeners" // ss -ltnp, or /proc/net/tcp
	PartTools     Part = "tools"     // node, npm, pm2, loadtest, curl... and their versions
	PartProjTools Part = "projtools" // + tools installed in projects (node_modules/.bin)
	PartProcesses Part = "processes" // ps
	PartPM2       Part = "pm2"       // pm2 jlist of every daemon, dump.pm2
	PartUnits     Part = "units"     // systemctl show of Options.Units
	PartFiles     Part = "files"     // project files and Options.Files
	PartHistory   Part = "history"   // shell history lines about the practice
	PartHTTP      Part = "http"      // GET Options.Paths on the app ports; blocking experiment
	PartCommands  Part = "commands"  // Options.Commands
)

// FactsParts are what deploy and bench need: facts, listeners, tools.
var FactsParts = []Part{PartFacts, PartListeners, PartTools}

// Command is a command the script runs and reports under Name.
type Command struct {
	Name, Run string
}

// Options say what to gather. The zero value gathers everything, probing
// "/" and "/api/50" on every app port.
type Options struct {
	// Parts to gather; nil means all of them.
	Parts []Part
	// Dirs are directories whose free space to measure besides / (PartFacts).
	Dirs []string
	// Paths to GET on every app port.
	Paths []string
	// Ports to probe besides the app ports found; with OnlyPorts, only these.
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
	// Commands are shell commands to run (as the script's user).
	Commands []Command
	// Search lists the directories to look for project files in (default:
	// the homes, /srv, /opt, /var/www).
	Search      []string
	MaxFiles    int
	MaxBytes    int
	HTTPTimeout time.Duration
}

// quote quotes s for a POSIX shell.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Script returns the script, ready to be fed to `sh -s` on a host: the
// options as variable assignments, then the embedded observe.sh.
func Script(o Options) []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n")
	set := func(name, value string) {
		fmt.Fprintf(&b, "%s=%s\n", name, quote(value))
	}
	ints := func(v []int) string {
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, " ")
	}
	if len(o.Parts) > 0 {
		parts := make([]string, len(o.Parts))
		for i, p := range o.Parts {
			parts[i] = string(p)
		}
		set("DL_PARTS", strings.Join(parts, " "))
	}
	if len(o.Dirs) > 0 {
		set("DL_DIRS", strings.Join(o.Dirs, " "))
	}
	if len(o.Paths) > 0 {
		set("DL_PATHS", strings.Join(o.Paths, " "))
	}
	if len(o.Ports) > 0 {
		set("DL_PORTS", ints(o.Ports))
	}
	if o.OnlyPorts {
		set("DL_ONLY_PORTS", "1")
	}
	if o.BlockHeavy != "" {
		set("DL_BLOCK_HEAVY", o.BlockHeavy)
		if o.BlockShort != "" {
			set("DL_BLOCK_SHORT", o.BlockShort)
		}
		if len(o.BlockPorts) > 0 {
			set("DL_BLOCK_PORTS", ints(o.BlockPorts))
		}
	}
	if len(o.Files) > 0 {
		set("DL_FILES", strings.Join(o.Files, " "))
	}
	if len(o.Units) > 0 {
		set("DL_UNITS", strings.Join(o.Units, " "))
	}
	if len(o.Search) > 0 {
		set("DL_SEARCH", strings.Join(o.Search, " "))
	}
	if o.MaxFiles > 0 {
		set("DL_MAXFILES", strconv.Itoa(o.MaxFiles))
	}
	if o.MaxBytes > 0 {
		set("DL_MAXBYTES", strconv.Itoa(o.MaxBytes))
	}
	if o.HTTPTimeout > 0 {
		set("DL_HTTP_TIMEOUT", strconv.Itoa(max(1, int(o.HTTPTimeout.Round(time.Second)/time.Second))))
	}
	if len(o.Commands) > 0 {
		set("DL_CMDS", strconv.Itoa(len(o.Commands)))
		for i, c := range o.Commands {
			set(fmt.Sprintf("DL_CMD_%d_NAME", i+1), c.Name)
			set(fmt.Sprintf("DL_CMD_%d", i+1), c.Run)
		}
	}
	b.Write(script)
	return b.Bytes()
}

// CommandLine returns a command line that runs the script with the
// options: "sh -c '<script>'", for a runner that takes one command.
func CommandLine(o Options) string {
	return "sh -c " + quote(string(Script(o)))
}
