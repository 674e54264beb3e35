package checks

import (
	"testing"
)

// TestParseProbeHostile: output a student's VM can make the probe print
// (a process whose command line separates its fields with a vertical tab,
// junk where ss's and pm2's output should be) is parsed without a panic.
func TestParseProbeHostile(t *testing.T) {
	const m = "@@DL-1"
	for name, body := range map[string]string{
		"vertical tab":   m + " processes\tformat=ps\n1\v0\vroot\vx\n  7 1 root\vnode\vapp.js\n",
		"form feed":      m + " processes\tformat=ps\n1\f0\froot\fx\n",
		"ss junk":        m + " listeners\tformat=ss\nLISTEN 0 1 :x y users:((\"a\",pid=\nLISTEN 0 1 1.2.3.4:99999999999999999999 *:*\n",
		"pm2 junk":       m + " pm2\thome=/h\tuser=u\tpid=1\n[{\"pm_id\":{\"a\":[[[[\n",
		"proc listeners": m + " listeners\tformat=proc\n/proc/net/tcp ZZZZ:QQ 1\n/proc/net/tcp 0100007F 2\n",
		"history":        m + " history\tfile=/h\n: 1:\n: :;\n",
		"units":          m + " units\nId=\nExecStart={ argv[]=\n",
	} {
		t.Run(name, func(t *testing.T) {
			out := "#deploylab-probe 1 " + m + "\n" + body + m + " end\n"
			f, err := ParseProbe([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			if name == "vertical tab" && (len(f.Processes) != 2 || f.Processes[1].Cmdline != "node\vapp.js") {
				t.Errorf("processes: %+v", f.Processes)
			}
		})
	}
}
