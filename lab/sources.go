package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// AptSource is one "deb" entry of this machine's apt configuration.
type AptSource struct {
	URI        string
	Suites     []string
	Components []string
}

// aptSources reads the apt sources of the machine whose /etc is at etc
// (one-line *.list files and deb822 *.sources files, in apt's order) and
// returns the enabled "deb" entries. Files with other suffixes (for example
// "x.list.disabled") are ignored, as apt ignores them.
func aptSources(etc string) ([]AptSource, error) {
	var out []AptSource
	main := filepath.Join(etc, "apt", "sources.list")
	if b, err := os.ReadFile(main); err == nil {
		out = append(out, parseOneLine(b)...)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	dir := filepath.Join(etc, "apt", "sources.list.d")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		var parse func([]byte) []AptSource
		switch {
		case strings.HasSuffix(n, ".list"):
			parse = parseOneLine
		case strings.HasSuffix(n, ".sources"):
			parse = parseDeb822
		default:
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("read apt sources: %w", err)
		}
		out = append(out, parse(b)...)
	}
	return out, nil
}

// parseOneLine parses the one-line format: "deb [opts] uri suite comp...".
func parseOneLine(b []byte) []AptSource {
	var out []AptSource
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options: up to the field ending with "]".
			i := 0
			for i < len(f) && !strings.HasSuffix(f[i], "]") {
				i++
			}
			if i >= len(f) {
				continue
			}
			f = f[i+1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, AptSource{URI: f[0], Suites: []string{f[1]}, Components: f[2:]})
	}
	return out
}

// parseDeb822 parses the deb822 format: stanzas separated by blank lines,
// fields "Types", "URIs", "Suites", "Components", "Enabled".
func parseDeb822(b []byte) []AptSource {
	var out []AptSource
	flush := func(fields map[string]string) {
		if len(fields) == 0 {
			return
		}
		if strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			return
		}
		hasDeb := false
		for _, t := range strings.Fields(fields["types"]) {
			if t == "deb" {
				hasDeb = true
			}
		}
		if !hasDeb {
			return
		}
		suites := strings.Fields(fields["suites"])
		comps := strings.Fields(fields["components"])
		for _, u := range strings.Fields(fields["uris"]) {
			if len(suites) == 0 {
				continue
			}
			out = append(out, AptSource{URI: u, Suites: suites, Components: comps})
		}
	}
	fields := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush(fields)
			fields = map[string]string{}
			last = ""
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // continuation
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		fields[last] = strings.TrimSpace(v)
	}
	flush(fields)
	return out
}

// debianMirror picks, among the sources, the mirror that serves suite with
// the main component: the URI debootstrap is given. It also returns every
// source line for that suite family (suite, suite-updates, suite-security)
// for the image's own sources.list, in one-line format.
func debianMirror(srcs []AptSource, suite string) (mirror string, lines []string, err error) {
	for _, s := range srcs {
		for _, su := range s.Suites {
			if su != suite && !strings.HasPrefix(su, suite+"-") && !strings.HasPrefix(su, suite+"/") {
				continue
			}
			comps := s.Components
			if len(comps) == 0 {
				comps = []string{"main"}
			}
			lines = append(lines, fmt.Sprintf("deb %s %s %s", s.URI, su, strings.Join(comps, " ")))
			if su == suite && mirror == "" && contains(comps, "main") {
				mirror = s.URI
			}
		}
	}
	if mirror == "" {
		return "", nil, fmt.Errorf("no apt source for debian %s main in /etc/apt/sources.list or /etc/apt/sources.list.d", suite)
	}
	return mirror, lines, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// aptConfSnippets returns the files of etc/apt/apt.conf.d that change how
// apt fetches (proxies, Valid-Until and date checks): name → content. They are
// copied into the image so that apt inside it reaches the same mirror the
// same way this machine does.
func aptConfSnippets(etc string) (map[string][]byte, error) {
	dir := filepath.Join(etc, "apt", "apt.conf.d")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read apt config: %w", err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read apt config: %w", err)
		}
		s := string(b)
		if strings.Contains(s, "Check-Valid-Until") || strings.Contains(s, "Check-Date") ||
			strings.Contains(s, "::Proxy") || strings.Contains(s, "::proxy") {
			out[e.Name()] = b
		}
	}
	return out, nil
}
