package checks

import (
	"bytes"
	"errors"
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

// Kind is a check kind, as written in the rubric's `kind:` key.
type Kind string

// The check kinds.
const (
	KindHTTP     Kind = "http"     // GET a path on a server: status, body regex, latency
	KindPort     Kind = "port"     // which processes serve a port, how many workers
	KindProcess  Kind = "process"  // a process whose command line matches
	KindFile     Kind = "file"     // a file exists (and contains / does not contain)
	KindCommand  Kind = "command"  // a command the probe ran: exit status, output
	KindSystemd  Kind = "systemd"  // a systemd unit: active, enabled
	KindPM2      Kind = "pm2"      // PM2 apps from `pm2 jlist`: mode, instances, online, saved
	KindTool     Kind = "tool"     // a tool is installed (loadtest, loadgen…)
	KindHistory  Kind = "history"  // shell history shows a command was run
	KindBench    Kind = "bench"    // bench results: both servers, cluster beats single
	KindBlocking Kind = "blocking" // a short request stays fast while a heavy one runs
	KindRespawn  Kind = "respawn"  // a killed worker comes back (--active only)
	KindReload   Kind = "reload"   // a reload loses no request (--active only)
	KindAnyOf    Kind = "any_of"   // passes when one of its alternatives passes
)

// keysByKind lists the keys each kind accepts besides the common ones.
var keysByKind = map[Kind][]string{
	KindHTTP:     {"server", "port", "path", "status", "body", "max_ms"},
	KindPort:     {"server", "port", "min_workers", "max_workers"},
	KindProcess:  {"cmdline", "user", "min"},
	KindFile:     {"path", "contains", "not_contains", "min"},
	KindCommand:  {"run", "exit", "output"},
	KindSystemd:  {"unit", "active", "enabled"},
	KindPM2:      {"app", "exec_mode", "instances", "online", "saved"},
	KindTool:     {"any"},
	KindHistory:  {"pattern", "min"},
	KindBench:    {"route", "cluster_beats_single", "min_speedup"},
	KindBlocking: {"server", "port", "max_ms", "heavy", "short"},
	KindRespawn:  {"server", "port"},
	KindReload:   {"server", "port", "max_failed"},
	KindAnyOf:    {"checks"},
}

var commonCheckKeys = []string{"id", "name", "kind", "weight"}

// Kinds returns the known check kinds, sorted.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(keysByKind))
	for k := range keysByKind {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Server roles a check can select.
const (
	ServerAny     = "any"
	ServerSingle  = "single"
	ServerCluster = "cluster"
)

// Count is a number that may be written as "cpus" (the host's CPU count).
type Count struct {
	N    int
	CPUs bool
}

// Resolve returns the count for a host with cpus CPUs; ok is false when the
// count is "cpus" and the CPU count is unknown.
func (c Count) Resolve(cpus int) (n int, ok bool) {
	if c.CPUs {
		return cpus, cpus > 0
	}
	return c.N, true
}

func (c Count) String() string {
	if c.CPUs {
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
	Line   int
}

// Check is one declared expectation. Which fields are used depends on Kind;
// the decoder rejects keys that do not apply to the kind.
type Check struct {
	ID     string
	Name   string
	Kind   Kind
	Weight float64
	Line   int

	// Server selects the server role (single, cluster, any) for http, port,
	// blocking, respawn and reload; Port pins a port (0: any).
	Server string
	Port   int

	// http
	Path   string
	Status int
	Body   string
	MaxMS  float64 // http and blocking: latency bound in ms (0: none)
	bodyRe *regexp.Regexp

	// port
	MinWorkers *Count
	MaxWorkers *Count

	// process (Cmdline, User, Min); file (PathGlob, Contains, NotContains, Min);
	// history (Pattern, Min)
	Cmdline     string
	User        string
	Min         int
	PathGlob    string
	Contains    []string
	NotContains []string
	Pattern     string
	cmdlineRe   *regexp.Regexp
	userRe      *regexp.Regexp
	pathRe      *regexp.Regexp
	containsRe  []*regexp.Regexp
	notRe       []*regexp.Regexp
	patternRe   *regexp.Regexp

	// command
	Run      string
	Exit     *int
	Output   string
	outputRe *regexp.Regexp

	// systemd: Unit is a name or a glob (pm2-*.service).
	Unit    string
	Active  *bool
	Enabled *bool

	// pm2: App matches the app's name or script; ExecMode is "cluster" or
	// "fork"; Instances is the minimum number of online instances.
	App       string
	ExecMode  string
	Instances *Count
	Online    bool
	Saved     bool
	appRe     *regexp.Regexp

	// tool: any of these names installed.
	Tools []string

	// bench
	Route              string
	ClusterBeatsSingle bool
	MinSpeedup         float64

	// blocking: Heavy is sent first, Short while it runs.
	Heavy string
	Short string

	// reload
	MaxFailed int

	// any_of
	Checks []Check
}

// DefaultHeavyPath is the blocking experiment's heavy request: about 5 s of
// work for the practice's app.
const DefaultHeavyPath = "/api/5000000000"

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
	seen := map[string]bool{}
	sum := 0.0
	for _, n := range cn.Content {
		c, err := p.criterion(n)
		if err != nil {
			return nil, err
		}
		if seen[c.ID] {
			return nil, p.errf(n, "duplicate criterion id %q", c.ID)
		}
		seen[c.ID] = true
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
	m, err := p.mapping(n, "criterion", []string{"id", "name", "points", "manual", "description", "question", "guide", "checks"})
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
		ch, err := p.check(x, false)
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

func (p *rubricParser) check(n *yaml.Node, nested bool) (Check, error) {
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
	kind := Kind(kn.Value)
	extra, ok := keysByKind[kind]
	if !ok || kn.Kind != yaml.ScalarNode {
		return Check{}, p.errf(kn, "unknown check kind %q (known: %s)", kn.Value, joinKinds())
	}
	allowed := append(slices.Clone(commonCheckKeys), extra...)
	m, err := p.mapping(n, "check of kind "+string(kind), allowed)
	if err != nil {
		return Check{}, err
	}
	c := Check{Kind: kind, Line: n.Line, Weight: 1}
	if c.ID, err = p.id(m, n, "check"); err != nil {
		return c, err
	}
	if x := m["name"]; x != nil {
		if c.Name, err = p.str(x, "name"); err != nil {
			return c, err
		}
	}
	if x := m["weight"]; x != nil {
		if nested {
			return c, p.errf(x, "check %q: an alternative inside any_of has no weight of its own", c.ID)
		}
		if c.Weight, err = p.positive(x, "weight"); err != nil {
			return c, err
		}
	}
	if err := p.params(&c, m, n); err != nil {
		return c, err
	}
	return c, nil
}

// params decodes the kind-specific keys of c.
func (p *rubricParser) params(c *Check, m map[string]*yaml.Node, n *yaml.Node) error {
	var err error
	str := func(key string, dst *string) error {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.str(x, key)
		}
		return err
	}
	re := func(key string, src string, dst **regexp.Regexp) error {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.regex(x, src, key)
		}
		return err
	}
	integer := func(key string, dst *int) error {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.integer(x, key)
			if err == nil && *dst < 0 {
				err = p.errf(x, "%q must not be negative", key)
			}
		}
		return err
	}
	boolean := func(key string, dst *bool) error {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.boolean(x, key)
		}
		return err
	}
	need := func(keys ...string) error {
		for _, k := range keys {
			if m[k] == nil && err == nil {
				err = p.errf(n, "check %q of kind %s: missing key %q", c.ID, c.Kind, k)
			}
		}
		return err
	}
	count := func(key string, dst **Count) error {
		x := m[key]
		if x == nil || err != nil {
			return err
		}
		if x.Kind == yaml.ScalarNode && x.Value == "cpus" {
			*dst = &Count{CPUs: true}
			return nil
		}
		var v int
		if v, err = p.integer(x, key); err != nil {
			err = p.errf(x, "%q must be a whole number or \"cpus\"", key)
			return err
		}
		if v < 0 {
			err = p.errf(x, "%q must not be negative", key)
			return err
		}
		*dst = &Count{N: v}
		return nil
	}

	if _, ok := m["server"]; ok {
		_ = str("server", &c.Server)
		if err == nil && !slices.Contains([]string{ServerAny, ServerSingle, ServerCluster}, c.Server) {
			err = p.errf(m["server"], "check %q: server must be single, cluster or any, not %q", c.ID, c.Server)
		}
	}
	if x := m["port"]; x != nil && err == nil && c.Kind != KindFile {
		c.Port, err = p.integer(x, "port")
		if err == nil && (c.Port < 1 || c.Port > 65535) {
			err = p.errf(x, "check %q: port %d out of range 1-65535", c.ID, c.Port)
		}
	}
	if x := m["max_ms"]; x != nil && err == nil {
		c.MaxMS, err = p.positive(x, "max_ms")
	}

	switch c.Kind {
	case KindHTTP:
		if c.Server == "" {
			c.Server = ServerAny
		}
		c.Status = 200
		_ = need("path")
		_ = str("path", &c.Path)
		if err == nil {
			err = p.urlPath(m["path"], c.Path)
		}
		_ = integer("status", &c.Status)
		_ = str("body", &c.Body)
		_ = re("body", c.Body, &c.bodyRe)
	case KindPort:
		if c.Server == "" {
			c.Server = ServerAny
		}
		_ = count("min_workers", &c.MinWorkers)
		_ = count("max_workers", &c.MaxWorkers)
	case KindProcess:
		c.Min = 1
		_ = need("cmdline")
		_ = str("cmdline", &c.Cmdline)
		_ = re("cmdline", c.Cmdline, &c.cmdlineRe)
		_ = str("user", &c.User)
		_ = re("user", c.User, &c.userRe)
		_ = integer("min", &c.Min)
	case KindFile:
		c.Min = 1
		_ = need("path")
		_ = str("path", &c.PathGlob)
		if err == nil {
			c.pathRe, err = globRegexp(c.PathGlob)
			if err != nil {
				err = p.errf(m["path"], "check %q: bad path pattern %q: %v", c.ID, c.PathGlob, err)
			}
		}
		if x := m["contains"]; x != nil && err == nil {
			c.Contains, c.containsRe, err = p.regexList(x, "contains")
		}
		if x := m["not_contains"]; x != nil && err == nil {
			c.NotContains, c.notRe, err = p.regexList(x, "not_contains")
		}
		_ = integer("min", &c.Min)
	case KindCommand:
		_ = need("run")
		_ = str("run", &c.Run)
		if x := m["exit"]; x != nil && err == nil {
			var v int
			if v, err = p.integer(x, "exit"); err == nil {
				c.Exit = &v
			}
		}
		_ = str("output", &c.Output)
		_ = re("output", c.Output, &c.outputRe)
		if err == nil && c.Exit == nil && c.outputRe == nil {
			zero := 0
			c.Exit = &zero
		}
	case KindSystemd:
		_ = need("unit")
		_ = str("unit", &c.Unit)
		if err == nil && !unitRe.MatchString(c.Unit) {
			err = p.errf(m["unit"], "check %q: %q is not a unit name or glob", c.ID, c.Unit)
		}
		for _, key := range []string{"active", "enabled"} {
			if x := m[key]; x != nil && err == nil {
				var v bool
				if v, err = p.boolean(x, key); err == nil {
					if key == "active" {
						c.Active = &v
					} else {
						c.Enabled = &v
					}
				}
			}
		}
		if err == nil && c.Active == nil && c.Enabled == nil {
			err = p.errf(n, "check %q: say active: and/or enabled:", c.ID)
		}
	case KindPM2:
		_ = str("app", &c.App)
		_ = re("app", c.App, &c.appRe)
		_ = str("exec_mode", &c.ExecMode)
		if err == nil && c.ExecMode != "" && c.ExecMode != "cluster" && c.ExecMode != "fork" {
			err = p.errf(m["exec_mode"], "check %q: exec_mode must be cluster or fork", c.ID)
		}
		_ = count("instances", &c.Instances)
		_ = boolean("online", &c.Online)
		_ = boolean("saved", &c.Saved)
	case KindTool:
		_ = need("any")
		if x := m["any"]; x != nil && err == nil {
			c.Tools, err = p.strList(x, "any")
		}
	case KindHistory:
		c.Min = 1
		_ = need("pattern")
		_ = str("pattern", &c.Pattern)
		_ = re("pattern", c.Pattern, &c.patternRe)
		_ = integer("min", &c.Min)
	case KindBench:
		_ = need("route")
		_ = str("route", &c.Route)
		if err == nil {
			err = p.urlPath(m["route"], c.Route)
		}
		_ = boolean("cluster_beats_single", &c.ClusterBeatsSingle)
		if x := m["min_speedup"]; x != nil && err == nil {
			c.MinSpeedup, err = p.positive(x, "min_speedup")
		}
	case KindBlocking:
		if c.Server == "" {
			c.Server = ServerCluster
		}
		c.Heavy, c.Short = DefaultHeavyPath, "/"
		_ = str("heavy", &c.Heavy)
		_ = str("short", &c.Short)
		if err == nil {
			err = p.urlPath(m["heavy"], c.Heavy)
		}
		if err == nil {
			err = p.urlPath(m["short"], c.Short)
		}
	case KindRespawn:
		if c.Server == "" {
			c.Server = ServerCluster
		}
	case KindReload:
		if c.Server == "" {
			c.Server = ServerCluster
		}
		_ = integer("max_failed", &c.MaxFailed)
	case KindAnyOf:
		_ = need("checks")
		x := m["checks"]
		if err == nil && (x.Kind != yaml.SequenceNode || len(x.Content) < 2) {
			err = p.errf(x, "check %q: any_of needs a list of at least two alternatives", c.ID)
		}
		if err == nil {
			seen := map[string]bool{}
			for _, a := range x.Content {
				alt, e := p.check(a, true)
				if e != nil {
					return e
				}
				if alt.Kind == KindAnyOf {
					return p.errf(a, "check %q: any_of cannot nest another any_of", alt.ID)
				}
				if seen[alt.ID] {
					return p.errf(a, "check %q: duplicate alternative id %q", c.ID, alt.ID)
				}
				seen[alt.ID] = true
				c.Checks = append(c.Checks, alt)
			}
		}
	}
	return err
}

var unitRe = regexp.MustCompile(`^[A-Za-z0-9@_.:*?\\-]+\.(service|socket|timer|target)$`)

// urlPath accepts a request path the probe can put on a command line safely.
var urlPathRe = regexp.MustCompile(`^/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*$`)

func (p *rubricParser) urlPath(n *yaml.Node, s string) error {
	if !urlPathRe.MatchString(s) {
		return p.errf(n, "%q is not a request path (it starts with / and has no spaces or quotes)", s)
	}
	return nil
}

func joinKinds() string {
	var s []string
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
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

// walk calls fn for every check, alternatives of any_of included.
func (r *Rubric) walk(fn func(c *Check)) {
	for i := range r.Criteria {
		for j := range r.Criteria[i].Checks {
			c := &r.Criteria[i].Checks[j]
			fn(c)
			for k := range c.Checks {
				fn(&c.Checks[k])
			}
		}
	}
}

func fmtNum(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
