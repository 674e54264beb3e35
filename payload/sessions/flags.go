package sessions

import (
	"flag"
	"fmt"
	"time"
)

// FlagsHelp is the help text of the flags Bind registers.
const FlagsHelp = `  --sessions MODE       the login/me/logout routes (off by default):
                          memory     tokens in each worker's memory
                          master     shared through the master (cluster)
                          stateless  HMAC-signed tokens, no server memory
  --session-key-file F  key of stateless tokens (at least 16 bytes; needed
                        by --sessions stateless)
  --session-ttl D       a token's life (default 1h)
  --session-cap N       tokens kept at most, the oldest evicted (default 100000)
`

// Flags are the session flags of sumserver and sumcluster.
type Flags struct {
	mode    *string
	keyFile *string
	ttl     *time.Duration
	cap     *int
}

// Bind registers --sessions, --session-key-file, --session-ttl and
// --session-cap on fs.
func Bind(fs *flag.FlagSet) *Flags {
	return &Flags{
		mode:    fs.String("sessions", "off", ""),
		keyFile: fs.String("session-key-file", "", ""),
		ttl:     fs.Duration("session-ttl", DefaultTTL, ""),
		cap:     fs.Int("session-cap", DefaultCap, ""),
	}
}

// Options checks the flags and reads the key file; the error names the flag.
func (f *Flags) Options() (Options, error) {
	m, err := ParseMode(*f.mode)
	if err != nil {
		return Options{}, fmt.Errorf("--sessions: %v", err)
	}
	o := Options{Mode: m, TTL: *f.ttl, Cap: *f.cap}
	if *f.ttl <= 0 {
		return o, fmt.Errorf("--session-ttl: must be positive, got %s", *f.ttl)
	}
	if *f.cap < 1 || *f.cap > 10_000_000 {
		return o, fmt.Errorf("--session-cap: want 1 to 10000000, got %d", *f.cap)
	}
	switch {
	case m == Stateless && *f.keyFile == "":
		return o, fmt.Errorf("--sessions stateless needs --session-key-file")
	case m == Stateless:
		if o.Key, err = LoadKey(*f.keyFile); err != nil {
			return o, fmt.Errorf("--session-key-file: %v", err)
		}
	}
	return o, nil
}
