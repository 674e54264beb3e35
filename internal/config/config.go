// Package config turns deploylab's settings into one typed, validated Config.
// Precedence, highest first: command-line flags, DEPLOYLAB_* environment
// variables, the deploylab.yaml file, then the default (the command's flag
// default, else Defaults). Every setting has one name used everywhere: the
// flag --accept-new, the environment variable DEPLOYLAB_ACCEPT_NEW and the
// file key accept-new. Every flag of every command is a setting: a field of
// Config (Keys lists them).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Config is every setting deploylab reads. Commands use the fields they need.
type Config struct {
	// ConfigFile is the deploylab.yaml that was read ("" if none).
	ConfigFile string `mapstructure:"-"`
	// Warnings are things the user should know about the settings (one
	// line each), e.g. a deploylab.yaml in the working directory turning
	// on accept-new.
	Warnings []string `mapstructure:"-"`

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
	SudoPasswordEnv string `mapstructure:"sudo-password-env"`
	// Timeout bounds each host's whole work (default per command);
	// ConnectTimeout the TCP connect and SSH handshake.
	Timeout        time.Duration `mapstructure:"timeout"`
	ConnectTimeout time.Duration `mapstructure:"connect-timeout"`

	// The local lab (and the demo's own lab directory).
	LabDir     string `mapstructure:"lab-dir"`
	DemoLabDir string `mapstructure:"demo-lab-dir"`
	CacheDir   string `mapstructure:"cache-dir"`
	Hosts      int    `mapstructure:"hosts"`
	Variant    string `mapstructure:"variant"`

	Verbose bool `mapstructure:"verbose"`
	// JSON prints machine-readable output (up, the verbs, bench show).
	JSON bool `mapstructure:"json"`
	// Check reports what would change and changes nothing (up, down).
	Check bool `mapstructure:"check"`

	// grade: the rubric file ("" = the built-in one), the gradebook CSV's
	// id column (auto, email, idnumber), the outputs, --active.
	Rubric      string `mapstructure:"rubric"`
	GradebookID string `mapstructure:"gradebook-id"`
	Out         string `mapstructure:"out"`
	CSV         string `mapstructure:"csv"`
	Feedback    string `mapstructure:"feedback"`
	Active      bool   `mapstructure:"active"`
	// grade's documents: the submissions (Moodle zip or folder), the
	// template and statement they are compared with, OCR off.
	Submissions string `mapstructure:"submissions"`
	Template    string `mapstructure:"template"`
	Statement   string `mapstructure:"statement"`
	NoOCR       bool   `mapstructure:"no-ocr"`

	// bench: where results are stored (one JSON file per run), the plan
	// and its one-off scenario, the tool, the stack, --compare.
	ResultsDir  string   `mapstructure:"results-dir"`
	Plan        string   `mapstructure:"plan"`
	PrintPlan   bool     `mapstructure:"print-plan"`
	URL         string   `mapstructure:"url"`
	Requests    int      `mapstructure:"requests"`
	Concurrency int      `mapstructure:"concurrency"`
	Keepalive   bool     `mapstructure:"keepalive"`
	Server      []string `mapstructure:"server"`
	Tool        string   `mapstructure:"tool"`
	Stack       string   `mapstructure:"stack"`
	Compare     bool     `mapstructure:"compare"`
	Short       bool     `mapstructure:"short"`

	// Reports: the HTML file, the charts' directory, the live page's address.
	HTML   string `mapstructure:"html"`
	Charts string `mapstructure:"charts"`
	Live   string `mapstructure:"live"`

	// up: the single server's and the clustered server's ports, the
	// cluster's workers (0 = one per CPU, -1 = CPUs-1), the supervisor, the
	// app (go or node) and the Node app's ports.
	Port            int    `mapstructure:"port"`
	ClusterPort     int    `mapstructure:"cluster-port"`
	Instances       int    `mapstructure:"instances"`
	Supervisor      string `mapstructure:"supervisor"`
	App             string `mapstructure:"app"`
	NodePort        int    `mapstructure:"node-port"`
	NodeClusterPort int    `mapstructure:"node-cluster-port"`

	// The verbs: monit's snapshots and refresh, logs' lines and -f.
	Count    int           `mapstructure:"count"`
	Interval time.Duration `mapstructure:"interval"`
	Lines    int           `mapstructure:"lines"`
	Follow   bool          `mapstructure:"follow"`

	// demo: leave the lab host running; bench with the full plan.
	Keep bool `mapstructure:"keep"`
	Full bool `mapstructure:"full"`
}

// Defaults are the built-in values of the settings a command has no flag
// for; a command's flag default wins over them.
var Defaults = map[string]any{
	"forks":           10,
	"timeout":         2 * time.Minute,
	"connect-timeout": 30 * time.Second,
	"known-hosts":     "~/.ssh/known_hosts",
	"lab-dir":         "/var/lib/deploylab/lab",
	"demo-lab-dir":    "/var/lib/deploylab/demo",
	"cache-dir":       "/var/cache/deploylab",
	"hosts":           1,
	"variant":         "base",

	// grade
	"gradebook-id": "auto",

	// bench
	"results-dir": "~/.local/share/deploylab/results",
	"tool":        "loadgen",
	"stack":       "go",

	// up
	"port":              3000,
	"cluster-port":      3001,
	"instances":         0,
	"supervisor":        "systemd",
	"app":               "go",
	"node-port":         3100,
	"node-cluster-port": 3101,

	// verbs
	"interval": time.Second,
	"lines":    50,
}

// Renamed are file keys and flags that have a new name.
var Renamed = map[string]string{"host-timeout": "timeout"}

// FileName is the configuration file looked for in the working directory and
// in $XDG_CONFIG_HOME/deploylab (~/.config/deploylab).
const FileName = "deploylab.yaml"

// EnvName is the environment variable of a setting: DEPLOYLAB_NODE_PORT
// for node-port.
func EnvName(key string) string {
	return "DEPLOYLAB_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// Load reads the configuration for a command whose flags are fs. path is
// the --config value ("" to search the default places).
func Load(fs *pflag.FlagSet, path string) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix("DEPLOYLAB")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	for k, d := range Defaults {
		if fs == nil || fs.Lookup(k) == nil {
			v.SetDefault(k, d)
		}
	}
	if fs != nil {
		if err := v.BindPFlags(fs); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	file, explicit, err := findFile(path)
	if err != nil {
		return nil, err
	}
	var lines map[string]int
	if file != "" {
		if lines, err = checkKeys(file); err != nil {
			return nil, err
		}
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fail.New(fail.Usage, "fix "+file, fmt.Errorf("config %s: %s", file, oneLine(err.Error())))
		}
	}
	var c Config
	rv := reflect.ValueOf(&c).Elem()
	for _, f := range fields() {
		if err := decode(v.Get(f.key), rv.FieldByIndex(f.index)); err != nil {
			return nil, fail.New(fail.Usage, "fix the value, or unset it to use the default", fmt.Errorf("%s: %s", source(f.key, fs, file, lines), err))
		}
	}
	c.ConfigFile = file
	c.KnownHosts = ExpandHome(c.KnownHosts)
	c.Key = ExpandHome(c.Key)
	if file != "" && !explicit && filepath.Dir(file) == "." && c.AcceptNew && lines["accept-new"] > 0 && !flagChanged(fs, "accept-new") && os.Getenv(EnvName("accept-new")) == "" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d in the working directory turns on accept-new: the key of any host seen for the first time is trusted and recorded (remove the line, or pass --accept-new yourself)", file, lines["accept-new"]))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func flagChanged(fs *pflag.FlagSet, name string) bool {
	if fs == nil {
		return false
	}
	f := fs.Lookup(name)
	return f != nil && f.Changed
}

// source says where a setting's value came from, for an error.
func source(key string, fs *pflag.FlagSet, file string, lines map[string]int) string {
	switch {
	case flagChanged(fs, key):
		return "--" + key
	case os.Getenv(EnvName(key)) != "":
		return EnvName(key)
	case lines[key] > 0:
		return fmt.Sprintf("%s:%d: %s", file, lines[key], key)
	}
	return key
}

// oneLine joins a multi-line error into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

type field struct {
	key   string
	index []int
	typ   reflect.Type
}

func fields() []field {
	var out []field
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		f := t.Field(i)
		if k := f.Tag.Get("mapstructure"); k != "" && k != "-" {
			out = append(out, field{key: k, index: f.Index, typ: f.Type})
		}
	}
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// decode converts one setting's value (a flag's, an environment string, a
// YAML value) into the field dst, with a one-line error saying what is
// wanted.
func decode(val any, dst reflect.Value) error {
	if val == nil {
		return nil
	}
	if dst.Type() == durationType {
		d, err := toDuration(val)
		if err != nil {
			return err
		}
		dst.SetInt(int64(d))
		return nil
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		WeaklyTypedInput: true,
		Result:           dst.Addr().Interface(),
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(val); err != nil {
		return fmt.Errorf("%v is not %s", quote(val), want(dst.Type()))
	}
	return nil
}

func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	}
	return "a " + t.String()
}

// toDuration reads a duration: "90s", "2m"; a bare number is seconds (a
// YAML `timeout: 5` is five seconds, not five nanoseconds).
func toDuration(v any) (time.Duration, error) {
	bad := fmt.Errorf("%s is not a duration: use a number of seconds or a value like 30s, 2m, 1h", quote(v))
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case int:
		return time.Duration(x) * time.Second, nil
	case int64:
		return time.Duration(x) * time.Second, nil
	case uint64:
		return time.Duration(x) * time.Second, nil
	case float64:
		return time.Duration(x * float64(time.Second)), nil
	case string:
		s := strings.TrimSpace(x)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, bad
		}
		return d, nil
	}
	return 0, bad
}

func (c *Config) validate() error {
	if c.Forks < 1 || c.Forks > 500 {
		return fail.Errorf(fail.Usage, "use --forks between 1 and 500", "forks %d is out of range", c.Forks)
	}
	if c.Timeout < 0 {
		return fail.Errorf(fail.Usage, "use a positive duration such as --timeout 2m (0: no limit)", "timeout %s must not be negative", c.Timeout)
	}
	if c.ConnectTimeout <= 0 {
		return fail.Errorf(fail.Usage, "use a positive duration such as --connect-timeout 30s", "connect-timeout %s must be positive", c.ConnectTimeout)
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
func findFile(path string) (string, bool, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", true, fail.New(fail.Usage, "pass an existing file to --config", fmt.Errorf("config %s: %w", path, errors.Unwrap(err)))
		}
		return path, true, nil
	}
	candidates := []string{FileName}
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "deploylab", FileName))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, false, nil
		}
	}
	return "", false, nil
}

// Keys returns every setting's name, sorted: each is a flag, a file key and
// (with EnvName) an environment variable.
func Keys() []string {
	var keys []string
	for _, f := range fields() {
		keys = append(keys, f.key)
	}
	sort.Strings(keys)
	return keys
}

// checkKeys refuses unknown keys in the file, with file:line, so a typo never
// passes silently, and returns the line of each key.
func checkKeys(file string) (map[string]int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fail.New(fail.Usage, "", fmt.Errorf("config %s: %w", file, err))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fail.New(fail.Usage, "fix the YAML syntax of "+file, fmt.Errorf("%s: %s", file, oneLine(strings.TrimPrefix(err.Error(), "yaml: "))))
	}
	lines := map[string]int{}
	if len(doc.Content) == 0 {
		return lines, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail.Errorf(fail.Usage, "", "%s:%d: want a mapping of settings (key: value)", file, root.Line)
	}
	known := map[string]bool{}
	for _, k := range Keys() {
		known[k] = true
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Value == "password" || strings.HasSuffix(k.Value, "-password") {
			return nil, fail.Errorf(fail.Usage, "put the name of an environment variable in password-env instead", "%s:%d: passwords do not belong in %s", file, k.Line, FileName)
		}
		if to, ok := Renamed[k.Value]; ok {
			return nil, fail.Errorf(fail.Usage, "rename it to "+to, "%s:%d: %q is now called %q", file, k.Line, k.Value, to)
		}
		if !known[k.Value] {
			return nil, fail.Errorf(fail.Usage, "known keys: "+strings.Join(Keys(), ", "), "%s:%d: unknown key %q", file, k.Line, k.Value)
		}
		lines[k.Value] = k.Line
	}
	return lines, nil
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
