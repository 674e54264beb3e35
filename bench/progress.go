package bench

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress is told what Run does. Calls come from one goroutine per host;
// implementations must be safe for concurrent use.
type Progress interface {
	// HostStart: the host is set up and has steps runs to make (warm-ups
	// included).
	HostStart(host string, steps int)
	StepStart(host, label string)
	// StepDone: rec is nil for a warm-up or a failed step.
	StepDone(host, label string, rec *Record, err error)
	// HostDone is called once per host, err nil when all went well (the
	// caller reports the error itself, with the outcome).
	HostDone(host string, err error)
	// Wait is called once when every host is done.
	Wait()
}

type nopProgress struct{}

func (nopProgress) HostStart(string, int)                   {}
func (nopProgress) StepStart(string, string)                {}
func (nopProgress) StepDone(string, string, *Record, error) {}
func (nopProgress) HostDone(string, error)                  {}
func (nopProgress) Wait()                                   {}

// NewProgress returns a progress display writing to w: bars (one per host)
// when w is a terminal, plain lines otherwise (logs, pipes, CI).
func NewProgress(w io.Writer, terminal bool) Progress {
	if terminal {
		return newBars(w)
	}
	return &lineProgress{w: w, steps: map[string]int{}, done: map[string]int{}}
}

// lineProgress prints one line per finished step.
type lineProgress struct {
	mu          sync.Mutex
	w           io.Writer
	steps, done map[string]int
}

func (p *lineProgress) HostStart(host string, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps[host] = steps
	fmt.Fprintf(p.w, "%s: %d runs to make\n", host, steps)
}

func (p *lineProgress) StepStart(string, string) {}

func (p *lineProgress) StepDone(host, label string, rec *Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[host]++
	prefix := fmt.Sprintf("%s: [%d/%d] %s", host, p.done[host], p.steps[host], label)
	switch {
	case err != nil:
		fmt.Fprintf(p.w, "%s: failed\n", prefix)
	case rec == nil:
		fmt.Fprintf(p.w, "%s: done\n", prefix)
	default:
		fmt.Fprintf(p.w, "%s: %s\n", prefix, stepSummary(rec))
	}
}

func (p *lineProgress) HostDone(host string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// The reason is reported once, by the caller, with the outcome.
		fmt.Fprintf(p.w, "%s: failed\n", host)
		return
	}
	fmt.Fprintf(p.w, "%s: done\n", host)
}

func (p *lineProgress) Wait() {}

// stepSummary is a run's figures in a few words.
func stepSummary(r *Record) string {
	res := r.Result
	if r.Scenario.Kind == KindBlocking {
		if res.Latency == nil {
			return "no answer"
		}
		s := fmt.Sprintf("GET %s waited up to %s", r.Scenario.Probe, fmtMS(res.Latency.Max))
		if bl := ReadBlocking(r); bl.WaitedN >= 0 && len(bl.Lights) > 0 {
			s += fmt.Sprintf(" (%d of %d waited)", bl.WaitedN, bl.Light)
		}
		return s
	}
	s := fmt.Sprintf("%.0f rps", res.RPS)
	if res.Latency != nil {
		s += ", p99 " + fmtMS(res.Latency.P99)
	}
	if res.Errors.Total > 0 {
		s += fmt.Sprintf(", %d errors", res.Errors.Total)
	}
	return s
}

// bars shows one mpb bar per host.
type bars struct {
	p      *mpb.Progress
	w      io.Writer
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
	labels map[string]string
}

func newBars(w io.Writer) *bars {
	return &bars{
		p:      mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond)),
		w:      w,
		bars:   map[string]*mpb.Bar{},
		labels: map[string]string{},
	}
}

func (b *bars) HostStart(host string, steps int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	label := func(decor.Statistics) string {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.labels[host]
	}
	b.bars[host] = b.p.AddBar(int64(steps),
		mpb.PrependDecorators(
			decor.Name(host, decor.WCSyncSpaceR),
			decor.CountersNoUnit("%d/%d", decor.WCSyncSpace),
		),
		mpb.AppendDecorators(
			decor.Elapsed(decor.ET_STYLE_MMSS, decor.WCSyncSpace),
			decor.Any(label, decor.WCSyncSpaceR),
		),
	)
}

func (b *bars) StepStart(host, label string) {
	b.mu.Lock()
	b.labels[host] = label
	b.mu.Unlock()
}

func (b *bars) StepDone(host, label string, rec *Record, err error) {
	b.mu.Lock()
	bar := b.bars[host]
	if rec != nil {
		b.labels[host] = label + ": " + stepSummary(rec)
	}
	b.mu.Unlock()
	if bar != nil && err == nil {
		bar.Increment()
	}
}

func (b *bars) HostDone(host string, err error) {
	b.mu.Lock()
	bar := b.bars[host]
	if err != nil {
		b.labels[host] = "failed"
	} else {
		b.labels[host] = "done"
	}
	b.mu.Unlock()
	if bar != nil && !bar.Completed() {
		bar.Abort(false)
	}
}

func (b *bars) Wait() { b.p.Wait() }

// passes shows several Runs on the same hosts (bench --compare's Node pass,
// then its Go pass) as one: a host starts once, with the runs of every
// pass, so the count never passes its total, and is done after the last
// pass (or at its first failure).
type passes struct {
	inner Progress
	total int

	mu      sync.Mutex
	last    bool
	started map[string]bool
	held    map[string]bool // hosts done with a pass before the last
}

func newPasses(inner Progress, total int) *passes {
	return &passes{inner: inner, total: total, started: map[string]bool{}, held: map[string]bool{}}
}

// pass starts the next pass; last says whether it is the final one.
func (p *passes) pass(last bool) {
	p.mu.Lock()
	p.last = last
	p.mu.Unlock()
}

func (p *passes) HostStart(host string, _ int) {
	p.mu.Lock()
	first := !p.started[host]
	p.started[host] = true
	delete(p.held, host)
	p.mu.Unlock()
	if first {
		p.inner.HostStart(host, p.total)
	}
}

func (p *passes) StepStart(host, label string) { p.inner.StepStart(host, label) }

func (p *passes) StepDone(host, label string, rec *Record, err error) {
	p.inner.StepDone(host, label, rec, err)
}

func (p *passes) HostDone(host string, err error) {
	p.mu.Lock()
	hold := err == nil && !p.last
	if hold {
		p.held[host] = true
	}
	p.mu.Unlock()
	if !hold {
		p.inner.HostDone(host, err)
	}
}

// Wait is the end of a pass: nothing to show yet.
func (p *passes) Wait() {}

// finish reports the hosts still held (when a later pass did not run, err
// says why) and waits for the display.
func (p *passes) finish(err error) {
	p.mu.Lock()
	var held []string
	for h := range p.held {
		held = append(held, h)
	}
	p.held = map[string]bool{}
	p.mu.Unlock()
	slices.Sort(held)
	for _, h := range held {
		p.inner.HostDone(h, err)
	}
	p.inner.Wait()
}

// TeeProgress tells every one of ps what happens (e.g. the terminal and
// the live page).
func TeeProgress(ps ...Progress) Progress { return tee(ps) }

type tee []Progress

func (t tee) HostStart(host string, steps int) {
	for _, p := range t {
		p.HostStart(host, steps)
	}
}

func (t tee) StepStart(host, label string) {
	for _, p := range t {
		p.StepStart(host, label)
	}
}

func (t tee) StepDone(host, label string, rec *Record, err error) {
	for _, p := range t {
		p.StepDone(host, label, rec, err)
	}
}

func (t tee) HostDone(host string, err error) {
	for _, p := range t {
		p.HostDone(host, err)
	}
}

func (t tee) Wait() {
	for _, p := range t {
		p.Wait()
	}
}
