package checks

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KindProcess: a running process whose command line (and user) match.
const KindProcess Kind = "process"

func init() {
	register(KindProcess, "a running process whose command line (and user) match", func() Params { return &processCheck{} })
}

// processCheck passes when at least Min processes match Cmdline (and User).
type processCheck struct {
	Cmdline   string
	User      string
	Min       int
	cmdlineRe *regexp.Regexp
	userRe    *regexp.Regexp
}

func (p *processCheck) decode(d *decoder) {
	d.regexp("cmdline", &p.Cmdline, &p.cmdlineRe, true)
	d.regexp("user", &p.User, &p.userRe, false)
	p.Min = 1
	d.integer("min", &p.Min, false)
}

func (p *processCheck) describe(add func(k, v string)) {
	add("cmdline", p.Cmdline)
	add("user", p.User)
	if p.Min != 1 {
		add("min", strconv.Itoa(p.Min))
	}
}

func procLine(p Process) string {
	return fmt.Sprintf("pid %d %s: %s", p.PID, p.User, clip(p.Cmdline, 100))
}

func (p *processCheck) eval(e *env, _ *Check) Result {
	if len(e.f.Processes) == 0 {
		return errorf("el sondeo no obtuvo la lista de procesos")
	}
	var lines []string
	for _, pr := range e.f.Processes {
		if p.cmdlineRe.MatchString(pr.Cmdline) && (p.userRe == nil || p.userRe.MatchString(pr.User)) {
			lines = append(lines, procLine(pr))
		}
	}
	ev := strings.Join(firstN(lines, 3), "; ")
	if len(lines) >= p.Min && len(lines) > 0 {
		return pass(ev)
	}
	if len(lines) == 0 {
		return failed("ningún proceso casa con /"+p.Cmdline+"/", "el proceso no está en ejecución")
	}
	return failed(ev, "%s, %s", nouns(len(lines), "proceso", "procesos"), expected("al menos", p.Min))
}
