// Package inventory reads and writes the list of hosts deploylab works on: a
// class of student VMs (or the lab's hosts), each with its address, SSH
// settings and the student's name and gradebook id. It reads deploylab's YAML
// format and the subset of Ansible's INI inventory that teachers already have,
// selects hosts with --limit patterns, and reports every mistake as
// file:line: message.
//
// The YAML format:
//
//	vars:                      # defaults for every host
//	  user: deploy
//	  key: ~/.ssh/id_ed25519   # relative paths are relative to this file
//	  known_hosts: ~/.ssh/known_hosts
//	  password_env: CLASE_PASS # name of an environment variable, never a password
//	hosts:
//	  alu01: {address: 192.168.1.50, student: "Ana García", id: ana@uni.es}
//	  alu02: {address: 192.168.1.51, port: 2222}
//	groups:
//	  tarde:
//	    hosts: [alu02]
//	    vars: {user: alumno}
//
// Host settings override group settings, which override vars.
package inventory

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/deploylab/deploylab/internal/fail"
)

// Vars are the connection settings a host can inherit from vars or a group.
type Vars struct {
	User            string `yaml:"user,omitempty"`
	Port            int    `yaml:"port,omitempty"`
	Key             string `yaml:"key,omitempty"`
	KnownHosts      string `yaml:"known_hosts,omitempty"`
	PasswordEnv     string `yaml:"password_env,omitempty"`
	SudoPasswordEnv string `yaml:"sudo_password_env,omitempty"`
}

// Host is one machine, with every setting resolved (vars < group < host).
type Host struct {
	// Name is the inventory name (alu01); unique.
	Name string
	// Address is an IP address or DNS name.
	Address string
	// Student is the student's name, for the spreadsheet.
	Student string
	// ID identifies the student in the gradebook (email or id number).
	ID string
	// Groups lists the groups the host belongs to, in file order.
	Groups []string
	Vars
}

// Group is a named set of hosts with optional vars.
type Group struct {
	Name  string
	Hosts []string
	Vars  Vars
}

// Inventory is a parsed inventory file.
type Inventory struct {
	// Path is the file it was read from ("" when built in memory).
	Path string
	// Vars are the defaults for every host, as written in the file.
	Vars   Vars
	Hosts  []Host
	Groups []Group
}

// Host returns the host named name.
func (inv *Inventory) Host(name string) (Host, bool) {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// Load reads an inventory file, YAML or Ansible INI (told apart by content).
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail.New(fail.Usage, "pass an existing inventory file with -i, or one host with --host", fmt.Errorf("inventory %s: file not found", path))
		}
		return nil, fail.New(fail.Usage, "", fmt.Errorf("inventory: %w", err))
	}
	inv, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// Parse parses inventory text; name is used in error messages and to resolve
// relative paths.
func Parse(name string, data []byte) (*Inventory, error) {
	var inv *Inventory
	var err error
	if looksLikeINI(data) {
		inv, err = parseINI(name, data)
	} else {
		inv, err = parseYAML(name, data)
	}
	if err != nil {
		return nil, err
	}
	inv.Path = name
	if err := inv.resolve(); err != nil {
		return nil, err
	}
	return inv, nil
}

// looksLikeINI reports whether the first meaningful line is an INI section
// header or a bare "name key=value" host line.
func looksLikeINI(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			continue
		}
		if strings.HasPrefix(t, "[") {
			return true
		}
		if t == "---" || strings.Contains(strings.SplitN(t, " ", 2)[0], ":") {
			return false
		}
		return true
	}
	return false
}

// resolve merges vars into hosts, expands paths and validates.
func (inv *Inventory) resolve() error {
	dir := "."
	if inv.Path != "" {
		dir = filepath.Dir(inv.Path)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	inv.Vars = inv.Vars.expand(dir)
	for i := range inv.Groups {
		inv.Groups[i].Vars = inv.Groups[i].Vars.expand(dir)
	}
	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		merged := inv.Vars
		for _, g := range inv.Groups {
			for _, member := range g.Hosts {
				if member == h.Name {
					merged = merged.overlay(g.Vars)
				}
			}
		}
		h.Vars = merged.overlay(h.Vars.expand(dir))
		if h.Port == 0 {
			h.Port = 22
		}
		if h.Port < 1 || h.Port > 65535 {
			return posError(inv.name(), 0, "host %s: port %d is not from 1 to 65535", h.Name, h.Port)
		}
		if err := ValidAddress(h.Address); err != nil {
			return posError(inv.name(), 0, "host %s: %v", h.Name, err)
		}
	}
	return nil
}

func (inv *Inventory) name() string {
	if inv.Path == "" {
		return "--host"
	}
	return inv.Path
}

// ValidAddress checks a host's address: an IP address (IPv6 without
// brackets), or a DNS name of letters, digits, '-', '_' and '.' (at most
// 253 characters, labels of at most 63, not starting with '-' or '.'), so
// that no option, space, control character or path reaches ssh, a log or a
// sheet as an address.
func ValidAddress(a string) error {
	if a == "" {
		return fmt.Errorf("no address")
	}
	if net.ParseIP(a) != nil {
		return nil
	}
	bad := fmt.Errorf("address %q is not an IP address or a host name", a)
	if len(a) > 253 || a[0] == '-' || a[0] == '.' {
		return bad
	}
	for _, label := range strings.Split(strings.TrimSuffix(a, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return bad
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			default:
				return bad
			}
		}
	}
	return nil
}

func (v Vars) overlay(o Vars) Vars {
	if o.User != "" {
		v.User = o.User
	}
	if o.Port != 0 {
		v.Port = o.Port
	}
	if o.Key != "" {
		v.Key = o.Key
	}
	if o.KnownHosts != "" {
		v.KnownHosts = o.KnownHosts
	}
	if o.PasswordEnv != "" {
		v.PasswordEnv = o.PasswordEnv
	}
	if o.SudoPasswordEnv != "" {
		v.SudoPasswordEnv = o.SudoPasswordEnv
	}
	return v
}

func (v Vars) expand(dir string) Vars {
	v.Key = expandPath(dir, v.Key)
	v.KnownHosts = expandPath(dir, v.KnownHosts)
	return v
}

// expandPath expands a leading ~ and makes a relative path relative to dir.
func expandPath(dir, p string) string {
	if p == "" {
		return ""
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// validName reports whether s can name a host or a group.
func validName(s string) bool {
	if s == "" || s == "all" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// posError is a file:line error, classified as a usage error.
func posError(file string, line int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("%s:%d: %s", file, line, msg)
	} else {
		msg = fmt.Sprintf("%s: %s", file, msg)
	}
	return fail.New(fail.Usage, "fix the inventory file and run again", errors.New(msg))
}
