package checks

import "strings"

// KindTool: one of the named tools is installed (loadtest, loadgen…).
const KindTool Kind = "tool"

func init() {
	register(KindTool, "one of the named tools is installed (loadtest, loadgen…)", func() Params { return &toolCheck{} })
}

// toolCheck passes when any of Tools is installed on the host.
type toolCheck struct {
	Tools []string
}

func (t *toolCheck) decode(d *decoder) { d.strList("any", &t.Tools, true) }

func (t *toolCheck) describe(add func(k, v string)) { add("any", strings.Join(t.Tools, ",")) }

func (t *toolCheck) eval(e *env, _ *Check) Result {
	for _, want := range t.Tools {
		for _, tool := range e.f.Tools {
			if strings.EqualFold(tool.Name, want) {
				ev := tool.Name
				if tool.Version != "" {
					ev += " " + tool.Version
				}
				if tool.Path != "" {
					ev += " (" + tool.Path + ")"
				}
				return pass(ev)
			}
		}
	}
	var have []string
	for _, tool := range e.f.Tools {
		have = append(have, tool.Name)
	}
	return failed("instalado: "+strings.Join(have, ", "), "no está instalado ninguno de: %s", strings.Join(t.Tools, ", "))
}
