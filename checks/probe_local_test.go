package checks

import (
	"github.com/deploylab/deploylab/observe"

	"bytes"
	"context"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needTool fails (never skips) when a tool the test needs is missing.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	return need.Tool(t, name, install)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode runs `node script` in dir with env, in its own process group,
// and waits until GET / answers.
func startNode(t *testing.T, dir, script string, port int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("PORT=%d", port))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	waitHTTP(t, port, func() string { return out.String() })
	return cmd
}

func waitHTTP(t *testing.T, port int, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d never answered: %v\n%s", port, err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runProbe runs the probe script with sh, as a host would, and parses it.
func runProbe(t *testing.T, o observe.Options, env ...string) (HostFacts, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-s")
	cmd.Stdin = bytes.NewReader(observe.Script(o))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("probe wrote to stderr:\n%s", stderr.String())
	}
	f, err := ParseProbe(out)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	return f, out
}

// TestProbeLocal runs the real probe on this machine against real Node
// servers: a single one, a cluster one (node's cluster module) and a PM2
// cluster, then grades what it saw.
func TestProbeLocal(t *testing.T) {
	needTool(t, "node", "apt-get install nodejs")
	pm2 := needTool(t, "pm2", "npm install -g pm2@7")
	needTool(t, "curl", "apt-get install curl")

	home := t.TempDir()
	proj := filepath.Join(home, "practica")
	if err := os.CopyFS(proj, os.DirFS("testdata/student")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".bash_history"), []byte("ls\nnode app.js\nloadtest -n 1000 -c 100 http://localhost:3000/api/500000\npm2 start ecosystem.config.js\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	single, cluster, pm2Port := freePort(t), freePort(t), freePort(t)
	startNode(t, proj, "app.js", single)
	startNode(t, proj, "app_cluster.js", cluster, "WORKERS=2")

	pm2Home := filepath.Join(home, ".pm2")
	pm2Env := append(os.Environ(), "PM2_HOME="+pm2Home, fmt.Sprintf("PM2_TEST_PORT=%d", pm2Port), "HOME="+home)
	runPM2 := func(args ...string) {
		t.Helper()
		cmd := exec.Command(pm2, args...)
		cmd.Dir, cmd.Env = proj, pm2Env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pm2 %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		cmd := exec.Command(pm2, "kill")
		cmd.Env = pm2Env
		_ = cmd.Run()
	})
	runPM2("start", "ecosystem.config.js")
	runPM2("save")
	waitHTTP(t, pm2Port, func() string { return "" })

	o := observe.Options{
		Paths:      []string{"/", "/api/50"},
		Ports:      []int{single, cluster, pm2Port},
		OnlyPorts:  true,
		BlockHeavy: "/api/2000000000",
		BlockShort: "/",
		BlockPorts: []int{single, cluster},
		Search:     []string{home},
		Files:      []string{filepath.Join(proj, "*.config.js")},
		Commands:   []observe.Command{{Name: CommandKey("echo hola; exit 3"), Run: "echo hola; exit 3"}},
	}
	start := time.Now()
	f, raw := runProbe(t, o, "HOME="+home)
	t.Logf("probe: %d bytes in %v", len(raw), time.Since(start).Round(time.Millisecond))

	if f.CPUs < 1 || f.Hostname == "" || f.User == "" || len(f.Processes) < 5 {
		t.Errorf("meta: cpus=%d host=%q user=%q processes=%d", f.CPUs, f.Hostname, f.User, len(f.Processes))
	}
	servers := map[int]Server{}
	for _, s := range f.Servers(defaultAppRe()) {
		servers[s.Port] = s
	}
	if s := servers[single]; s.Cluster || len(s.Workers) != 1 || !strings.Contains(s.Describe(), "node app.js") {
		t.Errorf("single server: %s", s.Describe())
	}
	if s := servers[cluster]; !s.Cluster || len(s.Workers) != 2 {
		t.Errorf("cluster server: %s", s.Describe())
	}
	if s := servers[pm2Port]; !s.Cluster || len(s.Workers) != f.CPUs || s.Manager != "pm2" {
		t.Errorf("pm2 server: %s (cpus %d)", s.Describe(), f.CPUs)
	}
	for _, port := range []int{single, cluster, pm2Port} {
		h, ok := f.HTTPAt(port, "/api/50")
		if !ok || h.Status != 200 || !strings.Contains(h.Body, "1275") || h.Millis < 0 || h.Method != "curl" {
			t.Errorf("GET :%d/api/50 = %+v", port, h)
		}
	}
	if h, _ := f.HTTPAt(cluster, "/"); h.Body != "Hola Mundo" {
		t.Errorf("GET :%d/ body = %q", cluster, h.Body)
	}

	var mine *PM2Daemon
	for i := range f.PM2 {
		if f.PM2[i].Home == pm2Home {
			mine = &f.PM2[i]
		}
	}
	if mine == nil || mine.Error != "" || len(mine.Apps) != f.CPUs {
		t.Fatalf("pm2 daemon %s: %+v (all: %+v)", pm2Home, mine, f.PM2)
	}
	for _, a := range mine.Apps {
		if a.Name != "suma" || a.ExecMode != "cluster_mode" || a.Status != "online" || a.Instances == "" || a.PID == 0 {
			t.Errorf("pm2 app: %+v", a)
		}
	}
	var dumped bool
	for _, d := range f.PM2Dumps {
		if d.Path == filepath.Join(pm2Home, "dump.pm2") && len(d.Apps) == f.CPUs && d.Apps[0].Name == "suma" {
			dumped = true
		}
	}
	if !dumped {
		t.Errorf("dump.pm2 not read: %+v", f.PM2Dumps)
	}

	var files []string
	for _, fl := range f.Files {
		files = append(files, strings.TrimPrefix(fl.Path, home))
	}
	for _, want := range []string{"/practica/app.js", "/practica/app_cluster.js", "/practica/ecosystem.config.js", "/practica/pruebas.txt"} {
		if !strings.Contains(strings.Join(files, " "), want) {
			t.Errorf("file %s not found in %v", want, files)
		}
	}
	if len(f.History) != 3 || !strings.HasPrefix(f.History[1].Line, "loadtest -n 1000") {
		t.Errorf("history: %+v", f.History)
	}
	if len(f.Commands) != 1 || f.Commands[0].Exit != 3 || f.Commands[0].Output != "hola\n" || f.Commands[0].Name != CommandKey("echo hola; exit 3") {
		t.Errorf("commands: %+v", f.Commands)
	}
	var toolNames []string
	for _, tl := range f.Tools {
		toolNames = append(toolNames, tl.Name)
	}
	if !strings.Contains(" "+strings.Join(toolNames, " ")+" ", " node ") || !strings.Contains(strings.Join(toolNames, " "), "pm2") {
		t.Errorf("tools: %+v", f.Tools)
	}

	// The browser-tab experiment: the single server makes the short request
	// wait for the heavy one; the cluster does not. Orders of magnitude only.
	blk := map[int]BlockingProbe{}
	for _, b := range f.Blocking {
		blk[b.Port] = b
	}
	bs, bc := blk[single], blk[cluster]
	t.Logf("blocking: single heavy %.0f ms short %.0f ms; cluster heavy %.0f ms short %.0f ms", bs.HeavyMillis, bs.ShortMillis, bc.HeavyMillis, bc.ShortMillis)
	if bs.Error != "" || bs.HeavyStatus != 200 || bs.ShortMillis < 700 {
		t.Errorf("single blocking: %+v", bs)
	}
	if bc.Error != "" || bc.ShortStatus != 200 || bc.ShortMillis > bs.ShortMillis/2 || bc.HeavyMillis < bc.OffsetMillis+bc.ShortMillis {
		t.Errorf("cluster blocking: %+v", bc)
	}

	// Grade what was seen with the default rubric: a complete student (the
	// manager criteria apart from systemd, which this machine does not run).
	r := loadDefault(t)
	rep := Score(r, f, nil)
	outcomes := map[string]Outcome{}
	for _, c := range rep.Criteria {
		for _, ch := range c.Checks {
			outcomes[c.ID+"."+ch.ID] = ch.Outcome
		}
	}
	for id, want := range map[string]Outcome{
		"sin_cluster.codigo": Pass, "sin_cluster.raiz": Pass, "sin_cluster.suma": Pass,
		"con_cluster.codigo": Pass, "con_cluster.workers": Pass, "con_cluster.suma": Pass,
		"carga.ejecutada": Pass, "carga.comparativa": Skip,
		"pm2.cluster": Pass, "pm2.ecosystem": Pass, "pm2.guardada": Pass, "pm2.respawn": Skip,
	} {
		if outcomes[id] != want {
			t.Errorf("%s = %s, want %s\n%s", id, outcomes[id], want, reportText(rep))
		}
	}
}

// TestProbeFallbacks runs the probe with ss, ps, curl, wget and pm2 hidden:
// it must still list listeners (from /proc), processes (from /proc) and make
// requests (bash's /dev/tcp), and it must not fail.
func TestProbeFallbacks(t *testing.T) {
	needTool(t, "node", "apt-get install nodejs")
	needTool(t, "bash", "apt-get install bash")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/student")); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	startNode(t, dir, "app.js", port)
	tests := []struct {
		name    string
		disable string
		method  string
	}{
		{"no curl, no ss, no ps", "curl ss ps pm2", "wget"},
		{"bash only", "curl wget ss ps pm2 systemctl", "devtcp"},
		{"no client at all", "curl wget bash ss ps pm2", "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := runProbe(t, observe.Options{Ports: []int{port}, OnlyPorts: true, Search: []string{dir}}, "DL_DISABLE="+tc.disable)
			if len(f.Processes) < 3 {
				t.Errorf("processes from /proc: %d", len(f.Processes))
			}
			var seen bool
			for _, l := range f.Listeners {
				if l.Port == port && l.Addr == "127.0.0.1" && len(l.PIDs) > 0 {
					seen = true
				}
			}
			if !seen {
				t.Errorf("listener %d not seen with its pid: %+v", port, f.Listeners)
			}
			servers := f.Servers(defaultAppRe())
			var s *Server
			for i := range servers {
				if servers[i].Port == port {
					s = &servers[i]
				}
			}
			if s == nil || s.Cluster || !strings.Contains(s.Describe(), "app.js") {
				t.Errorf("server: %+v", servers)
			}
			h, ok := f.HTTPAt(port, "/api/50")
			if !ok || h.Method != tc.method {
				t.Fatalf("http: %+v", f.HTTP)
			}
			if tc.method == "none" {
				if h.Error != ErrNoHTTPClient {
					t.Errorf("error = %q", h.Error)
				}
				return
			}
			if h.Status != 200 || h.Body != "Final count is 1275" {
				t.Errorf("http: %+v", h)
			}
		})
	}
}

func defaultAppRe() *regexp.Regexp {
	return regexp.MustCompile(DefaultAppProcess)
}
