package observe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
	"github.com/google/go-cmp/cmp"
)

// out wraps sections' text as the script prints it.
func out(body string) []byte {
	return []byte("#deploylab-probe 1 @@DL-1\n" + body + "@@DL-1 end\n")
}

// TestParseGolden parses captured outputs (testdata/probe/*.out) and compares
// with *.golden.json (-update rewrites).
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/probe/*.out")
	if err != nil || len(files) < 5 {
		t.Fatalf("want at least 5 samples in testdata/probe, got %d (%v)", len(files), err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".out")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			h, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.MarshalIndent(h, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(in, ".out")+".golden.json", append(js, '\n'))
			if strings.Contains(string(js), "not-kept") {
				t.Errorf("PM2's environment leaked into the observation")
			}
		})
	}
}

func TestParseNotProbe(t *testing.T) {
	for _, o := range []string{"", "this is not it\n", "bash: sh: command not found\n", "#deploylab-probe 1\n", "#deploylab-probe 2 @@M\n@@M end\n"} {
		if _, err := Parse([]byte(o)); err == nil {
			t.Errorf("Parse(%q) succeeded", o)
		} else if o != "#deploylab-probe 2 @@M\n@@M end\n" && !errors.Is(err, ErrNotProbe) {
			t.Errorf("Parse(%q) = %v, want ErrNotProbe", o, err)
		}
	}
	// Cut short: parsed as far as it goes, and noted.
	h, err := Parse([]byte("banner\n#deploylab-probe 1 @@M\n@@M meta\ncpus=3\n@@M units\n"))
	if err != nil || h.Complete || h.CPUs != 3 || len(h.Notes) != 1 || !strings.Contains(h.Notes[0], "cut short") {
		t.Errorf("cut short: %v %+v", err, h)
	}
}

// TestParseEmptySection: an empty section does not swallow the next one.
func TestParseEmptySection(t *testing.T) {
	h, err := Parse(out("@@DL-1 units\n@@DL-1 file\tpath=/a\tsize=1\ttruncated=0\nx\n@@DL-1 osrelease\n@@DL-1 meta\ncpus=2\n"))
	if err != nil || len(h.Files) != 1 || h.Files[0].Content != "x" || h.CPUs != 2 {
		t.Errorf("%v %+v", err, h)
	}
}

func TestParseSSLine(t *testing.T) {
	tests := []struct {
		line string
		want Listener
		ok   bool
	}{
		{`LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=512,fd=3))`,
			Listener{Addr: "0.0.0.0", Port: 22, PIDs: []int{512}, Names: []string{"sshd"}}, true},
		{`LISTEN 0      511                *:3000            *:*    users:(("node",pid=901,fd=18),("node",pid=902,fd=18),("node",pid=901,fd=19))`,
			Listener{Addr: "*", Port: 3000, PIDs: []int{901, 902}, Names: []string{"node", "node"}}, true},
		{`LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=300,fd=14))`,
			Listener{Addr: "127.0.0.53%lo", Port: 53, PIDs: []int{300}, Names: []string{"systemd-resolve"}}, true},
		{`LISTEN 0      128             [::]:22           [::]:*`, Listener{Addr: "[::]", Port: 22}, true},
		{`LISTEN 0      511   [::ffff:127.0.0.1]:8080         *:*    users:(("PM2 v5.3.0: God",pid=77,fd=20))`,
			Listener{Addr: "[::ffff:127.0.0.1]", Port: 8080, PIDs: []int{77}, Names: []string{"PM2 v5.3.0: God"}}, true},
		// No State column.
		{`0 128 127.0.0.1:631 0.0.0.0:* users:(("cupsd",pid=9,fd=7))`,
			Listener{Addr: "127.0.0.1", Port: 631, PIDs: []int{9}, Names: []string{"cupsd"}}, true},
		// A name with quotes and parentheses.
		{"LISTEN 0 5 *:4000 *:* users:((\"a\\\"(b\",pid=5,fd=1))", Listener{Addr: "*", Port: 4000, PIDs: []int{5}, Names: []string{`a\"(b`}}, true},
		{"LISTEN\v0\v5\v*:4001\v*:*\vusers:((\"n\",pid=6,fd=1))", Listener{Addr: "*", Port: 4001, PIDs: []int{6}, Names: []string{"n"}}, true},
		{`State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess`, Listener{}, false},
		{`LISTEN 0 1 1.2.3.4:99999 *:*`, Listener{}, false},
		{`LISTEN 0 1 nocolon *:*`, Listener{}, false},
		{`garbage`, Listener{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseSSLine(tt.line)
		if ok != tt.ok {
			t.Errorf("%q: ok=%v", tt.line, ok)
			continue
		}
		if diff := cmp.Diff(tt.want, got); ok && diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestParseProcesses(t *testing.T) {
	tests := []struct {
		name, body, format string
		want               []Process
	}{
		{"ps", "    1     0 root    /sbin/init splash\n  712   700 ana   node  /home/ana/app.js  \n", "ps",
			[]Process{{1, 0, "root", "/sbin/init splash"}, {712, 700, "ana", "node  /home/ana/app.js  "}}},
		{"header", "  PID  PPID USER COMMAND\n  5 1 root sh -c x\n", "ps-header", []Process{{5, 1, "root", "sh -c x"}}},
		{"proc", "7 1 1000 node app.js \n8 1 0 [kworker]\n", "proc", []Process{{7, 1, "1000", "node app.js "}, {8, 1, "0", "[kworker]"}}},
		// The crash of issue 13: fields separated by a vertical tab.
		{"vertical tab", "1\v0\vroot\vx\n  7 1 root\vnode\vapp.js\n9\f1\froot\fy\n", "ps",
			[]Process{{1, 0, "root", "x"}, {7, 1, "root", "node\vapp.js"}, {9, 1, "root", "y"}}},
		{"junk", "x y z w\n1 2\n1 2 3\n-\n\n\r\n 1 1 u \u00a0\n", "ps", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := ParseProcesses(tt.body, tt.format)
			if diff := cmp.Diff(tt.want, got); diff != "" || n != 0 {
				t.Errorf("dropped %d (-want +got):\n%s", n, diff)
			}
		})
	}
}

func TestParseHistory(t *testing.T) {
	got := ParseHistory(": 1700000000:0;loadtest -n 10 http://x\n- cmd: pm2 ls\n  node app.js  \n: 12:;x\n\n", "/h", 10)
	want := []HistoryLine{{"/h", "loadtest -n 10 http://x"}, {"/h", "pm2 ls"}, {"/h", "node app.js"}, {"/h", ": 12:;x"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := ParseHistory("a\nb\nc\n", "/h", 2); len(got) != 2 {
		t.Errorf("max 2: %v", got)
	}
}

func TestParseUnits(t *testing.T) {
	body := "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nUser=\nMainPID=42\nNRestarts=3\n" +
		"ActiveEnterTimestampMonotonic=123456\nControlGroup=/system.slice/a.service\nRuntimeDirectory=a\n" +
		"ExecStart={ path=/usr/bin/a ; argv[]=/usr/bin/a -x ; ignore_errors=no ; start_time=[n/a] }\n\nId=b.service\nLoadState=not-found\n\nNoId=1\n"
	got := ParseUnits(body)
	want := []Unit{
		{Name: "a.service", Load: "loaded", Active: "active", Sub: "running", Enabled: "enabled", ExecStart: "/usr/bin/a -x",
			MainPID: 42, Restarts: 3, ActiveSince: 123456, ControlGroup: "/system.slice/a.service", RuntimeDirectory: "a"},
		{Name: "b.service", Load: "not-found"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	parseCgroups(got, "CPUStat=/sys/fs/cgroup/system.slice/a.service/cpu.stat\n")
	if got[0].CPUStat != "/sys/fs/cgroup/system.slice/a.service/cpu.stat" || got[1].CPUStat != "" {
		t.Errorf("cgroups: %+v", got)
	}
}

func TestParsePM2(t *testing.T) {
	apps, err := ParsePM2(">>>> In-memory PM2 is out-of-date\n[{\"pid\":7,\"name\":\"app\",\"pm_id\":\"0\",\"pm2_env\":{\"exec_mode\":\"cluster_mode\",\"status\":\"online\",\"restart_time\":2,\"instances\":\"max\",\"pm_exec_path\":\"/a.js\",\"SECRET\":\"not-kept\"}}]\n", false)
	want := []PM2App{{Name: "app", PID: 7, ExecMode: "cluster_mode", Status: "online", Instances: "max", Restarts: 2, Script: "/a.js"}}
	if err != nil || !cmp.Equal(want, apps) {
		t.Errorf("%v %s", err, cmp.Diff(want, apps))
	}
	for _, bad := range []string{"", "command not found", "[{", "[1,2]", `[{"pid":"x"}]`} {
		if _, err := ParsePM2(bad, false); err == nil {
			t.Errorf("ParsePM2(%q) succeeded", bad)
		}
	}
}

func TestGoArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "sparc64": ""} {
		if got := GoArch(in); got != want {
			t.Errorf("GoArch(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParseBounds: whatever a host prints, what is kept is bounded, and the
// rest is said in a note.
func TestParseBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("@@DL-1 processes\tformat=ps\n")
	for i := range MaxProcesses + 10 {
		fmt.Fprintf(&b, "%d 1 root %s\n", i+2, strings.Repeat("x", 10))
	}
	b.WriteString("@@DL-1 processes\tformat=ps\n1 0 root " + strings.Repeat("y", 3*MaxField) + "\n")
	b.WriteString("@@DL-1 listeners\tformat=ss\nLISTEN 0 1 *:80 *:* users:(")
	for i := range MaxSocketPIDs + 5 {
		fmt.Fprintf(&b, "(\"n\",pid=%d,fd=3),", i+1)
	}
	b.WriteString(")\n")
	b.WriteString("@@DL-1 history\tfile=/h\n")
	for range MaxHistory + 5 {
		b.WriteString("node " + strings.Repeat("z", MaxHistoryLine) + "\n")
	}
	b.WriteString("@@DL-1 file\tpath=/f\tsize=1\ttruncated=0\n" + strings.Repeat("f", MaxFileBytes+10) + "\n")
	h, err := Parse(out(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Processes) != 1 || len(h.Processes[0].Cmdline) != MaxField {
		t.Errorf("second processes section: %d processes", len(h.Processes))
	}
	if len(h.Listeners) != 1 || len(h.Listeners[0].PIDs) != MaxSocketPIDs || len(h.Listeners[0].Names) != MaxSocketPIDs {
		t.Errorf("listeners: %d", len(h.Listeners))
	}
	if len(h.History) != MaxHistory || len(h.History[0].Line) != MaxHistoryLine {
		t.Errorf("history: %d", len(h.History))
	}
	if len(h.Files) != 1 || len(h.Files[0].Content) != MaxFileBytes || !h.Files[0].Truncated {
		t.Errorf("file: %d bytes", len(h.Files[0].Content))
	}
	notes := strings.Join(h.Notes, "\n")
	for _, want := range []string{"10 processes past the limit", "5 listening sockets or socket processes past the limit"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	// The first processes section was bounded too.
	ps, n := ParseProcesses(strings.Repeat("1 0 r x\n", MaxProcesses+3), "ps")
	if len(ps) != MaxProcesses || n != 3 {
		t.Errorf("ParseProcesses: %d kept, %d dropped", len(ps), n)
	}
}

// TestParseCloneFacts: machine-id, SSH host keys (as ssh-keygen -l
// fingerprints) and the history files' hashes; anything else in their place
// is dropped.
func TestParseCloneFacts(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	head := strings.Repeat("cd", 32)
	h, err := Parse(out("@@DL-1 meta\nmachine_id=0123456789abcdef0123456789abcdef\n" +
		"@@DL-1 hostkeys\n" +
		// ssh-keygen -lf: 256 SHA256:QY2nh4WAzz2qJ5mywmYFlKYIFU8UNeCKW+0BZodxqUo root@a (ED25519)
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1N3u9EdmClxxk5QT3U1Yu7d7Dl2Eq6J9iGOpOR6pTd root@a\n" +
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1N3u9EdmClxxk5QT3U1Yu7d7Dl2Eq6J9iGOpOR6pTd root@a\n" +
		"ssh-rsa !!!notbase64 root@a\n\n" +
		"@@DL-1 history\tfile=/root/.bash_history\tlines= 42\tsum=" + sum + "\thead=" + head + "\npm2 ls\n" +
		"@@DL-1 history\tfile=/home/a/.bash_history\tlines=3\tsum=nothex\thead=" + head + "\nls\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []HistoryFile{{File: "/root/.bash_history", Lines: 42, Sum: sum, HeadSum: head}}
	if h.MachineID != "0123456789abcdef0123456789abcdef" || len(h.HostKeys) != 1 || h.HostKeys[0] != "ED25519 SHA256:QY2nh4WAzz2qJ5mywmYFlKYIFU8UNeCKW+0BZodxqUo" || !cmp.Equal(h.HistoryFiles, want) {
		t.Errorf("machine-id %q, host keys %q, history files %+v", h.MachineID, h.HostKeys, h.HistoryFiles)
	}
	h, _ = Parse(out("@@DL-1 meta\nmachine_id=../../etc/passwd\n"))
	if h.MachineID != "" {
		t.Errorf("machine-id %q accepted", h.MachineID)
	}
}
