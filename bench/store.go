package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/safetext"
)

// Store is the local results directory: one JSON file per run, under a
// directory per host: <dir>/<host>/<id>.json.
type Store struct {
	dir string
	mu  sync.Mutex
	// Warn, when set, is told (once per file) about result files that are
	// skipped because they cannot be read: which file and why.
	Warn   io.Writer
	warned map[string]bool
}

// skipped reports a result file that List leaves out.
func (s *Store) skipped(path string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Warn == nil || s.warned[path] {
		return
	}
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	s.warned[path] = true
	fmt.Fprintf(s.Warn, "warning: results: skipped %s\n", safetext.Line(path+": "+strings.TrimPrefix(err.Error(), path+": ")))
}

// OpenStore opens (creating it if needed) the results directory dir.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, fail.Errorf(fail.Usage, "set results-dir in deploylab.yaml or pass --results-dir", "no results directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fail.New(fail.Usage, "pass a writable --results-dir", fmt.Errorf("results directory: %w", err))
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// safeName keeps a name usable as a file name component.
func safeName(n string) string {
	var b strings.Builder
	for _, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" {
		s = "_"
	}
	return s
}

// Save writes r atomically, giving it a unique ID if it has none (or if its
// ID is taken).
func (s *Store) Save(r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Schema == "" {
		r.Schema = Schema
	}
	host := safeName(r.Host.Name)
	dir := filepath.Join(s.dir, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save result: %w", err)
	}
	base := r.ID
	if base == "" {
		server := r.Server.Mode
		if st := r.Server.StackName(); st != "" && st != LangGo {
			server = st + "-" + server // go keeps the IDs it always had
		}
		base = safeName(fmt.Sprintf("%s-%s-%s-%s", r.Batch, r.Host.Name, server, r.Scenario.Name))
	}
	// The ID is claimed and the file written in one step: the run is
	// written to a temp file and hard-linked to its name, which fails if
	// another bench (another process) took the name first; then the next
	// name is tried. A reader never sees a half-written result.
	for i := 1; ; i++ {
		id := base
		if i > 1 {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		r.ID = id
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("save result %s: %w", id, err)
		}
		err := linkNew(filepath.Join(dir, id+".json"), buf.Bytes())
		if errors.Is(err, fs.ErrExist) && i < 10000 {
			continue
		}
		if err != nil {
			return fmt.Errorf("save result %s: %w", id, err)
		}
		return nil
	}
}

// linkNew writes data to path, which must not exist: a synced temp file in
// the same directory, hard-linked to path (fs.ErrExist if path exists).
func linkNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(tmp, path)
}

// Load reads the run with this ID, or with a unique ID prefix.
func (s *Store) Load(id string) (*Record, error) {
	all, err := s.List("")
	if err != nil {
		return nil, err
	}
	var match []*Record
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
		if strings.HasPrefix(r.ID, id) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		return nil, fail.Errorf(fail.Usage, "list the results with: deploylab bench ls", "no result %q in %s", id, s.dir)
	case 1:
		return match[0], nil
	}
	return nil, fail.Errorf(fail.Usage, "give more of the ID (see deploylab bench ls)", "%q matches %d results", id, len(match))
}

// Batch returns the runs of a batch (a bench invocation), in run order.
func (s *Store) Batch(batch string) ([]*Record, error) {
	all, err := s.List("")
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, r := range all {
		if r.Batch == batch {
			out = append(out, r)
		}
	}
	return out, nil
}

// List returns the stored runs of host ("" for every host), oldest first.
// Files that are not results (or are damaged) are skipped, each named with
// the reason on Warn; an unreadable directory is an error.
func (s *Store) List(host string) ([]*Record, error) {
	var dirs []string
	if host != "" {
		dirs = []string{filepath.Join(s.dir, safeName(host))}
	} else {
		ents, err := os.ReadDir(s.dir)
		if err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(s.dir, e.Name()))
			}
		}
	}
	var out []*Record
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			r, err := readRecord(filepath.Join(d, e.Name()))
			if err != nil {
				s.skipped(filepath.Join(d, e.Name()), err)
				continue
			}
			if host != "" && r.Host.Name != host {
				continue
			}
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != Schema || r.Result == nil {
		return nil, fmt.Errorf("%s: not a %s document", path, Schema)
	}
	return &r, nil
}

// Summaries converts host's stored load runs to the grader's summaries:
// the latest result per server and route, the go stack's first (see
// Summaries). Blocking experiments, custom-URL runs and interrupted runs
// are left out.
func (s *Store) Summaries(hostName string) ([]checks.BenchSummary, error) {
	all, err := s.List(hostName)
	if err != nil {
		return nil, err
	}
	return Summaries(all), nil
}

// Summaries converts runs to checks.BenchSummary, keeping one per server
// mode and route, ordered by route then server.
//
// The grader has no notion of stack, so when a host has runs of both
// stacks (bench --compare measures Node and Go) the go stack's latest run
// is the one kept: the practice's criteria grade deploylab up's servers,
// and a comparison must not swap them for the Node app depending on which
// ran last. A mode and route measured only on the node stack (a host
// benched with a node-only plan) keeps node's latest run rather than
// nothing. Records without a stack are go (Schema v1's default).
func Summaries(runs []*Record) []checks.BenchSummary {
	type key struct{ server, route string }
	rank := func(r *Record) int {
		if r.Server.StackName() == LangGo {
			return 0
		}
		return 1
	}
	latest := map[key]*Record{}
	for _, r := range runs {
		if r.Scenario.Kind != KindLoad || r.Result == nil || r.Result.Interrupted {
			continue
		}
		if r.Server.Mode != ModeSingle && r.Server.Mode != ModeCluster {
			continue
		}
		k := key{r.Server.Mode, r.Route()}
		old, ok := latest[k]
		if !ok || rank(r) < rank(old) || (rank(r) == rank(old) && !r.At.Before(old.At)) {
			latest[k] = r
		}
	}
	out := make([]checks.BenchSummary, 0, len(latest))
	for _, r := range latest {
		b := checks.BenchSummary{
			Server: r.Server.Mode,
			Route:  r.Route(),
			RPS:    r.Result.RPS,
			Errors: int(r.Result.Errors.Total),
			Tool:   strings.TrimSpace(r.Tool.Name + " " + r.Tool.Version),
			At:     r.At,
		}
		if l := r.Result.Latency; l != nil {
			b.P50us, b.P99us = l.P50, l.P99
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Route != out[j].Route {
			return out[i].Route < out[j].Route
		}
		return out[i].Server > out[j].Server // single before cluster
	})
	return out
}

// routePath is a route's path: the route itself, or a URL's path.
func routePath(route string) string {
	if strings.HasPrefix(route, "/") {
		return route
	}
	if u, err := url.Parse(route); err == nil {
		if u.Path == "" {
			return "/"
		}
		return u.Path
	}
	return route
}
