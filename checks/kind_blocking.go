package checks

import (
	"github.com/deploylab/deploylab/observe"

	"fmt"
	"strconv"
	"strings"
)

// KindBlocking: a short request stays fast while a heavy one runs (the browser-tabs test).
const KindBlocking Kind = "blocking"

func init() {
	register(KindBlocking, "a short request stays fast while a heavy one runs (the browser-tabs test)", func() Params { return &blockingCheck{} })
}

// DefaultHeavyPath is the blocking experiment's heavy request: about 5 s of
// work for the practice's app.
const DefaultHeavyPath = "/api/5000000000"

// blockingCheck reads the probe's blocking experiment: Heavy is sent first,
// Short while it runs; it passes when Short answers within MaxMS (1000 ms
// when not given).
type blockingCheck struct {
	Heavy string
	Short string
	MaxMS float64
}

func (b *blockingCheck) decode(d *decoder) {
	d.target(ServerCluster)
	b.Heavy, b.Short = DefaultHeavyPath, "/"
	d.urlPath("heavy", &b.Heavy, false)
	d.urlPath("short", &b.Short, false)
	d.positive("max_ms", &b.MaxMS)
}

func (b *blockingCheck) describe(add func(k, v string)) {
	if b.MaxMS > 0 {
		add("max_ms", strconv.FormatFloat(b.MaxMS, 'f', -1, 64))
	}
	add("heavy", b.Heavy)
	add("short", b.Short)
}

func (b *blockingCheck) probe(o *observe.Options) { o.BlockHeavy, o.BlockShort = b.Heavy, b.Short }

func (b *blockingCheck) eval(e *env, c *Check) Result {
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	limit := b.MaxMS
	if limit == 0 {
		limit = 1000
	}
	var fails, errs []string
	for _, s := range servers {
		var p *BlockingProbe
		for i := range e.f.Blocking {
			if e.f.Blocking[i].Port == s.Port {
				p = &e.f.Blocking[i]
			}
		}
		if p == nil {
			errs = append(errs, fmt.Sprintf("el sondeo no hizo la prueba de bloqueo en el puerto %d", s.Port))
			continue
		}
		if p.Error != "" {
			errs = append(errs, fmt.Sprintf("puerto %d: %s", s.Port, p.Error))
			continue
		}
		heavy := fmt.Sprintf("GET :%d%s → %d en %s", s.Port, p.HeavyPath, p.HeavyStatus, fmtMillis(p.HeavyMillis))
		if p.HeavyStatus == 0 {
			heavy = fmt.Sprintf("GET :%d%s sin terminar tras %s", s.Port, p.HeavyPath, fmtMillis(p.HeavyMillis))
		}
		short := fmt.Sprintf("GET :%d%s → %d en %s", s.Port, p.ShortPath, p.ShortStatus, fmtMillis(p.ShortMillis))
		if p.ShortStatus == 0 {
			short = fmt.Sprintf("GET :%d%s sin respuesta tras %s", s.Port, p.ShortPath, fmtMillis(p.ShortMillis))
		}
		ev := fmt.Sprintf("petición pesada %s; corta, enviada %s después: %s", heavy, fmtMillis(p.OffsetMillis), short)
		if p.ShortStatus == 0 || p.ShortMillis > limit {
			fails = append(fails, ev)
			continue
		}
		if p.HeavyStatus != 0 && p.HeavyMillis <= p.OffsetMillis+p.ShortMillis {
			errs = append(errs, ev+": no concluyente, la petición pesada terminó antes que la corta")
			continue
		}
		return pass(ev + " — " + s.Describe())
	}
	if len(fails) > 0 {
		return failed(strings.Join(fails, "; "), "la petición corta esperó a la pesada (más de %s): el servidor se bloquea", fmtMillis(limit))
	}
	return errorf("%s", strings.Join(errs, "; "))
}
