package sessions

import (
	"fmt"
	"time"
)

// Mode is where the tokens live.
type Mode int

const (
	// Off: no session routes (the practice's app unchanged).
	Off Mode = iota
	// Memory: per worker.
	Memory
	// Master: per worker, shared through the master.
	Master
	// Stateless: signed tokens, no server memory.
	Stateless
)

// Limits and defaults.
const (
	// DefaultCap is how many tokens a worker (and the master) keeps at
	// most; past it the oldest is evicted.
	DefaultCap = 100_000
	// DefaultTTL is how long a token is valid.
	DefaultTTL = time.Hour
	// MaxBody bounds a request body.
	MaxBody = 4 << 10
	// MaxName bounds a name, in bytes.
	MaxName = 64
	// MaxToken bounds a token (a stateless one carries the name).
	MaxToken = 512
)

// ParseMode parses "off" (or ""), "memory", "master" and "stateless".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "off":
		return Off, nil
	case "memory":
		return Memory, nil
	case "master":
		return Master, nil
	case "stateless":
		return Stateless, nil
	}
	return Off, fmt.Errorf("unknown sessions mode %q (want memory, master or stateless)", s)
}

func (m Mode) String() string {
	switch m {
	case Memory:
		return "memory"
	case Master:
		return "master"
	case Stateless:
		return "stateless"
	}
	return "off"
}
