package observe

import (
	"math"
	"strconv"
	"strings"
)

// ErrNoHTTPClient is the error of an HTTP probe on a host with no HTTP
// client at all (no curl, wget or bash).
const ErrNoHTTPClient = "no http client on the host"

// ParseResult reads the script's "status ms method error…" result of one
// request.
func ParseResult(r string) (status int, ms float64, method, errText string) {
	fs := strings.SplitN(strings.TrimSpace(clip(r, MaxField)), " ", 4)
	if len(fs) < 3 {
		return 0, -1, "", "no result"
	}
	status, _ = strconv.Atoi(fs[0])
	ms, ok := finite(fs[1])
	if !ok {
		ms = -1
	}
	method = clip(fs[2], MaxName)
	if len(fs) == 4 {
		errText = strings.TrimSpace(fs[3])
	}
	if method == "none" {
		errText = ErrNoHTTPClient
	}
	if status == 0 && errText == "" {
		errText = "sin respuesta"
	}
	return status, ms, method, errText
}

func parseBlocking(attrs map[string]string) BlockingProbe {
	b := BlockingProbe{HeavyPath: clip(attrs["heavy"], MaxField), ShortPath: clip(attrs["short"], MaxField)}
	b.Port, _ = strconv.Atoi(attrs["port"])
	b.OffsetMillis, _ = finite(attrs["offset"])
	var e1, m string
	b.HeavyStatus, b.HeavyMillis, m, e1 = ParseResult(attrs["heavy_result"])
	b.ShortStatus, b.ShortMillis, _, _ = ParseResult(attrs["short_result"])
	if m == "none" || b.HeavyMillis < 0 || b.ShortMillis < 0 {
		b.Error = "no se pudo medir el tiempo de las peticiones en el host"
	} else if b.HeavyStatus == 0 && b.HeavyMillis < 1000 {
		b.Error = "la petición pesada no obtuvo respuesta: " + e1
	}
	return b
}

// finite parses a float that is a number (not NaN nor infinite).
func finite(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
