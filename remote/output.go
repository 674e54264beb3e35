package remote

import (
	"fmt"
	"sync"

	"github.com/deploylab/deploylab/internal/fail"
)

// What deploylab keeps of a command's output. A host decides what it
// prints; deploylab's memory must not: the rest is read, counted and
// dropped, and Run says "truncated".
const (
	// MaxOutput is the most of a command's stdout kept.
	MaxOutput = 2 << 20
	// MaxStderr is the most of a command's stderr kept (it carries messages).
	MaxStderr = 256 << 10
	// HostOutputBudget is the most output kept at once for all the commands
	// running on one host (one full stdout and a few stderrs): with the
	// CLI's 10 forks, deploylab holds at most 10 times this of VM output.
	HostOutputBudget = MaxOutput + 4*MaxStderr
)

// outputBudget is what a host's running commands may still keep.
type outputBudget struct {
	mu   sync.Mutex
	left int
}

func newOutputBudget(n int) *outputBudget { return &outputBudget{left: n} }

// take reserves up to n bytes and returns how many it got.
func (b *outputBudget) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, b.left)
	b.left -= n
	return n
}

func (b *outputBudget) available() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.left
}

func (b *outputBudget) give(n int) {
	b.mu.Lock()
	b.left += n
	b.mu.Unlock()
}

// growDirect is the size past which a capBuffer grows to its limit at once.
const growDirect = 64 << 10

// capBuffer keeps the first limit bytes written to it (within its host's
// budget) and counts the others.
type capBuffer struct {
	mu      sync.Mutex
	buf     []byte
	limit   int
	dropped int64
	budget  *outputBudget
	held    int // reserved from budget
}

func newCapBuffer(limit int, budget *outputBudget) *capBuffer {
	return &capBuffer{limit: limit, budget: budget}
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(p), c.limit-len(c.buf))
	if n > 0 && c.budget != nil {
		n = c.budget.take(n)
		c.held += n
	}
	if n > 0 {
		if need := len(c.buf) + n; need > cap(c.buf) && need > growDirect {
			// A command that prints this much usually prints more: one
			// allocation to what it may still keep, instead of doubling's
			// garbage.
			room := c.limit
			if c.budget != nil {
				room = min(room, need+c.budget.available())
			}
			c.buf = append(make([]byte, 0, room), c.buf...)
		}
		c.buf = append(c.buf, p[:n]...)
	}
	c.dropped += int64(len(p) - n)
	return len(p), nil
}

// bytes returns what was kept and how much was dropped.
func (c *capBuffer) bytes() ([]byte, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf, c.dropped
}

// release gives the buffer's share of the budget back (the command ended;
// its output now belongs to the caller).
func (c *capBuffer) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budget != nil {
		c.budget.give(c.held)
	}
	c.held = 0
}

// OutputError says that a command printed more than deploylab keeps. The
// Result returned with it holds the first part and the counts of the rest.
// It is wrapped in a fail.Failed error.
type OutputError struct {
	Command                      string
	StdoutDropped, StderrDropped int64
}

func (e *OutputError) Error() string {
	s := fmt.Sprintf("output of %s truncated:", shortCmd(e.Command))
	if e.StdoutDropped > 0 {
		s += fmt.Sprintf(" stdout over %s (%s more dropped)", size(MaxOutput), size(e.StdoutDropped))
	}
	if e.StderrDropped > 0 {
		s += fmt.Sprintf(" stderr over %s (%s more dropped)", size(MaxStderr), size(e.StderrDropped))
	}
	return s
}

func size[T int | int64](n T) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// capture holds a running command's two output streams.
type capture struct {
	stdout, stderr *capBuffer
}

func newCapture(budget *outputBudget) capture {
	return capture{newCapBuffer(MaxOutput, budget), newCapBuffer(MaxStderr, budget)}
}

// result fills r's output from the capture and gives the budget back.
func (c capture) result(r Result) Result {
	r.Stdout, r.StdoutDropped = c.stdout.bytes()
	r.Stderr, r.StderrDropped = c.stderr.bytes()
	c.stdout.release()
	c.stderr.release()
	return r
}

// truncated returns an *OutputError (fail.Failed) when r lost output.
func truncated(cmd string, r Result) error {
	if !r.Truncated() {
		return nil
	}
	return fail.New(fail.Failed, "the host printed far more than this command ever does: look at what runs there",
		&OutputError{Command: cmd, StdoutDropped: r.StdoutDropped, StderrDropped: r.StderrDropped})
}
