package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deploylab/deploylab/internal/config"
)

// commands walks the command tree.
func commands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, commands(s)...)
	}
	return out
}

// sample is a value for a setting of type t, unlike any default, as the
// environment and the file spell it, and as Config holds it.
func sample(t reflect.Type) (env, yaml string, want any) {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "7", "7", 7 * time.Second // a bare number is seconds
	case t.Kind() == reflect.Bool:
		return "true", "true", true
	case t.Kind() == reflect.Int:
		return "4242", "4242", 4242
	case t.Kind() == reflect.Slice:
		return "single,cluster", "[single, cluster]", []string{"single", "cluster"}
	}
	return "/tmp/from-setting", "/tmp/from-setting", "/tmp/from-setting"
}

func field(cfg *config.Config, key string) (reflect.Value, bool) {
	v := reflect.ValueOf(cfg).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("mapstructure") == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// TestEverySettingFromEnvAndFile: every flag of every command is a setting
// of the one config, and each works from its DEPLOYLAB_* variable and from
// deploylab.yaml, on every command that has it (the help promises it).
func TestEverySettingFromEnvAndFile(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DEPLOYLAB_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	keys := config.Keys()
	tested := map[string]bool{}
	root := newRootCmd(nil, io.Discard, io.Discard)
	for _, c := range commands(root.Command) {
		fs := c.Flags() // with the inherited persistent flags
		fs.AddFlagSet(c.InheritedFlags())
		fs.VisitAll(func(f *pflag.Flag) {
			name := string(fs.GetNormalizeFunc()(fs, f.Name))
			if name == "help" || name == "config" {
				return
			}
			if !slices.Contains(keys, name) {
				t.Errorf("%s --%s is not a setting of internal/config: add it to config.Config", c.CommandPath(), name)
				return
			}
			if (name == "inventory" || name == "host") && tested[name] {
				return
			}
			for _, from := range []string{"env", "file"} {
				t.Run(strings.ReplaceAll(c.CommandPath(), " ", "_")+"/"+name+"/"+from, func(t *testing.T) {
					cf, ok := field(&config.Config{}, name)
					if !ok {
						t.Fatalf("no field")
					}
					env, yaml, want := sample(cf.Type())
					path := ""
					if from == "env" {
						t.Setenv(config.EnvName(name), env)
					} else {
						path = filepath.Join(t.TempDir(), config.FileName)
						if err := os.WriteFile(path, []byte(name+": "+yaml+"\n"), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					// Settings with a range or a set of values.
					if v, ok := map[string]string{"forks": "250", "gradebook-id": "email"}[name]; ok {
						want = any(v)
						if name == "forks" {
							want = 250
						}
						if from == "env" {
							t.Setenv(config.EnvName(name), v)
						} else if err := os.WriteFile(path, []byte(name+": "+v+"\n"), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					cfg, err := config.Load(fs, path)
					if err != nil {
						t.Fatalf("load: %v", err)
					}
					got, _ := field(cfg, name)
					g := got.Interface()
					if name == "key" || name == "known-hosts" {
						want = config.ExpandHome(want.(string))
					}
					if !reflect.DeepEqual(g, want) {
						t.Errorf("%s: got %#v, want %#v", name, g, want)
					}
				})
			}
			tested[name] = true
		})
	}
	for _, k := range keys {
		if !tested[k] {
			t.Errorf("setting %q is no command's flag", k)
		}
	}
}
