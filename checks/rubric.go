package checks

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/deploylab/deploylab/internal/fail"
)

// Server roles a check can select.
const (
	ServerAny     = "any"
	ServerSingle  = "single"
	ServerCluster = "cluster"
)

// Count is a number that may be written as "cpus" (the host's CPU count) or
// "cpus-K" (K fewer, at least 1: what `pm2 start -i -1` starts).
type Count struct {
	// N is the number, or with CPUs the offset (0 or -K).
	N    int
	CPUs bool
}

// Resolve returns the count for a host with cpus CPUs; ok is false when the
// count is "cpus" and the CPU count is unknown.
func (c Count) Resolve(cpus int) (n int, ok bool) {
	if c.CPUs {
		return max(cpus+c.N, 1), cpus > 0
	}
	return c.N, true
}

func (c Count) String() string {
	if c.CPUs {
		if c.N < 0 {
			return "cpus" + strconv.Itoa(c.N)
		}
		return "cpus"
	}
	return strconv.Itoa(c.N)
}

// Rubric is a decoded, validated rubric.
type Rubric struct {
	// File is where the rubric was read from (for messages).
	File    string
	Version int
	Title   string
	Total   float64
	// AppProcess matches the command line of a process that serves the app
	// (node, PM2's daemon, deploylab's binaries…).
	AppProcess string
	Criteria   []Criterion

	appRe *regexp.Regexp
}

// Criterion is one line of the grade: automatic (scored from checks) or
// manual (scored by the teacher).
type Criterion struct {
	ID          string
	Name        string
	Points      float64
	Manual      bool
	Description string
	// Question is what the student had to answer (manual criteria).
	Question string
	// Guide helps the teacher mark it: what a good answer says.
	Guide  string
	Checks []Check
	// Document is what the student's document must show (nil: nothing).
	Document *DocumentPart
	Line     int
}

// Check is one declared expectation: the keys every check has, and the
// parameters of its kind (Params, decoded by the kind's file kind_*.go).
type Check struct {
	ID     string
	Name   string
	Kind   Kind
	Weight float64
	Line   int

	// Server selects the server role (single, cluster, any) and Port pins a
	// port (0: any), for the kinds that are about an app server (http, port,
	// blocking, respawn, reload); empty for the others.
	Server string
	Port   int

	// Checks are the alternatives of an any_of or all_of check.
	Checks []Check

	// Partial lists the evidence of work that earns part of the check's
	// weight when the check itself fails (rubric key `partial:`): the best
	// share among the evidence checks that pass.
	Partial []Evidence

	// Params are the kind's own parameters.
	Params Params
}

// Evidence is one entry of a check's partial-credit list: a check (of any
// kind) and the share of the parent's weight it earns when it passes.
type Evidence struct {
	Share float64
	Check Check
}

// place says where a check is written: it decides which of the common keys
// it may have.
type place int

const (
	placeTop         place = iota // a criterion's check: weight, partial
	placeAlternative              // inside any_of / all_of: no weight, no partial
	placeEvidence                 // inside partial: share, no weight
	placeDocument                 // a criterion's document: checks (document kinds only): weight
)

// DefaultAppProcess is the app process pattern used when the rubric has none.
const DefaultAppProcess = `(^|/)(node|nodejs|bun|deno)(\s|$)|^PM2 v|(^|/)(sumserver|sumcluster)(\s|$)`

// LoadRubric reads and validates a rubric file. Errors are fail.Usage and name
// file:line.
func LoadRubric(path string) (*Rubric, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail.New(fail.Usage, "pass an existing rubric with --rubric", fmt.Errorf("read rubric: %w", err))
	}
	return ParseRubric(path, data)
}

// ParseRubric decodes and validates a rubric; name is used in messages.
// Unknown keys, unknown kinds, bad weights, bad regular expressions and points
// that do not add up to the total are errors with name:line (fail.Usage).
func ParseRubric(name string, data []byte) (*Rubric, error) {
	r, err := parseRubric(name, data)
	if err != nil {
		return nil, fail.New(fail.Usage, "fix the rubric (see the rubric.yaml shipped with deploylab) or pass another with --rubric", err)
	}
	return r, nil
}

type rubricParser struct {
	file string
}

func (p *rubricParser) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, args...))
}

func parseRubric(name string, data []byte) (*Rubric, error) {
	p := &rubricParser{file: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.errf(&extra, "more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: empty rubric", name)
	}
	root := doc.Content[0]
	m, err := p.mapping(root, "rubric", []string{"version", "title", "total", "app_process", "criteria"})
	if err != nil {
		return nil, err
	}
	r := &Rubric{File: name, Version: 1, AppProcess: DefaultAppProcess}
	if n := m["version"]; n != nil {
		if r.Version, err = p.integer(n, "version"); err != nil {
			return nil, err
		}
		if r.Version != 1 {
			return nil, p.errf(n, "unsupported rubric version %d (this deploylab reads version 1)", r.Version)
		}
	}
	if n := m["title"]; n != nil {
		if r.Title, err = p.str(n, "title"); err != nil {
			return nil, err
		}
	}
	tn := m["total"]
	if tn == nil {
		return nil, p.errf(root, "missing key \"total\" (the points the rubric adds up to)")
	}
	if r.Total, err = p.positive(tn, "total"); err != nil {
		return nil, err
	}
	if n := m["app_process"]; n != nil {
		if r.AppProcess, err = p.str(n, "app_process"); err != nil {
			return nil, err
		}
	}
	if r.appRe, err = p.regex(m["app_process"], r.AppProcess, "app_process"); err != nil {
		return nil, err
	}
	cn := m["criteria"]
	if cn == nil {
		return nil, p.errf(root, "missing key \"criteria\"")
	}
	if cn.Kind != yaml.SequenceNode || len(cn.Content) == 0 {
		return nil, p.errf(cn, "\"criteria\" must be a non-empty list")
	}
	ids := map[string]int{}   // id → line
	names := map[string]int{} // folded name → line
	sum := 0.0
	for _, n := range cn.Content {
		c, err := p.criterion(n)
		if err != nil {
			return nil, err
		}
		if line, dup := ids[c.ID]; dup {
			return nil, p.errf(n, "duplicate criterion id %q (also at line %d)", c.ID, line)
		}
		ids[c.ID] = n.Line
		// The name heads the criterion's column in notas.xlsx: two criteria
		// with one name would share (and overwrite) the teacher's marks.
		folded := strings.ToLower(strings.Join(strings.Fields(c.Name), " "))
		if line, dup := names[folded]; dup {
			return nil, p.errf(n, "duplicate criterion name %q (also at line %d): the names head the columns of notas.xlsx", c.Name, line)
		}
		names[folded] = n.Line
		sum += c.Points
		r.Criteria = append(r.Criteria, c)
	}
	if math.Abs(sum-r.Total) > 1e-9 {
		return nil, p.errf(tn, "criteria points add up to %s, not to the total %s", fmtNum(sum), fmtNum(r.Total))
	}
	return r, nil
}

var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (p *rubricParser) criterion(n *yaml.Node) (Criterion, error) {
	m, err := p.mapping(n, "criterion", []string{"id", "name", "points", "manual", "description", "question", "guide", "checks", "document"})
	if err != nil {
		return Criterion{}, err
	}
	c := Criterion{Line: n.Line}
	if c.ID, err = p.id(m, n, "criterion"); err != nil {
		return c, err
	}
	if m["name"] == nil {
		return c, p.errf(n, "criterion %q: missing key \"name\"", c.ID)
	}
	if c.Name, err = p.str(m["name"], "name"); err != nil {
		return c, err
	}
	if m["points"] == nil {
		return c, p.errf(n, "criterion %q: missing key \"points\"", c.ID)
	}
	if c.Points, err = p.positive(m["points"], "points"); err != nil {
		return c, err
	}
	if x := m["manual"]; x != nil {
		if c.Manual, err = p.boolean(x, "manual"); err != nil {
			return c, err
		}
	}
	for key, dst := range map[string]*string{"description": &c.Description, "question": &c.Question, "guide": &c.Guide} {
		if x := m[key]; x != nil {
			if *dst, err = p.str(x, key); err != nil {
				return c, err
			}
		}
	}
	if x := m["document"]; x != nil {
		if c.Document, err = p.document(x, c.Manual); err != nil {
			return c, err
		}
	}
	cn := m["checks"]
	switch {
	case c.Manual && cn != nil:
		return c, p.errf(cn, "criterion %q is manual: it cannot have checks", c.ID)
	case !c.Manual && cn == nil:
		return c, p.errf(n, "criterion %q: missing key \"checks\" (or say manual: true)", c.ID)
	case cn == nil:
		return c, nil
	}
	if cn.Kind != yaml.SequenceNode || len(cn.Content) == 0 {
		return c, p.errf(cn, "criterion %q: \"checks\" must be a non-empty list", c.ID)
	}
	seen := map[string]bool{}
	for _, x := range cn.Content {
		ch, err := p.check(x, placeTop)
		if err != nil {
			return c, err
		}
		if seen[ch.ID] {
			return c, p.errf(x, "criterion %q: duplicate check id %q", c.ID, ch.ID)
		}
		seen[ch.ID] = true
		c.Checks = append(c.Checks, ch)
	}
	return c, nil
}

func (p *rubricParser) id(m map[string]*yaml.Node, n *yaml.Node, what string) (string, error) {
	x := m["id"]
	if x == nil {
		return "", p.errf(n, "%s: missing key \"id\"", what)
	}
	s, err := p.str(x, "id")
	if err != nil {
		return "", err
	}
	if !idRe.MatchString(s) {
		return "", p.errf(x, "%s id %q: use lower-case letters, digits, - and _", what, s)
	}
	return s, nil
}

var commonCheckKeys = []string{"id", "name", "kind", "weight"}

// check decodes one check: the common keys here, the kind's own keys by the
// kind's decode (see kinds.go).
func (p *rubricParser) check(n *yaml.Node, at place) (Check, error) {
	if n.Kind != yaml.MappingNode {
		return Check{}, p.errf(n, "a check must be a mapping")
	}
	// Find the kind first, to know which keys are allowed.
	var kn *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			kn = n.Content[i+1]
		}
	}
	if kn == nil {
		return Check{}, p.errf(n, "check: missing key \"kind\"")
	}
	def, ok := registry[Kind(kn.Value)]
	switch {
	case (!ok || kn.Kind != yaml.ScalarNode) && at == placeDocument:
		return Check{}, p.errf(kn, "unknown document check kind %q (known: %s)", kn.Value, joinKinds(true))
	case !ok || kn.Kind != yaml.ScalarNode:
		return Check{}, p.errf(kn, "unknown check kind %q (known: %s)", kn.Value, joinKinds(false))
	case def.document && at != placeDocument:
		return Check{}, p.errf(kn, "%s is a document check kind: write it under the criterion's document: checks:", kn.Value)
	case !def.document && at == placeDocument:
		return Check{}, p.errf(kn, "%s is not a document check kind (known: %s): VM checks go in the criterion's checks:", kn.Value, joinKinds(true))
	}
	allowed := slices.Clone(commonCheckKeys)
	switch at {
	case placeTop:
		allowed = append(allowed, "partial")
	case placeEvidence:
		allowed = append(allowed, "share")
	}
	for _, k := range def.keys {
		allowed = append(allowed, k.name)
	}
	m, err := p.mapping(n, "check of kind "+string(def.kind), allowed)
	if err != nil {
		return Check{}, err
	}
	c := Check{Kind: def.kind, Line: n.Line, Weight: 1}
	if c.ID, err = p.id(m, n, "check"); err != nil {
		return c, err
	}
	if x := m["name"]; x != nil {
		if c.Name, err = p.str(x, "name"); err != nil {
			return c, err
		}
	}
	if x := m["weight"]; x != nil {
		switch at {
		case placeAlternative:
			return c, p.errf(x, "check %q: an alternative inside any_of or all_of has no weight of its own", c.ID)
		case placeEvidence:
			return c, p.errf(x, "check %q: evidence inside partial has a share, not a weight", c.ID)
		}
		if c.Weight, err = p.positive(x, "weight"); err != nil {
			return c, err
		}
	}
	c.Params = def.new()
	d := &decoder{p: p, c: &c, node: n, m: m}
	c.Params.decode(d)
	if d.err != nil {
		return c, d.err
	}
	if x := m["partial"]; x != nil {
		if c.Partial, err = p.partial(&c, x); err != nil {
			return c, err
		}
	}
	return c, nil
}

// partial decodes a check's `partial:` list: checks with a share in (0, 1).
func (p *rubricParser) partial(c *Check, x *yaml.Node) ([]Evidence, error) {
	if x.Kind != yaml.SequenceNode || len(x.Content) == 0 {
		return nil, p.errf(x, "check %q: \"partial\" must be a non-empty list of checks with a share", c.ID)
	}
	var out []Evidence
	seen := map[string]bool{}
	for _, n := range x.Content {
		ev, err := p.check(n, placeEvidence)
		if err != nil {
			return nil, err
		}
		var sn *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "share" {
				sn = n.Content[i+1]
			}
		}
		if sn == nil {
			return nil, p.errf(n, "check %q: evidence %q needs a share (the part of the weight it earns, 0 < share < 1)", c.ID, ev.ID)
		}
		share, err := p.positive(sn, "share")
		if err != nil {
			return nil, err
		}
		if share >= 1 {
			return nil, p.errf(sn, "check %q: share %s must be below 1 (a full mark is the check itself)", c.ID, sn.Value)
		}
		if seen[ev.ID] {
			return nil, p.errf(n, "check %q: duplicate evidence id %q", c.ID, ev.ID)
		}
		seen[ev.ID] = true
		out = append(out, Evidence{Share: share, Check: ev})
	}
	return out, nil
}

// mapping checks n is a mapping with only allowed keys, no duplicates.
func (p *rubricParser) mapping(n *yaml.Node, what string, allowed []string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "%s must be a mapping", what)
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			return nil, p.errf(k, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
		}
		if _, dup := m[k.Value]; dup {
			return nil, p.errf(k, "duplicate key %q in %s", k.Value, what)
		}
		m[k.Value] = v
	}
	return m, nil
}

func (p *rubricParser) scalar(n *yaml.Node, key string) error {
	if n.Kind != yaml.ScalarNode {
		return p.errf(n, "%q must be a single value", key)
	}
	return nil
}

func (p *rubricParser) str(n *yaml.Node, key string) (string, error) {
	if err := p.scalar(n, key); err != nil {
		return "", err
	}
	if n.Tag != "!!str" {
		return "", p.errf(n, "%q must be text, not %q (quote it)", key, n.Value)
	}
	return n.Value, nil
}

func (p *rubricParser) number(n *yaml.Node, key string) (float64, error) {
	if err := p.scalar(n, key); err != nil {
		return 0, err
	}
	if n.Tag != "!!int" && n.Tag != "!!float" {
		return 0, p.errf(n, "%q must be a number, not %q", key, n.Value)
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, p.errf(n, "%q must be a number, not %q", key, n.Value)
	}
	return v, nil
}

func (p *rubricParser) positive(n *yaml.Node, key string) (float64, error) {
	v, err := p.number(n, key)
	if err != nil {
		return 0, err
	}
	if v <= 0 {
		return 0, p.errf(n, "%q must be greater than 0, not %s", key, n.Value)
	}
	return v, nil
}

func (p *rubricParser) integer(n *yaml.Node, key string) (int, error) {
	if err := p.scalar(n, key); err != nil {
		return 0, err
	}
	var v int
	if n.Tag != "!!int" || n.Decode(&v) != nil {
		return 0, p.errf(n, "%q must be a whole number, not %q", key, n.Value)
	}
	return v, nil
}

func (p *rubricParser) boolean(n *yaml.Node, key string) (bool, error) {
	if err := p.scalar(n, key); err != nil {
		return false, err
	}
	var v bool
	if n.Tag != "!!bool" || n.Decode(&v) != nil {
		return false, p.errf(n, "%q must be true or false, not %q", key, n.Value)
	}
	return v, nil
}

func (p *rubricParser) regex(n *yaml.Node, src, key string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, p.errf(n, "%q is not a valid regular expression: %v", key, err)
	}
	return re, nil
}

func (p *rubricParser) strList(n *yaml.Node, key string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := p.str(n, key)
		return []string{s}, err
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, p.errf(n, "%q must be a text or a non-empty list of texts", key)
	}
	var out []string
	for _, x := range n.Content {
		s, err := p.str(x, key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *rubricParser) regexList(n *yaml.Node, key string) ([]string, []*regexp.Regexp, error) {
	srcs, err := p.strList(n, key)
	if err != nil {
		return nil, nil, err
	}
	var res []*regexp.Regexp
	for i, s := range srcs {
		node := n
		if n.Kind == yaml.SequenceNode {
			node = n.Content[i]
		}
		re, err := p.regex(node, s, key)
		if err != nil {
			return nil, nil, err
		}
		res = append(res, re)
	}
	return srcs, res, nil
}

// Automatic returns the criteria scored from checks.
func (r *Rubric) Automatic() []Criterion {
	var out []Criterion
	for _, c := range r.Criteria {
		if !c.Manual {
			out = append(out, c)
		}
	}
	return out
}

// AppRe returns the compiled app process pattern.
func (r *Rubric) AppRe() *regexp.Regexp {
	if r.appRe == nil {
		r.appRe = regexp.MustCompile(r.AppProcess)
	}
	return r.appRe
}

// walk calls fn for every check, alternatives and partial evidence included.
func (r *Rubric) walk(fn func(c *Check)) {
	for i := range r.Criteria {
		for j := range r.Criteria[i].Checks {
			c := &r.Criteria[i].Checks[j]
			fn(c)
			for k := range c.Checks {
				fn(&c.Checks[k])
			}
			for k := range c.Partial {
				e := &c.Partial[k].Check
				fn(e)
				for l := range e.Checks {
					fn(&e.Checks[l])
				}
			}
		}
	}
}

func fmtNum(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
