package bench

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/deploylab/deploylab/internal/fail"
)

//go:embed plan.yaml
var defaultPlanYAML []byte

// DefaultPlanYAML returns the text of the default plan (the practice's).
func DefaultPlanYAML() []byte { return bytes.Clone(defaultPlanYAML) }

// Scenario kinds.
const (
	// KindLoad is a load test: N requests with C concurrent clients.
	KindLoad = "load"
	// KindBlocking is the practice's browser-tab experiment: one heavy
	// request and, while it runs, a few light ones whose waits are measured.
	KindBlocking = "blocking"
	// KindSessions is the stateful cluster's scenario (issue 17): for each
	// sessions mode, a sumcluster started by the bench on the host, users
	// logging in and calling GET /me while a worker is killed and one
	// recycled (see sessions.go).
	KindSessions = "sessions"
)

// Server modes, as stored in results and given to checks.BenchSummary.
const (
	ModeSingle  = "single"
	ModeCluster = "cluster"
	// ModeCustom is a one-off run against a full URL on no plan server.
	ModeCustom = "custom"
)

// Plan says which servers to measure and with which scenarios.
type Plan struct {
	// Source is the file it was read from ("" for the embedded default).
	Source    string     `yaml:"-" json:"source,omitempty"`
	Servers   []Server   `yaml:"servers" json:"servers"`
	Warmup    Warmup     `yaml:"warmup" json:"warmup"`
	Scenarios []Scenario `yaml:"scenarios" json:"scenarios"`
}

// Server is one server to measure on every host.
type Server struct {
	// Name is the mode: single or cluster.
	Name string `yaml:"name" json:"name"`
	Port int    `yaml:"port" json:"port"`
	// Unit is the systemd unit running it (deploylab up's), used to measure
	// its CPU and, for sumcluster, read its per-worker statistics. Optional:
	// without it (or when it is not installed) the processes listening on
	// the port are measured.
	Unit string `yaml:"unit,omitempty" json:"unit,omitempty"`
	// Stack is go (the default: deploylab up's servers) or node (up --app
	// node's), stored with each result so that the stacks stay apart.
	Stack string `yaml:"stack,omitempty" json:"stack,omitempty"`
}

// Warmup is the discarded run made against each server before its first
// scenario. Requests 0 disables it.
type Warmup struct {
	Route       string `yaml:"route,omitempty" json:"route,omitempty"`
	Requests    int    `yaml:"requests" json:"requests"`
	Concurrency int    `yaml:"concurrency" json:"concurrency"`
}

// Scenario is one measurement, made against every server.
type Scenario struct {
	Name string `yaml:"name" json:"name"`
	// Kind is load (default) or blocking.
	Kind string `yaml:"kind,omitempty" json:"kind"`
	// Route is a path (/api/500000), requested on 127.0.0.1 at the server's
	// port, or a full http:// URL (then the plan's servers are not used).
	Route string `yaml:"route" json:"route"`
	// Load: requests (-n), concurrency (-c), keep-alive (-k) and a per
	// request timeout (none when 0).
	Requests    int      `yaml:"requests,omitempty" json:"requests,omitempty"`
	Concurrency int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	KeepAlive   bool     `yaml:"keepalive,omitempty" json:"keepalive,omitempty"`
	Timeout     Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Blocking: the light route requested while Route runs (default /),
	// how many concurrent light requests (default 4), and how long after
	// the heavy request they are sent (default 500ms).
	Probe  string   `yaml:"probe,omitempty" json:"probe,omitempty"`
	Probes int      `yaml:"probes,omitempty" json:"probes,omitempty"`
	Delay  Duration `yaml:"delay,omitempty" json:"delay,omitempty"`
	// Sessions: the modes measured (default memory, master, stateless),
	// each on a sumcluster the bench starts on the host on Port (default
	// 3290, loopback only) with Workers workers (default 2); Users log in
	// (default 200) and make Gets GET /me each (default 4), Concurrency at
	// once (default 8); then GET /me is measured for Rate (default 3s) with
	// Churn logins a second (default 10). A stored run holds one mode.
	Modes   []string `yaml:"modes,omitempty" json:"modes,omitempty"`
	Users   int      `yaml:"users,omitempty" json:"users,omitempty"`
	Gets    int      `yaml:"gets,omitempty" json:"gets,omitempty"`
	Workers int      `yaml:"workers,omitempty" json:"workers,omitempty"`
	Port    int      `yaml:"port,omitempty" json:"port,omitempty"`
	Rate    Duration `yaml:"rate,omitempty" json:"rate,omitempty"`
	Churn   float64  `yaml:"churn,omitempty" json:"churn,omitempty"`
}

// Describe is the scenario as a loadtest-like command line: "/api/500000
// -n 1000 -c 100".
func (s Scenario) Describe() string {
	switch s.Kind {
	case KindBlocking:
		return fmt.Sprintf("%s with %d× GET %s", s.Route, s.Probes, s.Probe)
	case KindSessions:
		return fmt.Sprintf("sessions %s: %d users × %d GET /me on %d workers, kill -9 and recycle mid-run",
			strings.Join(s.Modes, ", "), s.Users, s.Gets, s.Workers)
	}
	d := fmt.Sprintf("%s -n %d -c %d", s.Route, s.Requests, s.Concurrency)
	if s.KeepAlive {
		d += " -k"
	}
	return d
}

// Duration is a time.Duration written as "500ms", "30s" in YAML and JSON.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like 500ms or 30s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as "500ms".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Limits on what a plan may ask, so a typo does not run for hours.
const (
	MaxRequests    = 10_000_000
	MaxConcurrency = 10_000
)

// DefaultPlan returns the practice's plan (plan.yaml, embedded).
func DefaultPlan() *Plan {
	p, err := ParsePlan("", defaultPlanYAML)
	if err != nil {
		panic("bench: the embedded plan is invalid: " + err.Error())
	}
	return p
}

// LoadPlan reads a plan file.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail.New(fail.Usage, "pass an existing plan file to --plan", fmt.Errorf("plan %s: %w", path, errors.Unwrap(err)))
	}
	return ParsePlan(path, data)
}

// yamlLine matches the "line N: " yaml.v3 puts in front of its messages.
var (
	yamlLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// ParsePlan parses a plan strictly: an unknown key, a value of the wrong
// type or a meaningless figure is an error naming name:line. name is the
// file name for messages ("" for the default plan).
func ParsePlan(name string, data []byte) (*Plan, error) {
	file := name
	if file == "" {
		file = "default plan"
	}
	hint := "fix " + file + " (see deploylab bench --print-plan for the default one)"
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Plan
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail.Errorf(fail.Usage, hint, "%s: empty plan", file)
		}
		return nil, fail.New(fail.Usage, hint, yamlError(file, err))
	}
	p.Source = name
	var lines planLines
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil {
		lines = planLinesOf(&doc)
	}
	if err := p.normalise(file, lines); err != nil {
		return nil, fail.New(fail.Usage, hint, err)
	}
	return &p, nil
}

// yamlError turns yaml.v3's error into one line "file:N: what".
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs = te.Errors
	}
	m := msgs[0]
	if sm := yamlLine.FindStringSubmatch(m); sm != nil {
		what := sm[2]
		if f := unknownField.FindStringSubmatch(what); f != nil {
			what = fmt.Sprintf("unknown key %q", f[1])
		}
		return fmt.Errorf("%s:%s: %s", file, sm[1], what)
	}
	return fmt.Errorf("%s: %s", file, m)
}

// planLines remembers the line of each scenario and server, for messages
// about values that parse but make no sense.
type planLines struct {
	servers, scenarios []int
	warmup             int
}

func planLinesOf(doc *yaml.Node) planLines {
	var pl planLines
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return pl
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "servers":
			for _, c := range v.Content {
				pl.servers = append(pl.servers, c.Line)
			}
		case "scenarios":
			for _, c := range v.Content {
				pl.scenarios = append(pl.scenarios, c.Line)
			}
		case "warmup":
			pl.warmup = v.Line
		}
	}
	return pl
}

func lineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

func at(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

// normalise fills defaults and validates.
func (p *Plan) normalise(file string, lines planLines) error {
	onlySessions := len(p.Scenarios) > 0
	for _, s := range p.Scenarios {
		onlySessions = onlySessions && s.Kind == KindSessions
	}
	if len(p.Servers) == 0 && !onlySessions {
		return fmt.Errorf("%s: no servers: list at least one (name: single, port: 3000)", file)
	}
	seen := map[string]bool{}
	for i := range p.Servers {
		s := &p.Servers[i]
		where := at(file, lineAt(lines.servers, i))
		if s.Name != ModeSingle && s.Name != ModeCluster {
			return fmt.Errorf("%s: server name %q: want single or cluster", where, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s: server %q listed twice", where, s.Name)
		}
		seen[s.Name] = true
		if s.Port < 1 || s.Port > 65535 {
			return fmt.Errorf("%s: server %s: port %d is not from 1 to 65535", where, s.Name, s.Port)
		}
		if s.Unit != "" && !strings.Contains(s.Unit, ".") {
			s.Unit += ".service"
		}
		if strings.ContainsAny(s.Unit, " '\"/\\$`") {
			return fmt.Errorf("%s: server %s: %q is not a systemd unit name", where, s.Name, s.Unit)
		}
		if s.Stack != "" && s.Stack != LangGo && s.Stack != LangNode {
			return fmt.Errorf("%s: server %s: stack %q: want go or node", where, s.Name, s.Stack)
		}
	}
	if len(p.Scenarios) == 0 {
		return fmt.Errorf("%s: no scenarios", file)
	}
	names := map[string]bool{}
	for i := range p.Scenarios {
		s := &p.Scenarios[i]
		where := at(file, lineAt(lines.scenarios, i))
		if s.Name == "" {
			s.Name = defaultName(*s)
		}
		if !validName(s.Name) {
			return fmt.Errorf("%s: scenario name %q: use letters, digits, - and _", where, s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("%s: scenario %q listed twice", where, s.Name)
		}
		names[s.Name] = true
		if err := s.normalise(); err != nil {
			return fmt.Errorf("%s: scenario %s: %w", where, s.Name, err)
		}
	}
	w := &p.Warmup
	if w.Requests < 0 || w.Requests > MaxRequests || w.Requests > 0 && (w.Concurrency < 1 || w.Concurrency > MaxConcurrency) {
		return fmt.Errorf("%s: warmup: want requests from 0 (none) to %d and concurrency from 1 to %d", at(file, lines.warmup), MaxRequests, MaxConcurrency)
	}
	if w.Route != "" && !strings.HasPrefix(w.Route, "/") {
		return fmt.Errorf("%s: warmup: route %q must start with /", at(file, lines.warmup), w.Route)
	}
	if w.Requests > 0 && w.Concurrency > w.Requests {
		w.Concurrency = w.Requests
	}
	return nil
}

// normalise validates one scenario and fills its defaults. The errors are
// the one-line messages of the CLI's -n/-c checks too.
func (s *Scenario) normalise() error {
	if s.Kind == "" {
		s.Kind = KindLoad
	}
	if s.Kind == KindSessions {
		return s.normaliseSessions()
	}
	if len(s.Modes) > 0 || s.Users != 0 || s.Gets != 0 || s.Workers != 0 || s.Port != 0 || s.Rate != 0 || s.Churn != 0 {
		return errors.New("modes, users, gets, workers, port, rate and churn are for kind: sessions")
	}
	if err := checkRoute(s.Route); err != nil {
		return err
	}
	switch s.Kind {
	case KindLoad:
		switch {
		case s.Concurrency < 1:
			return fmt.Errorf("concurrency (-c) must be at least 1, got %d", s.Concurrency)
		case s.Concurrency > MaxConcurrency:
			return fmt.Errorf("concurrency (-c) %d is above the limit of %d", s.Concurrency, MaxConcurrency)
		case s.Requests < 1:
			return fmt.Errorf("requests (-n) must be at least 1, got %d", s.Requests)
		case s.Requests > MaxRequests:
			return fmt.Errorf("requests (-n) %d is above the limit of %d", s.Requests, MaxRequests)
		case s.Requests < s.Concurrency:
			return fmt.Errorf("requests (-n %d) must be at least the concurrency (-c %d): otherwise some clients never send a request", s.Requests, s.Concurrency)
		}
		if s.Probe != "" || s.Probes != 0 || s.Delay != 0 {
			return errors.New("probe, probes and delay are for kind: blocking")
		}
	case KindBlocking:
		if s.Requests != 0 || s.Concurrency != 0 || s.KeepAlive {
			return errors.New("requests, concurrency and keepalive are for load scenarios; a blocking one has probe, probes and delay")
		}
		if strings.Contains(s.Route, "://") {
			return errors.New("a blocking scenario's route is a path on the plan's servers")
		}
		if s.Probe == "" {
			s.Probe = "/"
		}
		if !strings.HasPrefix(s.Probe, "/") {
			return fmt.Errorf("probe %q must be a path starting with /", s.Probe)
		}
		if s.Probes == 0 {
			s.Probes = 4
		}
		if s.Probes < 1 || s.Probes > 100 {
			return fmt.Errorf("probes %d: want 1 to 100", s.Probes)
		}
		if s.Delay == 0 {
			s.Delay = Duration(500 * time.Millisecond)
		}
		if time.Duration(s.Delay) > time.Minute {
			return fmt.Errorf("delay %s: want at most 1m", time.Duration(s.Delay))
		}
	default:
		return fmt.Errorf("kind %q: want load, blocking or sessions", s.Kind)
	}
	return nil
}

// checkRoute accepts a path or a full http(s) URL.
func checkRoute(r string) error {
	switch {
	case r == "":
		return errors.New("no route: give a path such as /api/500000")
	case strings.HasPrefix(r, "/"):
		if strings.ContainsAny(r, " \t\n'\"\\`$") {
			return fmt.Errorf("route %q: spaces and quotes must be %%-escaped", r)
		}
		return nil
	}
	u, err := url.Parse(r)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("route %q: want a path (/api/500000) or a URL (http://localhost:3000/)", r)
	}
	if strings.ContainsAny(r, " \t\n'\"\\`$") {
		return fmt.Errorf("route %q: spaces and quotes must be %%-escaped", r)
	}
	return nil
}

// defaultName names an unnamed scenario after its route and figures:
// "api-500000-n1000-c100".
func defaultName(s Scenario) string {
	r := s.Route
	if u, err := url.Parse(r); err == nil && u.Host != "" {
		r = u.Port() + u.Path
	}
	var b strings.Builder
	for _, c := range strings.Trim(r, "/") {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if n == "" {
		n = "root"
	}
	switch s.Kind {
	case KindBlocking:
		return n + "-blocking"
	case KindSessions:
		return "sessions"
	}
	n = fmt.Sprintf("%s-n%d-c%d", n, s.Requests, s.Concurrency)
	if s.KeepAlive {
		n += "-k"
	}
	return n
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// OneOff returns a plan that runs one load scenario against the plan's
// servers (or, when route is a full URL, against that URL alone), keeping
// base's servers and warm-up.
func OneOff(base *Plan, route string, requests, concurrency int, keepAlive bool) (*Plan, error) {
	s := Scenario{Kind: KindLoad, Route: route, Requests: requests, Concurrency: concurrency, KeepAlive: keepAlive}
	s.Name = defaultName(s)
	if err := s.normalise(); err != nil {
		return nil, fail.New(fail.Usage, "e.g. deploylab bench --url /api/500000 -n 5000 -c 50", err)
	}
	p := *base
	p.Scenarios = []Scenario{s}
	return &p, nil
}

// WithServers keeps only the named servers of p ("" or "both": all).
func (p *Plan) WithServers(names []string) (*Plan, error) {
	if len(names) == 0 {
		return p, nil
	}
	q := *p
	q.Servers = nil
	for _, n := range names {
		found := false
		for _, s := range p.Servers {
			if s.Name == n {
				q.Servers = append(q.Servers, s)
				found = true
			}
		}
		if !found {
			var have []string
			for _, s := range p.Servers {
				have = append(have, s.Name)
			}
			return nil, fail.Errorf(fail.Usage, "the plan's servers: "+strings.Join(have, ", "), "--server %q is not in the plan", n)
		}
	}
	return &q, nil
}
