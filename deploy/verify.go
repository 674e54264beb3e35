package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/remote"
)

// Expected answers of the practice's app.
const (
	RootBody  = "Hello World!"
	API50Path = "/api/50"
	API50Body = "Final count is 1275"
)

// PortProbe is what one port answered.
type PortProbe struct {
	Port int `json:"port"`
	// RootStatus and RootBody are the answer to GET /; APIStatus and
	// APIBody to GET /api/50. Status 0: no answer.
	RootStatus int    `json:"root_status"`
	RootBody   string `json:"root_body"`
	APIStatus  int    `json:"api_status"`
	APIBody    string `json:"api_body"`
	// Via is the client used on the host: curl, wget or bash (/dev/tcp).
	Via string `json:"via"`
}

// OK reports whether both answers are the practice's.
func (p PortProbe) OK() bool {
	return p.RootStatus == 200 && p.RootBody == RootBody && p.APIStatus == 200 && p.APIBody == API50Body
}

// Problem says what is wrong, in a few words.
func (p PortProbe) Problem() string {
	switch {
	case p.RootStatus == 0:
		return "no answer (connection refused or timed out)"
	case p.RootStatus != 200 || p.RootBody != RootBody:
		return fmt.Sprintf("GET / answered %d %q, want 200 %q", p.RootStatus, clip(p.RootBody), RootBody)
	case p.APIStatus != 200 || p.APIBody != API50Body:
		return fmt.Sprintf("GET %s answered %d %q, want 200 %q", API50Path, p.APIStatus, clip(p.APIBody), API50Body)
	}
	return ""
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// probeScript fetches / and /api/50 from 127.0.0.1:<port> for each port
// argument, with curl when the host has it, else with bash's /dev/tcp (a
// Debian VM always has bash; curl is not in a default install). For each
// request it prints "@@ <port> <path> <via> <status>" and then the body on
// one line; status 0 means no answer.
const probeScript = `get() { # port path
  if command -v curl >/dev/null 2>&1; then
    b=$(curl -sS -m 5 -o - -w '\n%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null) || b="
0"
    printf '@@ %s %s curl %s\n%s\n' "$1" "$2" "${b##*
}" "${b%
*}"
  else
    bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf "GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n" "$2" >&3
      r=$(timeout 5 cat <&3); sep=$(printf "\r\n\r\nx"); sep=${sep%x}
      s=${r#HTTP/* }; s=${s%% *}
      printf "@@ %s %s bash %s\n%s\n" "$1" "$2" "${s:-0}" "${r#*$sep}"' get "$1" "$2" 2>/dev/null ||
      printf '@@ %s %s bash 0\n\n' "$1" "$2"
  fi
}
for p in "$@"; do get "$p" /; get "$p" /api/50; done
`

// probeForce forces the client probeScript uses, for tests: "" (the best
// available) or "bash".
var probeForce = ""

// ProbeOnce asks each port once for / and /api/50 from the host ex runs on.
func ProbeOnce(ctx context.Context, ex remote.Executor, ports []int) (map[int]PortProbe, error) {
	script := probeScript
	if probeForce == "bash" {
		script = "command() { return 1; }\n" + script
	}
	args := []string{"sh", "-c", remote.ShellQuote(script), "probe"}
	for _, p := range ports {
		args = append(args, strconv.Itoa(p))
	}
	r, err := ex.Run(ctx, strings.Join(args, " "))
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return parseProbe(string(r.Stdout), ports), nil
}

func parseProbe(out string, ports []int) map[int]PortProbe {
	res := map[int]PortProbe{}
	for _, p := range ports {
		res[p] = PortProbe{Port: p}
	}
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		f := strings.Fields(lines[i])
		if len(f) != 5 || f[0] != "@@" {
			continue
		}
		port, _ := strconv.Atoi(f[1])
		status, _ := strconv.Atoi(f[4])
		body := ""
		if i+1 < len(lines) {
			body = strings.TrimRight(lines[i+1], "\r")
			i++
		}
		pp := res[port]
		pp.Via = f[3]
		if f[2] == "/" {
			pp.RootStatus, pp.RootBody = status, body
		} else {
			pp.APIStatus, pp.APIBody = status, body
		}
		res[port] = pp
	}
	return res
}

// Probe is ProbeOnce retried until every port answers as the practice's app
// does, or timeout passes (a server that just started may not listen yet).
func Probe(ctx context.Context, ex remote.Executor, ports []int, timeout time.Duration) (map[int]PortProbe, error) {
	deadline := time.Now().Add(timeout)
	for {
		res, err := ProbeOnce(ctx, ex, ports)
		if err != nil {
			return nil, err
		}
		ok := true
		for _, p := range res {
			ok = ok && p.OK()
		}
		if ok || time.Now().After(deadline) {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
