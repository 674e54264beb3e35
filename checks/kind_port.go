package checks

import (
	"fmt"
	"strings"
)

// KindPort: which processes serve an app port, and how many workers.
const KindPort Kind = "port"

func init() {
	register(KindPort, "which processes serve an app port, and how many workers", func() Params { return &portCheck{} })
}

// portCheck passes when a server the check is about has between MinWorkers
// and MaxWorkers workers (either may be "cpus").
type portCheck struct {
	MinWorkers *Count
	MaxWorkers *Count
}

func (p *portCheck) decode(d *decoder) {
	d.target(ServerAny)
	d.count("min_workers", &p.MinWorkers)
	d.count("max_workers", &p.MaxWorkers)
}

func (p *portCheck) describe(add func(k, v string)) {
	if p.MinWorkers != nil {
		add("min_workers", p.MinWorkers.String())
	}
	if p.MaxWorkers != nil {
		add("max_workers", p.MaxWorkers.String())
	}
}

func (p *portCheck) eval(e *env, c *Check) Result {
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	var fails []string
	for _, s := range servers {
		n := len(s.Workers)
		if s.Unknown {
			return Result{Outcome: Error, Evidence: s.Describe(), Reason: "no se pudo ver qué procesos sirven el puerto"}
		}
		if p.MinWorkers != nil {
			want, ok := p.MinWorkers.Resolve(e.f.CPUs)
			if !ok {
				return errorf("no se conoce el número de CPU del host")
			}
			if n < want {
				fails = append(fails, fmt.Sprintf("%s: %s, %s", s.Describe(), nouns(n, "worker", "workers"), expected("al menos", want)))
				continue
			}
		}
		if p.MaxWorkers != nil {
			want, ok := p.MaxWorkers.Resolve(e.f.CPUs)
			if !ok {
				return errorf("no se conoce el número de CPU del host")
			}
			if n > want {
				fails = append(fails, fmt.Sprintf("%s: %s, %s", s.Describe(), nouns(n, "worker", "workers"), expected("como mucho", want)))
				continue
			}
		}
		return pass(s.Describe())
	}
	return failed(strings.Join(fails, "; "), "número de workers incorrecto")
}
