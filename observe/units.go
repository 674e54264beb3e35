package observe

import (
	"strconv"
	"strings"
)

// ParseUnits reads `systemctl show -p ...` of several units: blocks of
// Key=Value lines separated by a blank line. At most MaxUnits are kept.
func ParseUnits(body string) []Unit {
	var out []Unit
	for block := range strings.SplitSeq(strings.ReplaceAll(body, "\r", ""), "\n\n") {
		if len(out) >= MaxUnits {
			break
		}
		var u Unit
		for l := range strings.SplitSeq(block, "\n") {
			k, v, _ := strings.Cut(l, "=")
			switch k {
			case "Id":
				u.Name = clip(v, MaxName)
			case "LoadState":
				u.Load = clip(v, MaxName)
			case "ActiveState":
				u.Active = clip(v, MaxName)
			case "SubState":
				u.Sub = clip(v, MaxName)
			case "UnitFileState":
				u.Enabled = clip(v, MaxName)
			case "User":
				u.User = clip(v, MaxName)
			case "ExecStart":
				u.ExecStart = clip(ExecStart(v), MaxField)
			case "MainPID":
				u.MainPID, _ = strconv.Atoi(v)
			case "NRestarts":
				u.Restarts, _ = strconv.Atoi(v)
			case "ActiveEnterTimestampMonotonic":
				u.ActiveSince, _ = strconv.ParseInt(v, 10, 64)
			case "ControlGroup":
				u.ControlGroup = clip(v, MaxField)
			case "RuntimeDirectory":
				u.RuntimeDirectory = clip(v, MaxField)
			}
		}
		if u.Name != "" {
			out = append(out, u)
		}
	}
	return out
}

// ExecStart pulls the command line out of systemctl show's
// "{ path=/x ; argv[]=/x -a ; ignore_errors=no ; … }".
func ExecStart(v string) string {
	if _, after, ok := strings.Cut(v, "argv[]="); ok {
		a, _, _ := strings.Cut(after, " ;")
		return strings.TrimSpace(a)
	}
	return strings.TrimSpace(v)
}
