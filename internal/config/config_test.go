package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/spf13/pflag"
)

// hermetic clears the DEPLOYLAB_* variables of the environment the tests
// run in (a developer's or the test script's), restoring them afterwards.
func hermetic(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DEPLOYLAB_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func flags(args ...string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Int("forks", 10, "")
	fs.String("limit", "", "")
	fs.Duration("timeout", 30*time.Second, "")
	if err := fs.Parse(args); err != nil {
		panic(err)
	}
	return fs
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrecedence checks flags > env > file > defaults, one key per layer.
func TestPrecedence(t *testing.T) {
	hermetic(t)
	file := writeFile(t, "forks: 3\nlimit: fromfile\nhosts: 7\nvariant: node\n")
	t.Setenv("DEPLOYLAB_FORKS", "4")
	t.Setenv("DEPLOYLAB_LIMIT", "fromenv")
	t.Setenv("DEPLOYLAB_LAB_DIR", "/tmp/labenv")
	c, err := Load(flags("--limit", "fromflag"), file)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"flag beats env and file", c.Limit, "fromflag"},
		{"env beats file", c.Forks, 4},
		{"file beats default", c.Hosts, 7},
		{"file", c.Variant, "node"},
		{"env with dash", c.LabDir, "/tmp/labenv"},
		{"default", c.CacheDir, "/var/cache/deploylab"},
		{"flag default", c.Timeout, 30 * time.Second},
		{"file recorded", c.ConfigFile, file},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestNoFile(t *testing.T) {
	hermetic(t)
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	c, err := Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfigFile != "" || c.Forks != 10 || c.Hosts != 1 {
		t.Errorf("defaults not applied: %+v", c)
	}
	home, _ := os.UserHomeDir()
	if c.KnownHosts != filepath.Join(home, ".ssh/known_hosts") {
		t.Errorf("known-hosts not expanded: %q", c.KnownHosts)
	}
}

func TestErrors(t *testing.T) {
	hermetic(t)
	tests := []struct {
		name, file, want string
		flags            []string
	}{
		{"unknown key", "forks: 3\nforsk: 4\n", ":2: unknown key \"forsk\"", nil},
		{"password", "password: x\n", ":1: passwords do not belong", nil},
		{"bad yaml", "forks: [\n", "deploylab.yaml: ", nil},
		{"not a mapping", "- a\n", ":1: want a mapping", nil},
		{"bad type", "forks: many\n", `deploylab.yaml:1: forks: "many" is not a whole number`, nil},
		{"bad duration", "verbose: true\ntimeout: soon\n", `deploylab.yaml:2: timeout: "soon" is not a duration`, nil},
		{"renamed", "host-timeout: 3m\n", `:1: "host-timeout" is now called "timeout"`, nil},
		{"forks range", "forks: 0\n", "forks 0 is out of range", nil},
		{"inventory and host", "inventory: a.yaml\nhost: b\n", "cannot be used together", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, tt.file)
			_, err := Load(flags(tt.flags...), file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if fail.KindOf(err) != fail.Usage {
				t.Errorf("kind = %v, want Usage", fail.KindOf(err))
			}
		})
	}
	if _, err := Load(nil, "/nonexistent/deploylab.yaml"); err == nil || fail.KindOf(err) != fail.Usage {
		t.Errorf("missing --config file: err = %v", err)
	}
}

// TestDurations: a bare number is seconds wherever it comes from (YAML
// `timeout: 5` used to be 5ns); units work as before.
func TestDurations(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		file string
		env  string
		want time.Duration
	}{
		{"timeout: 5\n", "", 5 * time.Second},
		{"timeout: 2.5\n", "", 2500 * time.Millisecond},
		{"timeout: 90s\n", "", 90 * time.Second},
		{"timeout: 2m\n", "", 2 * time.Minute},
		{"", "7", 7 * time.Second},
		{"", "1h", time.Hour},
	} {
		if tc.env != "" {
			t.Setenv("DEPLOYLAB_TIMEOUT", tc.env)
		}
		c, err := Load(nil, writeFile(t, tc.file))
		os.Unsetenv("DEPLOYLAB_TIMEOUT")
		if err != nil || c.Timeout != tc.want {
			t.Errorf("file %q env %q: timeout %v (%v), want %v", tc.file, tc.env, c, err, tc.want)
		}
	}
}

// TestTypeErrorsOneLine: a bad value is one line naming where it came from.
func TestTypeErrorsOneLine(t *testing.T) {
	hermetic(t)
	t.Setenv("DEPLOYLAB_PORT", "http")
	_, err := Load(nil, writeFile(t, "forks: 3\n"))
	if err == nil || err.Error() != `DEPLOYLAB_PORT: "http" is not a whole number` {
		t.Errorf("err = %v", err)
	}
	os.Unsetenv("DEPLOYLAB_PORT")
	_, err = Load(nil, writeFile(t, "forks: 3\naccept-new: [yes]\n"))
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "deploylab.yaml:2: accept-new: ") {
		t.Errorf("err = %q, want one line with file:line", err)
	}
}

// TestAcceptNewInWorkingDirectory: a ./deploylab.yaml that turns on
// accept-new is warned about, naming the file and line.
func TestAcceptNewInWorkingDirectory(t *testing.T) {
	hermetic(t)
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if err := os.WriteFile(FileName, []byte("forks: 2\naccept-new: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "deploylab.yaml:2 in the working directory turns on accept-new") {
		t.Errorf("warnings %q", c.Warnings)
	}
	// Asked for explicitly (--config), it is the user's choice: no warning.
	if c, err := Load(nil, FileName); err != nil || len(c.Warnings) != 0 {
		t.Errorf("--config: warnings %q, %v", c.Warnings, err)
	}
}
