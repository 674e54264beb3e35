package observe

import (
	"fmt"
	"strings"
	"testing"
)

// ssOutput is ss -ltnp on a host with n listening sockets, each held by one
// process (shared: one socket held by n processes).
func ssOutput(n int, shared bool) string {
	var b strings.Builder
	b.WriteString("State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n")
	if shared {
		b.WriteString("LISTEN 0 511 *:3000 *:* users:(")
		for i := range n {
			fmt.Fprintf(&b, "(\"node\",pid=%d,fd=18),", 1000+i)
		}
		b.WriteString(")\n")
		return b.String()
	}
	for i := range n {
		fmt.Fprintf(&b, "LISTEN 0 511 10.0.%d.%d:%d *:* users:((\"node\",pid=%d,fd=18))\n", i/250, i%250, 10000+i%50000, 1000+i)
	}
	return b.String()
}

// BenchmarkParseSS50k: ss on a host with 50k listening sockets.
func BenchmarkParseSS50k(b *testing.B) {
	out := ssOutput(50000, false)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if ls, _ := ParseSS(out); len(ls) != 50000 {
			b.Fatal(len(ls))
		}
	}
}

// BenchmarkParseSSShared50k: one socket held by 50k processes (kept:
// MaxSocketPIDs of them).
func BenchmarkParseSSShared50k(b *testing.B) {
	out := ssOutput(50000, true)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if ls, _ := ParseSS(out); len(ls) != 1 {
			b.Fatal(len(ls))
		}
	}
}

// BenchmarkParseProcesses100k: a process list at the bound.
func BenchmarkParseProcesses100k(b *testing.B) {
	var sb strings.Builder
	for i := range MaxProcesses {
		fmt.Fprintf(&sb, "%7d %7d %-32s node /home/ana/practica/app.js --port %d\n", i+2, 1, "ana", i)
	}
	out := sb.String()
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		ParseProcesses(out, "ps")
	}
}
