package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	sshconfig "github.com/kevinburke/ssh_config"

	"github.com/deploylab/deploylab/internal/fail"
)

// Host is where to connect and how to authenticate. Empty fields take their
// value from ~/.ssh/config (HostName, User, Port, IdentityFile) and then from
// defaults (port 22, the local user name, ~/.ssh/id_*).
type Host struct {
	// Name is the host's name for humans and for ~/.ssh/config's Host patterns.
	Name string
	// Address is the host name or IP to dial; empty means Name (or
	// ~/.ssh/config's HostName for Name).
	Address string
	Port    int
	User    string
	// KeyFiles are private key files to offer (after the agent's keys).
	KeyFiles []string
	// KnownHostsFile is the known_hosts file to verify against and, with
	// AcceptNew, to record new keys in; empty means ~/.ssh/known_hosts.
	KnownHostsFile string
	// AcceptNew trusts an unknown host's key on first use and records it.
	// A changed key is always refused.
	AcceptNew bool
	// Password for password authentication. The CLI fills it from a prompt or
	// from the environment, never from a flag.
	Password string
	// PasswordEnv names an environment variable holding the password; it is
	// read at Dial time when Password is empty.
	PasswordEnv string
	// SudoPassword is fed to sudo on its stdin by RunSudo; when empty (and
	// SudoPasswordEnv gives none) RunSudo uses sudo -n.
	SudoPassword string
	// SudoPasswordEnv names an environment variable holding the sudo password.
	SudoPasswordEnv string
	// Timeout bounds the TCP connect and the SSH handshake; 0 means 10s.
	Timeout time.Duration
}

// DefaultTimeout bounds connect + handshake when Host.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// String is the host's name for messages.
func (h Host) String() string {
	if h.Name != "" {
		return h.Name
	}
	return h.Address
}

// addr is host:port for dialling.
func (h Host) addr() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

// ResolveHost fills h's empty fields from the ssh client configuration at
// configPath (empty: none) and then from defaults. Explicit fields always win
// over the configuration. It reads PasswordEnv and SudoPasswordEnv.
func ResolveHost(h Host, configPath string) (Host, error) {
	h.KeyFiles = slices.Clone(h.KeyFiles)
	alias := h.Name
	if alias == "" {
		alias = h.Address
	}
	if alias == "" {
		return h, fail.Errorf(fail.Usage, "give the host's name or address", "host has no name or address")
	}
	if configPath != "" {
		cfg, err := loadSSHConfig(configPath)
		if err != nil {
			return h, err
		}
		if cfg != nil {
			if err := applySSHConfig(&h, cfg, alias); err != nil {
				return h, err
			}
		}
	}
	if h.Address == "" {
		h.Address = alias
	}
	if h.Port == 0 {
		h.Port = 22
	}
	if h.Port < 0 || h.Port > 65535 {
		return h, fail.Errorf(fail.Usage, "use a port between 1 and 65535", "host %s: invalid port %d", alias, h.Port)
	}
	if h.User == "" {
		h.User = localUser()
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultTimeout
	}
	if len(h.KeyFiles) == 0 {
		h.KeyFiles = defaultKeyFiles()
	}
	for i, f := range h.KeyFiles {
		h.KeyFiles[i] = expandTilde(f)
	}
	if h.KnownHostsFile == "" {
		h.KnownHostsFile = filepath.Join(homeDir(), ".ssh", "known_hosts")
	}
	h.KnownHostsFile = expandTilde(h.KnownHostsFile)
	if h.Password == "" && h.PasswordEnv != "" {
		v, ok := os.LookupEnv(h.PasswordEnv)
		if !ok || v == "" {
			return h, fail.Errorf(fail.Usage, fmt.Sprintf("export %s with the password, or let deploylab prompt for it", h.PasswordEnv),
				"host %s: environment variable %s (the password) is not set", alias, h.PasswordEnv)
		}
		h.Password = v
	}
	if h.SudoPassword == "" && h.SudoPasswordEnv != "" {
		v, ok := os.LookupEnv(h.SudoPasswordEnv)
		if !ok || v == "" {
			return h, fail.Errorf(fail.Usage, fmt.Sprintf("export %s with the sudo password, or let deploylab prompt for it", h.SudoPasswordEnv),
				"host %s: environment variable %s (the sudo password) is not set", alias, h.SudoPasswordEnv)
		}
		h.SudoPassword = v
	}
	return h, nil
}

// DefaultSSHConfig is the user's ssh client configuration, ~/.ssh/config.
func DefaultSSHConfig() string { return filepath.Join(homeDir(), ".ssh", "config") }

func loadSSHConfig(path string) (*sshconfig.Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := sshconfig.Decode(f)
	if err != nil {
		return nil, fail.New(fail.Usage, "fix the line named, or point --ssh-config elsewhere",
			fmt.Errorf("parse ssh config %s: %w", path, err))
	}
	return cfg, nil
}

func applySSHConfig(h *Host, cfg *sshconfig.Config, alias string) error {
	get := func(key string) string {
		v, err := cfg.Get(alias, key)
		if err != nil {
			return ""
		}
		return v
	}
	if h.Address == "" || h.Address == alias {
		if hn := get("HostName"); hn != "" {
			h.Address = expandTokens(hn, alias, h)
		}
	}
	if h.User == "" {
		h.User = get("User")
	}
	if h.Port == 0 {
		if p := get("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return fail.Errorf(fail.Usage, "fix Port in ~/.ssh/config", "ssh config: host %s: invalid Port %q", alias, p)
			}
			h.Port = n
		}
	}
	if len(h.KeyFiles) == 0 {
		files, err := cfg.GetAll(alias, "IdentityFile")
		if err == nil {
			for _, f := range files {
				if f == "" || strings.EqualFold(f, "none") {
					continue
				}
				h.KeyFiles = append(h.KeyFiles, expandTokens(f, alias, h))
			}
		}
	}
	return nil
}

// expandTokens expands the few ssh_config tokens that make sense here.
func expandTokens(s, alias string, h *Host) string {
	s = expandTilde(s)
	if !strings.Contains(s, "%") {
		return s
	}
	u := h.User
	if u == "" {
		u = localUser()
	}
	r := strings.NewReplacer("%%", "%", "%h", h.Address, "%n", alias, "%r", u, "%u", localUser(), "%d", homeDir())
	if h.Address == "" {
		r = strings.NewReplacer("%%", "%", "%h", alias, "%n", alias, "%r", u, "%u", localUser(), "%d", homeDir())
	}
	return r.Replace(s)
}

func expandTilde(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// defaultKeyFiles are OpenSSH's default identities that exist.
func defaultKeyFiles() []string {
	var out []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(homeDir(), ".ssh", n)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
