package checks

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// probeWithSS is a probe output whose ss section has n listening sockets,
// each held by one node process (shared: one socket held by n processes).
func probeWithSS(n int, shared bool) []byte {
	var b strings.Builder
	b.WriteString("#deploylab-probe 1 @@M\n@@M listeners\tformat=ss\n")
	b.WriteString("State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n")
	if shared {
		b.WriteString("LISTEN 0 511 *:3000 *:* users:(")
		for i := range n {
			fmt.Fprintf(&b, "(\"node\",pid=%d,fd=18),", 1000+i)
		}
		b.WriteString(")\n")
	} else {
		for i := range n {
			fmt.Fprintf(&b, "LISTEN 0 511 10.0.%d.%d:%d *:* users:((\"node\",pid=%d,fd=18))\n", i/250, i%250, 10000+i%50000, 1000+i)
		}
	}
	b.WriteString("@@M end\n")
	return []byte(b.String())
}

// BenchmarkParseProbeSS50k: ss on a host with 50k listening sockets.
func BenchmarkParseProbeSS50k(b *testing.B) {
	out := probeWithSS(50000, false)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := ParseProbe(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseProbeSSShared50k: one socket held by 50k processes.
func BenchmarkParseProbeSSShared50k(b *testing.B) {
	out := probeWithSS(50000, true)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := ParseProbe(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServers50k: the servers of a host with 50k listening sockets
// whose processes are not in the process list.
func BenchmarkServers50k(b *testing.B) {
	f, err := ParseProbe(probeWithSS(50000, false))
	if err != nil {
		b.Fatal(err)
	}
	re := regexp.MustCompile(DefaultAppProcess)
	for b.Loop() {
		f.Servers(re)
	}
}
