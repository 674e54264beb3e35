package checks

import (
	"github.com/deploylab/deploylab/observe"

	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KindFile: a project file exists (and contains / does not contain regexes).
const KindFile Kind = "file"

func init() {
	register(KindFile, "a project file exists (and contains / does not contain regexes)", func() Params { return &fileCheck{} })
}

// fileCheck passes when at least Min of the files the probe read match the
// path glob PathGlob, each containing every Contains regex and none of
// NotContains.
type fileCheck struct {
	PathGlob    string
	Contains    []string
	NotContains []string
	Min         int
	pathRe      *regexp.Regexp
	containsRe  []*regexp.Regexp
	notRe       []*regexp.Regexp
}

func (f *fileCheck) decode(d *decoder) {
	if d.str("path", &f.PathGlob, true) {
		var err error
		if f.pathRe, err = globRegexp(f.PathGlob); err != nil {
			d.failf(d.nodeOf("path"), "check %q: bad path pattern %q: %v", d.c.ID, f.PathGlob, err)
		}
	}
	d.regexList("contains", &f.Contains, &f.containsRe)
	d.regexList("not_contains", &f.NotContains, &f.notRe)
	f.Min = 1
	d.integer("min", &f.Min, false)
}

func (f *fileCheck) describe(add func(k, v string)) {
	add("path", f.PathGlob)
	for _, s := range f.Contains {
		add("contains", s)
	}
	for _, s := range f.NotContains {
		add("not_contains", s)
	}
	if f.Min != 1 {
		add("min", strconv.Itoa(f.Min))
	}
}

// probe asks the probe to read an absolute, simple glob even when it lies
// outside the directories it searches.
func (f *fileCheck) probe(o *observe.Options) {
	if strings.HasPrefix(f.PathGlob, "/") && !strings.Contains(f.PathGlob, "**") && !strings.ContainsAny(f.PathGlob, "{'\"") {
		o.Files = addUnique(o.Files, f.PathGlob)
	}
}

// lineOf returns the (trimmed) line of s where re matches, with its number.
func lineOf(s string, re *regexp.Regexp) string {
	loc := re.FindStringIndex(s)
	if loc == nil {
		return ""
	}
	start := strings.LastIndexByte(s[:loc[0]], '\n') + 1
	end := strings.IndexByte(s[loc[0]:], '\n')
	if end < 0 {
		end = len(s)
	} else {
		end += loc[0]
	}
	n := strings.Count(s[:start], "\n") + 1
	return fmt.Sprintf("línea %d: %s", n, clip(s[start:end], 100))
}

func (f *fileCheck) eval(e *env, _ *Check) Result {
	var ok, near []string
	for _, file := range e.f.Files {
		if !f.pathRe.MatchString(file.Path) {
			continue
		}
		missing := ""
		for i, re := range f.containsRe {
			if !re.MatchString(file.Content) {
				missing = fmt.Sprintf("%s: no contiene /%s/", file.Path, f.Contains[i])
				if file.Truncated {
					missing += " (solo se leyó el principio)"
				}
				break
			}
		}
		if missing == "" {
			for i, re := range f.notRe {
				if re.MatchString(file.Content) {
					missing = fmt.Sprintf("%s: contiene /%s/ (%s)", file.Path, f.NotContains[i], lineOf(file.Content, re))
					break
				}
			}
		}
		if missing != "" {
			near = append(near, missing)
			continue
		}
		ev := file.Path
		if len(f.containsRe) > 0 {
			ev += " " + lineOf(file.Content, f.containsRe[0])
		}
		ok = append(ok, ev)
	}
	if len(ok) >= f.Min && len(ok) > 0 {
		return pass(strings.Join(firstN(ok, 3), "; "))
	}
	if len(ok) > 0 {
		return failed(strings.Join(firstN(ok, 3), "; "), "%s, %s", nouns(len(ok), "fichero", "ficheros"), expected("al menos", f.Min))
	}
	if len(near) > 0 {
		return failed(strings.Join(firstN(near, 4), "; "), "ningún fichero %s con el contenido esperado", f.PathGlob)
	}
	return failed(nouns(len(e.f.Files), "fichero de proyecto visto", "ficheros de proyecto vistos"), "ningún fichero %s", f.PathGlob)
}

// globRegexp turns a path glob into a regexp: a pattern without a slash
// matches a file's base name; with a slash, the whole path ("*" does not cross
// "/", "**" does). A pattern may also be a regexp written as re:….
func globRegexp(g string) (*regexp.Regexp, error) {
	if src, ok := strings.CutPrefix(g, "re:"); ok {
		return regexp.Compile(src)
	}
	if g == "" {
		return nil, errors.New("empty pattern")
	}
	var b strings.Builder
	if strings.Contains(g, "/") {
		b.WriteString("^")
	} else {
		b.WriteString("(^|/)")
	}
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			if i+1 < len(g) && g[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '{':
			j := strings.IndexByte(g[i:], '}')
			if j < 0 {
				return nil, errors.New("unclosed {")
			}
			alts := strings.Split(g[i+1:i+j], ",")
			for k := range alts {
				alts[k] = regexp.QuoteMeta(alts[k])
			}
			b.WriteString("(" + strings.Join(alts, "|") + ")")
			i += j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
