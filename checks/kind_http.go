package checks

import (
	"github.com/deploylab/deploylab/observe"

	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KindHTTP: GET a path on an app server: status, body regex, latency.
const KindHTTP Kind = "http"

func init() {
	register(KindHTTP, "GET a path on an app server: status, body regex, latency", func() Params { return &httpCheck{} })
}

// httpCheck GETs Path on the servers the check is about (the probe made the
// request) and passes when one answers Status with a body matching Body
// within MaxMS.
type httpCheck struct {
	Path   string
	Status int
	Body   string
	MaxMS  float64 // 0: no latency bound
	bodyRe *regexp.Regexp
}

func (h *httpCheck) decode(d *decoder) {
	d.target(ServerAny)
	d.urlPath("path", &h.Path, true)
	h.Status = 200
	d.integer("status", &h.Status, false)
	d.regexp("body", &h.Body, &h.bodyRe, false)
	d.positive("max_ms", &h.MaxMS)
}

func (h *httpCheck) describe(add func(k, v string)) {
	add("path", h.Path)
	add("status", strconv.Itoa(h.Status))
	add("body", h.Body)
	if h.MaxMS > 0 {
		add("max_ms", strconv.FormatFloat(h.MaxMS, 'f', -1, 64))
	}
}

func (h *httpCheck) probe(o *observe.Options) { o.Paths = addUnique(o.Paths, h.Path) }

// ErrNoHTTPClient is the HTTPProbe.Error the probe reports when the host had
// no way to make a request (no curl, wget or bash).
const ErrNoHTTPClient = "no http client on the host"

func describeHTTP(h HTTPProbe) string {
	s := fmt.Sprintf("GET :%d%s → ", h.Port, h.Path)
	if h.Status == 0 {
		return s + "sin respuesta (" + h.Error + ")"
	}
	s += strconv.Itoa(h.Status) + " «" + clip(h.Body, 60) + "»"
	if h.Millis >= 0 {
		s += " en " + fmtMillis(h.Millis)
	}
	return s
}

func (h *httpCheck) eval(e *env, c *Check) Result {
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	var fails, errs []string
	for _, s := range servers {
		p, ok := e.f.HTTPAt(s.Port, h.Path)
		if !ok {
			errs = append(errs, fmt.Sprintf("el sondeo no pidió GET %s en el puerto %d", h.Path, s.Port))
			continue
		}
		if p.Status == 0 && p.Error == ErrNoHTTPClient {
			errs = append(errs, "el host no tiene curl, wget ni bash para hacer peticiones")
			continue
		}
		ev := describeHTTP(p)
		switch {
		case p.Status != h.Status:
			if p.Status == 0 {
				fails = append(fails, ev)
			} else {
				fails = append(fails, fmt.Sprintf("%s: se esperaba el estado %d", ev, h.Status))
			}
		case h.bodyRe != nil && !h.bodyRe.MatchString(p.Body):
			fails = append(fails, fmt.Sprintf("%s: la respuesta no casa con /%s/", ev, h.Body))
		case h.MaxMS > 0 && (p.Millis < 0 || p.Millis > h.MaxMS):
			fails = append(fails, fmt.Sprintf("%s: más de %s", ev, fmtMillis(h.MaxMS)))
		default:
			return pass(ev + " — " + s.Describe())
		}
	}
	if len(fails) == 0 {
		return errorf("%s", strings.Join(errs, "; "))
	}
	return failed(strings.Join(fails, "; "), "respuesta incorrecta")
}
