package checks

import (
	"github.com/deploylab/deploylab/observe"

	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Kind is a check kind, as written in the rubric's `kind:` key. Each kind
// lives in its own file, kind_<name>.go, with its Kind const: its parameters,
// how they are decoded, its evaluation and its doc line (see doc.go).
type Kind string

// Params are the parameters of one check, of one kind. A kind's file
// implements it; the rubric decoder makes one per check with the kind's
// constructor and fills it with decode.
type Params interface {
	// decode reads the kind's keys from the check's mapping through d, sets
	// their defaults and validates them. It must ask for every key it knows
	// unconditionally (d records them: they are the keys the kind accepts).
	decode(d *decoder)
	// eval is the check itself: pure, it reads only e (the host's facts and
	// bench results) and c's common fields (ID, Server, Port, Checks).
	eval(e *env, c *Check) Result
	// describe lists the declared parameters as key=value pairs, for the
	// teacher's Rúbrica sheet (server and port are listed by Check.Describe).
	describe(add func(key, value string))
}

// prober is implemented by the kinds that need the probe to observe
// something the rubric names (a path to GET, a unit, a command to run).
type prober interface {
	probe(o *observe.Options)
}

// kindDef is one entry of the registry.
type kindDef struct {
	kind Kind
	// doc is the kind's line in README's table of check kinds.
	doc string
	new func() Params
	// keys are the kind's own keys (besides id, name, kind, weight), in the
	// order its decode asks for them; required ones marked.
	keys []keyDoc
	// document: the kind reads the student's document (DocFacts), and is
	// written under a criterion's document: checks, never among its checks.
	document bool
}

type keyDoc struct {
	name     string
	required bool
}

var registry = map[Kind]*kindDef{}

// register adds a kind; each kind_*.go file calls it from init.
func register(k Kind, doc string, newParams func() Params) {
	if _, dup := registry[k]; dup {
		panic("checks: kind registered twice: " + string(k))
	}
	d := &decoder{c: &Check{Kind: k}}
	newParams().decode(d)
	registry[k] = &kindDef{kind: k, doc: doc, new: newParams, keys: d.asked}
}

// registerDoc adds a document kind (see document.go): its eval reads e.doc.
func registerDoc(k Kind, doc string, newParams func() Params) {
	register(k, doc, newParams)
	registry[k].document = true
}

// Kinds returns the known check kinds, sorted.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(registry))
	for k := range registry {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// joinKinds lists the VM kinds (document false) or the document kinds.
func joinKinds(document bool) string {
	var s []string
	for _, k := range Kinds() {
		if registry[k].document == document {
			s = append(s, string(k))
		}
	}
	return strings.Join(s, ", ")
}

// KindsTable is README's table of check kinds, generated from the registry
// (TestReadmeKindsTable keeps README in step).
func KindsTable() string {
	var b strings.Builder
	b.WriteString("| kind | what it checks | keys (besides id, name, weight, partial; * required) |\n")
	b.WriteString("|---|---|---|\n")
	for _, k := range Kinds() {
		def := registry[k]
		var keys []string
		for _, kd := range def.keys {
			s := "`" + kd.name + "`"
			if kd.required {
				s += "*"
			}
			keys = append(keys, s)
		}
		doc := def.doc
		if def.document {
			doc = "(under `document:`) " + doc
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k, doc, strings.Join(keys, " "))
	}
	return b.String()
}

// Describe lists a check's declared parameters in one line (key=value,
// separated by two spaces).
func (c *Check) Describe() string {
	var p []string
	add := func(k, v string) {
		if v != "" {
			p = append(p, k+"="+v)
		}
	}
	add("server", c.Server)
	if c.Port != 0 {
		add("port", fmt.Sprint(c.Port))
	}
	if c.Params != nil {
		c.Params.describe(add)
	}
	return strings.Join(p, "  ")
}

// decoder hands a kind's decode the keys of one check mapping, strictly:
// wrong types, bad values and missing required keys are errors with
// file:line. The first error sticks; later calls still record their key
// (so that decode can be run on an empty mapping to learn the kind's keys).
type decoder struct {
	p     *rubricParser // nil when only recording keys
	c     *Check
	node  *yaml.Node
	m     map[string]*yaml.Node
	asked []keyDoc
	err   error
}

// ok reports whether no error happened yet (and the decoder is not only
// recording keys): guard cross-key validation with it.
func (d *decoder) ok() bool { return d.err == nil && d.p != nil }

// key records key and returns its node (nil when absent or after an error).
func (d *decoder) key(key string, required bool) *yaml.Node {
	if !slices.ContainsFunc(d.asked, func(k keyDoc) bool { return k.name == key }) {
		d.asked = append(d.asked, keyDoc{key, required})
	}
	if !d.ok() {
		return nil
	}
	x := d.m[key]
	if x == nil && required {
		d.err = d.p.errf(d.node, "check %q of kind %s: missing key %q", d.c.ID, d.c.Kind, key)
	}
	return x
}

// failf records an error at n (the check's line when n is nil).
func (d *decoder) failf(n *yaml.Node, format string, args ...any) {
	if d.ok() {
		if n == nil {
			n = d.node
		}
		d.err = d.p.errf(n, format, args...)
	}
}

func (d *decoder) set(err error) {
	if d.err == nil {
		d.err = err
	}
}

// node returns the node of a key already asked for (for messages).
func (d *decoder) nodeOf(key string) *yaml.Node {
	if d.m == nil {
		return nil
	}
	return d.m[key]
}

// str reads a text key into dst (left as is when absent).
func (d *decoder) str(key string, dst *string, required bool) bool {
	x := d.key(key, required)
	if x == nil {
		return false
	}
	v, err := d.p.str(x, key)
	d.set(err)
	if err == nil {
		*dst = v
	}
	return err == nil
}

// regexp reads a regular expression key: its source into src, compiled into
// re (nil when absent).
func (d *decoder) regexp(key string, src *string, re **regexp.Regexp, required bool) {
	if !d.str(key, src, required) {
		return
	}
	r, err := d.p.regex(d.m[key], *src, key)
	d.set(err)
	*re = r
}

// integer reads a whole number key; negative values are an error unless
// negativeOK.
func (d *decoder) integer(key string, dst *int, negativeOK bool) bool {
	x := d.key(key, false)
	if x == nil {
		return false
	}
	v, err := d.p.integer(x, key)
	if err == nil && v < 0 && !negativeOK {
		err = d.p.errf(x, "%q must not be negative", key)
	}
	d.set(err)
	if err == nil {
		*dst = v
	}
	return err == nil
}

// positive reads a number > 0.
func (d *decoder) positive(key string, dst *float64) {
	if x := d.key(key, false); x != nil {
		v, err := d.p.positive(x, key)
		d.set(err)
		*dst = v
	}
}

// boolean reads true/false into dst; it returns whether the key was given.
func (d *decoder) boolean(key string, dst *bool) bool {
	x := d.key(key, false)
	if x == nil {
		return false
	}
	v, err := d.p.boolean(x, key)
	d.set(err)
	*dst = v
	return err == nil
}

// optBool reads true/false into a pointer left nil when the key is absent.
func (d *decoder) optBool(key string, dst **bool) {
	var v bool
	if d.boolean(key, &v) {
		*dst = &v
	}
}

// count reads a whole number or "cpus".
func (d *decoder) count(key string, dst **Count) {
	x := d.key(key, false)
	if x == nil {
		return
	}
	if x.Kind == yaml.ScalarNode && x.Tag == "!!str" && strings.HasPrefix(x.Value, "cpus") {
		k := 0
		if rest := x.Value[len("cpus"):]; rest != "" {
			v, err := strconv.Atoi(strings.TrimPrefix(rest, "-"))
			if !strings.HasPrefix(rest, "-") || err != nil || v < 1 {
				d.failf(x, "%q must be a whole number, \"cpus\" or \"cpus-K\"", key)
				return
			}
			k = -v
		}
		*dst = &Count{CPUs: true, N: k}
		return
	}
	v, err := d.p.integer(x, key)
	switch {
	case err != nil:
		d.failf(x, "%q must be a whole number, \"cpus\" or \"cpus-K\"", key)
	case v < 0:
		d.failf(x, "%q must not be negative", key)
	default:
		*dst = &Count{N: v}
	}
}

// strList reads a text or a non-empty list of texts.
func (d *decoder) strList(key string, dst *[]string, required bool) {
	if x := d.key(key, required); x != nil {
		v, err := d.p.strList(x, key)
		d.set(err)
		*dst = v
	}
}

// regexList reads a regular expression or a list of them.
func (d *decoder) regexList(key string, src *[]string, res *[]*regexp.Regexp) {
	if x := d.key(key, false); x != nil {
		s, r, err := d.p.regexList(x, key)
		d.set(err)
		*src, *res = s, r
	}
}

// urlPath reads a request path the probe can put on a command line safely.
func (d *decoder) urlPath(key string, dst *string, required bool) {
	given := d.str(key, dst, required)
	if d.ok() && (given || *dst != "") && !urlPathRe.MatchString(*dst) {
		d.failf(d.nodeOf(key), "%q is not a request path (it starts with / and has no spaces or quotes)", *dst)
	}
}

var urlPathRe = regexp.MustCompile(`^/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*$`)

// target reads `server:` (single, cluster or any; def when absent) and
// `port:` into the check's Server and Port: the app server the check is
// about (see env.pick).
func (d *decoder) target(def string) {
	d.c.Server = def
	if d.str("server", &d.c.Server, false) && !slices.Contains([]string{ServerAny, ServerSingle, ServerCluster}, d.c.Server) {
		d.failf(d.nodeOf("server"), "check %q: server must be single, cluster or any, not %q", d.c.ID, d.c.Server)
	}
	if d.integer("port", &d.c.Port, true) && (d.c.Port < 1 || d.c.Port > 65535) {
		d.failf(d.nodeOf("port"), "check %q: port %d out of range 1-65535", d.c.ID, d.c.Port)
	}
}

// alternatives reads a list of at least two checks (no weights, no nested
// any_of or all_of) into the check's Checks.
func (d *decoder) alternatives(key string) {
	x := d.key(key, true)
	if x == nil {
		return
	}
	if x.Kind != yaml.SequenceNode || len(x.Content) < 2 {
		d.failf(x, "check %q: %s needs a list of at least two alternatives", d.c.ID, d.c.Kind)
		return
	}
	seen := map[string]bool{}
	for _, a := range x.Content {
		alt, err := d.p.check(a, placeAlternative)
		if err != nil {
			d.set(err)
			return
		}
		if alt.Kind == KindAnyOf || alt.Kind == KindAllOf {
			d.failf(a, "check %q: %s cannot nest another %s", alt.ID, d.c.Kind, alt.Kind)
			return
		}
		if seen[alt.ID] {
			d.failf(a, "check %q: duplicate alternative id %q", d.c.ID, alt.ID)
			return
		}
		seen[alt.ID] = true
		d.c.Checks = append(d.c.Checks, alt)
	}
}

// addCommand appends the command run to list unless it is there; it is
// reported under CommandKey(run).
func addCommand(list []observe.Command, run string) []observe.Command {
	if !slices.ContainsFunc(list, func(c observe.Command) bool { return c.Run == run }) {
		list = append(list, observe.Command{Name: CommandKey(run), Run: run})
	}
	return list
}

// addUnique appends s to list unless it is there.
func addUnique(list []string, s string) []string {
	if !slices.Contains(list, s) {
		list = append(list, s)
	}
	return list
}

// env is what checks read while grading one host: nothing else, so that a
// check is a pure function of the facts and bench results.
type env struct {
	f       *HostFacts
	bench   []BenchSummary
	servers []Server
	// doc is the student's document, for the document kinds (nil for the
	// others).
	doc *DocFacts
}

func newEnv(r *Rubric, f *HostFacts, bench []BenchSummary) *env {
	e := &env{f: f, bench: bench}
	if f.Reachable {
		e.servers = f.Servers(r.AppRe())
	}
	return e
}

// eval runs one check against the host.
func (e *env) eval(c *Check) Result {
	if c.Params == nil {
		return errorf("tipo de comprobación desconocido %q", c.Kind)
	}
	return c.Params.eval(e, c)
}

// evalTop runs one of a criterion's checks: the check itself and, when it
// fails, its partial-credit evidence. A partial result stays a fail (its
// Credit says how much of the weight it earns) and its Reason is one
// sentence that says what was missing and what was found.
func (e *env) evalTop(c *Check) Result {
	res := e.eval(c)
	if res.Outcome == Pass {
		res.Credit = 1
	}
	if res.Outcome != Fail || len(c.Partial) == 0 {
		return res
	}
	best := -1
	var found Result
	for i := range c.Partial {
		ev := &c.Partial[i]
		r := e.eval(&ev.Check)
		if r.Outcome == Pass && (best < 0 || ev.Share > c.Partial[best].Share) {
			best, found = i, r
		}
	}
	if best < 0 {
		return res
	}
	ev := c.Partial[best]
	label := ev.Check.Name
	if label == "" {
		label = ev.Check.ID
	}
	res.Credit = ev.Share
	what := c.Name
	if what == "" {
		what = c.ID
	}
	res.Reason = fmt.Sprintf("Parcial (%s de esta comprobación): falta «%s» (%s), pero %s.", sharePct(ev.Share), what, strings.TrimSuffix(res.Reason, "."), midSentence(label))
	if res.Evidence != "" {
		res.Evidence += " · "
	}
	res.Evidence += "evidencia de trabajo: " + found.Evidence
	return res
}

// midSentence is a check's name written in the middle of a sentence: its
// first letter in lower case, unless it starts a name or an acronym ("PM2",
// "GET /").
func midSentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if !unicode.IsUpper(r) {
		return s
	}
	if next, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(next) || unicode.IsDigit(next) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// sharePct writes a share as a percentage ("50 %").
func sharePct(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/10, 'f', -1, 64) + " %"
}

// Evaluate runs one check of r against facts and bench results: what Score
// does for every check, for tests and tools that look at one check.
func Evaluate(r *Rubric, c *Check, facts HostFacts, bench []BenchSummary) Result {
	if !facts.Reachable {
		return Result{Outcome: Error, Reason: "host inalcanzable: " + facts.Error}
	}
	res := newEnv(r, &facts, bench).evalTop(c)
	res.ID, res.Name, res.Kind, res.Weight = c.ID, c.Name, c.Kind, c.Weight
	return res
}

// pick returns the servers a check is about (its Server role and Port). When
// none fits, res is the outcome to report (fail with what was seen, or error
// when the probe could not tell).
func (e *env) pick(c *Check) (match []Server, res *Result) {
	var seen, unknown []Server
	for _, s := range e.servers {
		if c.Port != 0 && s.Port != c.Port {
			continue
		}
		seen = append(seen, s)
		switch {
		case s.Unknown:
			unknown = append(unknown, s)
			if c.Server == ServerAny {
				match = append(match, s)
			}
		case c.Server == ServerAny,
			c.Server == ServerSingle && !s.Cluster,
			c.Server == ServerCluster && s.Cluster:
			match = append(match, s)
		}
	}
	// Prefer the practice's port 3000, then the rest in port order.
	slices.SortStableFunc(match, func(a, b Server) int {
		switch {
		case a.Port == 3000 && b.Port != 3000:
			return -1
		case b.Port == 3000 && a.Port != 3000:
			return 1
		}
		return 0
	})
	if len(match) > 0 {
		return match, nil
	}
	where := "ningún servidor de la aplicación a la escucha"
	if c.Port != 0 {
		where = fmt.Sprintf("nada de la aplicación escucha en el puerto %d", c.Port)
	}
	if len(seen) == 0 {
		r := failed(e.listenersSeen(), "%s", where)
		return nil, &r
	}
	var ds []string
	for _, s := range seen {
		ds = append(ds, s.Describe())
	}
	if len(unknown) > 0 {
		r := errorf("no se pudo saber qué procesos sirven %s (¿sondeo sin root?)", portsOf(unknown))
		r.Evidence = strings.Join(ds, "; ")
		return nil, &r
	}
	role := map[string]string{ServerSingle: "sin cluster (un solo proceso)", ServerCluster: "en cluster (varios workers)"}[c.Server]
	r := failed(strings.Join(ds, "; "), "ningún servidor %s", role)
	return nil, &r
}

func portsOf(ss []Server) string {
	var p []string
	for _, s := range ss {
		p = append(p, strconv.Itoa(s.Port))
	}
	return "el puerto " + strings.Join(p, ", ")
}

func (e *env) listenersSeen() string {
	var ports []string
	for _, l := range e.f.Listeners {
		p := strconv.Itoa(l.Port)
		if len(l.Names) > 0 {
			p += " (" + strings.Join(l.Names, ",") + ")"
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return "ningún puerto TCP a la escucha"
	}
	return "puertos a la escucha: " + strings.Join(ports, ", ")
}

func fmtMillis(ms float64) string {
	if ms >= 10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	if ms >= 10 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("(y %d más)", len(s)-n))
	}
	return s
}

func pass(evidence string) Result { return Result{Outcome: Pass, Evidence: evidence} }

func failed(evidence, format string, args ...any) Result {
	return Result{Outcome: Fail, Evidence: evidence, Reason: fmt.Sprintf(format, args...)}
}

func errorf(format string, args ...any) Result {
	return Result{Outcome: Error, Reason: fmt.Sprintf(format, args...)}
}

func skipf(format string, args ...any) Result {
	return Result{Outcome: Skip, Reason: fmt.Sprintf(format, args...)}
}
