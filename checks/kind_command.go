package checks

import (
	"github.com/deploylab/deploylab/observe"

	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
)

// KindCommand: a shell command the probe runs on the host: exit status, output regex.
const KindCommand Kind = "command"

func init() {
	register(KindCommand, "a shell command the probe runs on the host: exit status, output regex", func() Params { return &commandCheck{} })
}

// commandCheck has the probe run Run (with sh, as the probe's user) and
// passes when it exits with Exit and its output (stdout and stderr, the
// first 4 KiB, trailing newlines removed) matches Output. With neither given,
// exit 0 is expected.
type commandCheck struct {
	Run      string
	Exit     *int
	Output   string
	outputRe *regexp.Regexp
}

func (c *commandCheck) decode(d *decoder) {
	d.str("run", &c.Run, true)
	var exit int
	if d.integer("exit", &exit, true) {
		c.Exit = &exit
	}
	d.regexp("output", &c.Output, &c.outputRe, false)
	if d.ok() && c.Exit == nil && c.outputRe == nil {
		zero := 0
		c.Exit = &zero
	}
}

func (c *commandCheck) describe(add func(k, v string)) {
	add("run", c.Run)
	if c.Exit != nil && (*c.Exit != 0 || c.Output != "") {
		add("exit", strconv.Itoa(*c.Exit))
	}
	add("output", c.Output)
}

func (c *commandCheck) probe(o *observe.Options) { o.Commands = addCommand(o.Commands, c.Run) }

// CommandKey is the name under which the probe reports the output of a
// command the rubric asked for.
func CommandKey(run string) string {
	h := fnv.New32a()
	h.Write([]byte(run))
	return fmt.Sprintf("c%08x", h.Sum32())
}

func (c *commandCheck) eval(e *env, _ *Check) Result {
	key := CommandKey(c.Run)
	for _, r := range e.f.Commands {
		if r.Name != key {
			continue
		}
		ev := fmt.Sprintf("$ %s → salida %d «%s»", clip(c.Run, 60), r.Exit, clip(r.Output, 100))
		if c.Exit != nil && r.Exit != *c.Exit {
			return failed(ev, "se esperaba la salida %d", *c.Exit)
		}
		if c.outputRe != nil && !c.outputRe.MatchString(strings.TrimRight(r.Output, "\n")) {
			return failed(ev, "la salida no casa con /%s/", c.Output)
		}
		return pass(ev)
	}
	return errorf("el sondeo no ejecutó «%s»", clip(c.Run, 60))
}
