package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/google/go-cmp/cmp"
)

func wantClass(t *testing.T, dir string) []Host {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "keys/id_ed25519")
	kh := filepath.Join(home, ".ssh/known_hosts")
	return []Host{
		{Name: "alu01", Address: "192.168.1.50", Student: "Ana García", ID: "ana@uni.es", Groups: []string{"manana"},
			Vars: Vars{User: "deploy", Port: 22, Key: key, KnownHosts: kh, PasswordEnv: "CLASE_PASS"}},
		{Name: "alu02", Address: "192.168.1.51", Student: "Luis Pérez", ID: "1234", Groups: []string{"tarde"},
			Vars: Vars{User: "alumno", Port: 2222, Key: key, KnownHosts: kh, PasswordEnv: "CLASE_PASS"}},
		{Name: "alu03", Address: "192.168.1.52", Groups: []string{"tarde"},
			Vars: Vars{User: "alumno", Port: 22, Key: key, KnownHosts: kh, PasswordEnv: "CLASE_PASS"}},
	}
}

func TestLoadYAMLAndINIAgree(t *testing.T) {
	for _, f := range []string{"testdata/clase.yaml", "testdata/clase.ini"} {
		t.Run(f, func(t *testing.T) {
			inv, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantClass(t, "testdata"), inv.Hosts); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	inv, err := Load("testdata/clase.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.yaml")
	if err := Save(out, inv); err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		data, _ := os.ReadFile(out)
		t.Fatalf("%v\n%s", err, data)
	}
	if diff := cmp.Diff(inv.Hosts, back.Hosts); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, text, want string
	}{
		{"unknown top key", "a.yaml", "hosts:\n  a: 1.2.3.4\nhostz: {}\n", "a.yaml:3: unknown key \"hostz\""},
		{"unknown host key", "a.yaml", "hosts:\n  a:\n    address: 1.2.3.4\n    adress: 5\n", "a.yaml:4: host \"a\": unknown key \"adress\""},
		{"no address", "a.yaml", "hosts:\n  a: {student: x}\n", "a.yaml:2: host \"a\" has no address"},
		{"duplicate host", "a.yaml", "hosts:\n  a: 1.2.3.4\n  a: 1.2.3.5\n", "a.yaml:3: host \"a\" already defined at line 2"},
		{"bad port", "a.yaml", "hosts:\n  a: {address: x, port: 99999}\n", "a.yaml:2: host \"a\": port \"99999\""},
		{"password in file", "a.yaml", "vars:\n  password: hunter2\nhosts:\n  a: x\n", "a.yaml:2: vars: passwords do not belong in the inventory"},
		{"bad yaml", "a.yaml", "hosts: [\n", "a.yaml: "},
		{"empty", "a.yaml", "", "empty inventory"},
		{"no hosts", "a.yaml", "vars: {user: x}\n", "no hosts: section"},
		{"group unknown host", "a.yaml", "hosts:\n  a: x\ngroups:\n  g: [b]\n", "group \"g\" names unknown host \"b\""},
		{"ini unknown var", "a.ini", "[g]\na ansible_hots=1.2.3.4\n", "a.ini:2: unknown variable \"ansible_hots\""},
		{"ini password", "a.ini", "a ansible_password=x\n", "a.ini:1: passwords do not belong"},
		{"ini bad section", "a.ini", "[g:foo]\na\n", "a.ini:1: unknown section kind"},
		{"ini unclosed quote", "a.ini", "a student=\"Ana\n", "a.ini:1:"},
		{"ini unknown child", "a.ini", "[g:children]\nnope\n[h]\na\n", "a.ini:2: group \"g\" names unknown child group \"nope\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.text))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if fail.KindOf(err) != fail.Usage {
				t.Errorf("error kind %v, want Usage", fail.KindOf(err))
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	inv, err := Load("testdata/clase.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limit   string
		want    []string
		wantErr string
	}{
		{"", []string{"alu01", "alu02", "alu03"}, ""},
		{"all", []string{"alu01", "alu02", "alu03"}, ""},
		{"tarde", []string{"alu02", "alu03"}, ""},
		{"alu01,alu03", []string{"alu01", "alu03"}, ""},
		{"alu0*", []string{"alu01", "alu02", "alu03"}, ""},
		{"all,!tarde", []string{"alu01"}, ""},
		{"!alu02", []string{"alu01", "alu03"}, ""},
		{"alu0*,&tarde", []string{"alu02", "alu03"}, ""},
		{"192.168.1.51", []string{"alu02"}, ""},
		{"alu9", nil, "\"alu9\" matches no host or group"},
		{"alu01,!alu01", nil, "selects no host"},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			hosts, err := inv.Select(tt.limit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, h := range hosts {
				names = append(names, h.Name)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromHost(t *testing.T) {
	tests := []struct {
		spec                string
		user, addr, wantErr string
		port                int
	}{
		{"192.168.1.50", "", "192.168.1.50", "", 22},
		{"deploy@vm.example.org:2222", "deploy", "vm.example.org", "", 2222},
		{"[::1]:2200", "", "::1", "", 2200},
		{"[fe80::1]", "", "fe80::1", "", 22},
		{"", "", "", "--host is empty", 0},
		{"a b", "", "", "is not a host address", 0},
		{"h:0", "", "", "port \"0\"", 0},
		{"@h", "", "", "empty user", 0},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			inv, err := FromHost(tt.spec, Vars{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if fail.KindOf(err) != fail.Usage {
					t.Errorf("kind %v, want Usage", fail.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := inv.Hosts[0]
			if h.User != tt.user || h.Address != tt.addr || h.Port != tt.port {
				t.Errorf("got user=%q addr=%q port=%d", h.User, h.Address, h.Port)
			}
		})
	}
}

func TestValidAddress(t *testing.T) {
	for a, ok := range map[string]bool{
		"192.168.1.50": true, "::1": true, "fe80::1": true, "alu01": true, "vm.example.org": true, "vm.example.org.": true,
		"my_host-2": true, "": false, "-oProxyCommand=x": false, "a b": false, "a/b": false, ".hidden": false,
		"host\x1b[2J": false, "a..b": false, "ünï": false, strings.Repeat("a", 64) + ".org": false, "[::1]": false,
	} {
		if err := ValidAddress(a); (err == nil) != ok {
			t.Errorf("ValidAddress(%q) = %v, want ok %v", a, err, ok)
		}
	}
	if _, err := Parse("bad.yaml", []byte("hosts:\n  alu01: {address: \"-oProxyCommand=touch /tmp/x\"}\n")); err == nil || !strings.Contains(err.Error(), `bad.yaml: host alu01: address "-oProxyCommand=touch /tmp/x" is not an IP address or a host name`) {
		t.Errorf("inventory with a bad address: %v", err)
	}
	if _, err := FromHost("deploy@vm;reboot", Vars{}); err == nil {
		t.Error("--host with a ; accepted")
	}
}
