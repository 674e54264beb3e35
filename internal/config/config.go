// Package config turns deploylab's settings into one typed, validated Config.
// Precedence, highest first: command-line flags, DEPLOYLAB_* environment
// variables, the deploylab.yaml file, built-in defaults. Every setting has
// one name used everywhere: the flag --accept-new, the environment variable
// DEPLOYLAB_ACCEPT_NEW and the file key accept-new.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Config is every setting deploylab reads. Commands use the fields they need.
type Config struct {
	// ConfigFile is the deploylab.yaml that was read ("" if none).
	ConfigFile string `mapstructure:"-"`

	// Target hosts and how to reach them.
	Inventory   string `mapstructure:"inventory"`
	Host        string `mapstructure:"host"`
	Limit       string `mapstructure:"limit"`
	Forks       int    `mapstructure:"forks"`
	User        string `mapstructure:"user"`
	Key         string `mapstructure:"key"`
	KnownHosts  string `mapstructure:"known-hosts"`
	AcceptNew   bool   `mapstructure:"accept-new"`
	PasswordEnv string `mapstructure:"password-env"`
	// SudoPasswordEnv names the environment variable with the sudo password.
	SudoPasswordEnv string        `mapstructure:"sudo-password-env"`
	Timeout         time.Duration `mapstructure:"timeout"`

	// The local lab.
	LabDir   string `mapstructure:"lab-dir"`
	CacheDir string `mapstructure:"cache-dir"`
	Hosts    int    `mapstructure:"hosts"`
	Variant  string `mapstructure:"variant"`

	Verbose bool `mapstructure:"verbose"`

	// grade: the rubric file ("" = the built-in one), the time limit of one
	// host's whole visit, the gradebook CSV's id column (auto, email, idnumber).
	Rubric      string        `mapstructure:"rubric"`
	HostTimeout time.Duration `mapstructure:"host-timeout"`
	GradebookID string        `mapstructure:"gradebook-id"`

	// bench: where results are stored (one JSON file per run).
	ResultsDir string `mapstructure:"results-dir"`

	// up: the single server's and the clustered server's ports, and the
	// cluster's workers (0 = one per CPU, -1 = CPUs-1).
	Port        int `mapstructure:"port"`
	ClusterPort int `mapstructure:"cluster-port"`
	Instances   int `mapstructure:"instances"`
}

// Defaults are the built-in values, lowest precedence.
var Defaults = map[string]any{
	"forks":       10,
	"timeout":     30 * time.Second,
	"known-hosts": "~/.ssh/known_hosts",
	"lab-dir":     "/var/lib/deploylab/lab",
	"cache-dir":   "/var/cache/deploylab",
	"hosts":       1,
	"variant":     "base",

	// grade
	"host-timeout": 2 * time.Minute,
	"gradebook-id": "auto",

	// bench
	"results-dir": "~/.local/share/deploylab/results",

	// up
	"port":         3000,
	"cluster-port": 3001,
	"instances":    0,
}

// FileName is the configuration file looked for in the working directory and
// in $XDG_CONFIG_HOME/deploylab (~/.config/deploylab).
const FileName = "deploylab.yaml"

// Load reads the configuration for a command whose flags are fs. path is
// the --config value ("" to search the default places).
func Load(fs *pflag.FlagSet, path string) (*Config, error) {
	v := viper.New()
	for k, d := range Defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("DEPLOYLAB")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if fs != nil {
		if err := v.BindPFlags(fs); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	file, err := findFile(path)
	if err != nil {
		return nil, err
	}
	if file != "" {
		if err := checkKeys(file); err != nil {
			return nil, err
		}
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fail.New(fail.Usage, "fix "+file, fmt.Errorf("config %s: %w", file, err))
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return nil, fail.New(fail.Usage, "check the types of the values in "+orEnv(file), fmt.Errorf("config: %w", err))
	}
	c.ConfigFile = file
	c.KnownHosts = ExpandHome(c.KnownHosts)
	c.Key = ExpandHome(c.Key)
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func orEnv(file string) string {
	if file == "" {
		return "the DEPLOYLAB_* environment variables"
	}
	return file + " and the DEPLOYLAB_* environment variables"
}

func (c *Config) validate() error {
	if c.Forks < 1 || c.Forks > 500 {
		return fail.Errorf(fail.Usage, "use --forks between 1 and 500", "forks %d is out of range", c.Forks)
	}
	if c.Timeout <= 0 {
		return fail.Errorf(fail.Usage, "use a positive duration such as --timeout 30s", "timeout %s must be positive", c.Timeout)
	}
	if c.HostTimeout <= 0 {
		return fail.Errorf(fail.Usage, "use a positive duration such as --host-timeout 2m", "host-timeout %s must be positive", c.HostTimeout)
	}
	switch c.GradebookID {
	case "", "auto", "email", "idnumber":
	default:
		return fail.Errorf(fail.Usage, "use auto, email or idnumber", "gradebook-id %q is not auto, email or idnumber", c.GradebookID)
	}
	if c.Inventory != "" && c.Host != "" {
		return fail.Errorf(fail.Usage, "use -i for a class, --host for one machine", "--inventory and --host cannot be used together")
	}
	return nil
}

// findFile returns the configuration file to read: the explicit path, or
// the first deploylab.yaml found in the default places, or "".
func findFile(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fail.New(fail.Usage, "pass an existing file to --config", fmt.Errorf("config %s: %w", path, errors.Unwrap(err)))
		}
		return path, nil
	}
	candidates := []string{FileName}
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "deploylab", FileName))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", nil
}

// Keys returns every key a configuration file may hold, sorted.
func Keys() []string {
	var keys []string
	t := configKeys()
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func configKeys() map[string]bool {
	return map[string]bool{
		"inventory": true, "host": true, "limit": true, "forks": true, "user": true, "key": true,
		"known-hosts": true, "accept-new": true, "password-env": true, "sudo-password-env": true, "timeout": true,
		"lab-dir": true, "cache-dir": true, "hosts": true, "variant": true, "verbose": true,
		"rubric": true, "host-timeout": true, "gradebook-id": true,
		"results-dir": true,
		"port":        true, "cluster-port": true, "instances": true,
	}
}

// checkKeys refuses unknown keys in the file, with file:line, so a typo never
// passes silently.
func checkKeys(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fail.New(fail.Usage, "", fmt.Errorf("config %s: %w", file, err))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fail.New(fail.Usage, "fix the YAML syntax of "+file, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fail.Errorf(fail.Usage, "", "%s:%d: want a mapping of settings (key: value)", file, root.Line)
	}
	known := configKeys()
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Value == "password" || strings.HasSuffix(k.Value, "-password") {
			return fail.Errorf(fail.Usage, "put the name of an environment variable in password-env instead", "%s:%d: passwords do not belong in %s", file, k.Line, FileName)
		}
		if !known[k.Value] {
			return fail.Errorf(fail.Usage, "known keys: "+strings.Join(Keys(), ", "), "%s:%d: unknown key %q", file, k.Line, k.Value)
		}
	}
	return nil
}

// ExpandHome expands a leading ~/ to the user's home directory.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
