package observe

import "strings"

// ParseTools reads the tools section: "name\tversion\tpath" lines. A path
// listed twice is kept once.
func ParseTools(body string) []Tool {
	var out []Tool
	seen := map[string]bool{}
	for _, l := range lines(body) {
		if len(out) >= MaxTools {
			break
		}
		p := strings.SplitN(l, "\t", 3)
		if len(p) != 3 || seen[p[2]] {
			continue
		}
		seen[p[2]] = true
		out = append(out, Tool{Name: clip(p[0], MaxName), Version: clip(p[1], MaxName), Path: clip(p[2], MaxField)})
	}
	return out
}
