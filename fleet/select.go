package fleet

import (
	"time"

	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/inventory"
	"github.com/deploylab/deploylab/remote"
)

// Target is one host of a run: its inventory entry and how to reach it.
type Target struct {
	// Name is the inventory name (alu01), used in every report.
	Name string
	// Host is how to connect: the inventory's settings, and the run's
	// (flags, environment, file) for what the inventory leaves out.
	Host remote.Host
	// Student and ID are the inventory's student name and gradebook id
	// (an email or an id number); empty for --host.
	Student, ID string
}

// Selection says which hosts a run works on and how to reach them: the
// host settings of internal/config (the inventory, or one --host, and
// --limit), plus the connection settings used where the inventory gives
// none (as Ansible's -u does).
type Selection struct {
	Inventory, Host, Limit string
	User, Key, KnownHosts  string
	AcceptNew              bool
	PasswordEnv            string
	SudoPasswordEnv        string
	// ConnectTimeout bounds the TCP connect and SSH handshake.
	ConnectTimeout time.Duration
	// Example is a command line shown when no host was given.
	Example string
}

// SelectionOf is the selection of c's host settings.
func SelectionOf(c *config.Config, example string) Selection {
	return Selection{
		Inventory: c.Inventory, Host: c.Host, Limit: c.Limit,
		User: c.User, Key: c.Key, KnownHosts: c.KnownHosts, AcceptNew: c.AcceptNew,
		PasswordEnv: c.PasswordEnv, SudoPasswordEnv: c.SudoPasswordEnv,
		ConnectTimeout: c.ConnectTimeout, Example: example,
	}
}

// Select reads the inventory (or builds the one --host), applies --limit
// and returns the targets in inventory order.
func Select(s Selection) ([]Target, error) {
	var inv *inventory.Inventory
	var err error
	switch {
	case s.Inventory != "" && s.Host != "":
		return nil, fail.Errorf(fail.Usage, "use -i for a class, --host for one machine", "--inventory and --host cannot be used together")
	case s.Inventory != "":
		inv, err = inventory.Load(s.Inventory)
	case s.Host != "":
		inv, err = inventory.FromHost(s.Host, inventory.Vars{})
	default:
		hint := "give --host ADDRESS or -i INVENTORY"
		if s.Example != "" {
			hint = "e.g. " + s.Example
		}
		return nil, fail.Errorf(fail.Usage, hint, "no hosts: give --host ADDRESS or -i INVENTORY")
	}
	if err != nil {
		return nil, err
	}
	hosts, err := inv.Select(s.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]Target, len(hosts))
	var files []string
	for i, h := range hosts {
		out[i] = Target{Name: h.Name, Host: s.remoteHost(h), Student: h.Student, ID: h.ID}
		files = append(files, out[i].Host.KnownHostsFile)
	}
	// A malformed known_hosts is one usage error, before any host is visited.
	if err := remote.CheckKnownHosts(files...); err != nil {
		return nil, err
	}
	return out, nil
}

// remoteHost is how to reach h: the inventory's settings first, then s's.
func (s Selection) remoteHost(h inventory.Host) remote.Host {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	rh := remote.Host{
		Name:            h.Name,
		Address:         h.Address,
		Port:            h.Port,
		User:            pick(h.User, s.User),
		KnownHostsFile:  config.ExpandHome(pick(h.KnownHosts, s.KnownHosts)),
		AcceptNew:       s.AcceptNew,
		PasswordEnv:     pick(h.PasswordEnv, s.PasswordEnv),
		SudoPasswordEnv: pick(h.SudoPasswordEnv, s.SudoPasswordEnv),
		Timeout:         s.ConnectTimeout,
	}
	if k := pick(h.Key, s.Key); k != "" {
		rh.KeyFiles = []string{config.ExpandHome(k)}
	}
	return rh
}

// Names are the targets' names, in order.
func Names(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}
