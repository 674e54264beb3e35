package inventory

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/deploylab/deploylab/internal/fail"
)

// Select returns the hosts matching limit, in inventory order. limit is
// Ansible-style: patterns separated by commas or colons; a pattern is a host
// name, a group name, "all", or a glob (alu0*); "!pattern" excludes and
// "&pattern" intersects. An empty limit selects every host. A pattern that
// matches nothing is an error, so a typo never grades an empty class.
func (inv *Inventory) Select(limit string) ([]Host, error) {
	limit = strings.TrimSpace(limit)
	if limit == "" {
		return append([]Host(nil), inv.Hosts...), nil
	}
	parts := strings.FieldsFunc(limit, func(r rune) bool { return r == ',' || r == ':' })
	selected := map[string]bool{}
	var include, exclude, intersect [][]string
	for _, p := range parts {
		op := byte(0)
		if p[0] == '!' || p[0] == '&' {
			op, p = p[0], p[1:]
		}
		names, err := inv.match(p)
		if err != nil {
			return nil, err
		}
		switch op {
		case '!':
			exclude = append(exclude, names)
		case '&':
			intersect = append(intersect, names)
		default:
			include = append(include, names)
		}
	}
	if len(include) == 0 {
		for _, h := range inv.Hosts {
			selected[h.Name] = true
		}
	}
	for _, names := range include {
		for _, n := range names {
			selected[n] = true
		}
	}
	for _, names := range intersect {
		keep := map[string]bool{}
		for _, n := range names {
			keep[n] = selected[n]
		}
		selected = keep
	}
	for _, names := range exclude {
		for _, n := range names {
			delete(selected, n)
		}
	}
	var out []Host
	for _, h := range inv.Hosts {
		if selected[h.Name] {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, fail.Errorf(fail.Usage, "list the inventory's hosts with: deploylab inventory -i "+inv.Path, "--limit %q selects no host", limit)
	}
	return out, nil
}

// match returns the host names one pattern names.
func (inv *Inventory) match(p string) ([]string, error) {
	if p == "all" || p == "*" {
		names := make([]string, len(inv.Hosts))
		for i, h := range inv.Hosts {
			names[i] = h.Name
		}
		return names, nil
	}
	for _, g := range inv.Groups {
		if g.Name == p {
			return g.Hosts, nil
		}
	}
	var names []string
	for _, h := range inv.Hosts {
		if ok, err := path.Match(p, h.Name); err != nil {
			return nil, fail.Errorf(fail.Usage, "", "--limit pattern %q: %v", p, err)
		} else if ok || h.Address == p {
			names = append(names, h.Name)
		}
	}
	if len(names) == 0 {
		return nil, fail.Errorf(fail.Usage, "use a host or group name from the inventory, a glob like alu0*, or all", "--limit: %q matches no host or group", p)
	}
	return names, nil
}

// FromHost builds a one-host inventory from a --host value:
// [user@]address[:port], where address may be a bracketed IPv6 address.
func FromHost(spec string, defaults Vars) (*Inventory, error) {
	orig := spec
	if spec == "" {
		return nil, fail.Errorf(fail.Usage, "give an address, e.g. --host 192.168.1.50", "--host is empty")
	}
	var h Host
	h.Vars = defaults
	if i := strings.LastIndex(spec, "@"); i >= 0 {
		h.User, spec = spec[:i], spec[i+1:]
		if h.User == "" {
			return nil, fail.Errorf(fail.Usage, "", "--host %q: empty user before @", orig)
		}
	}
	host, port, err := net.SplitHostPort(spec)
	if err == nil {
		p, perr := strconv.Atoi(port)
		if perr != nil || p < 1 || p > 65535 {
			return nil, fail.Errorf(fail.Usage, "", "--host %q: port %q is not a number from 1 to 65535", orig, port)
		}
		h.Port = p
		spec = host
	} else if strings.HasPrefix(spec, "[") && strings.HasSuffix(spec, "]") {
		spec = spec[1 : len(spec)-1]
	}
	if spec == "" || strings.ContainsAny(spec, " /\t") {
		return nil, fail.Errorf(fail.Usage, "give an address, e.g. --host 192.168.1.50 or --host deploy@vm.example.org:2222", "--host %q is not a host address", orig)
	}
	h.Name, h.Address = spec, spec
	if h.Port == 0 {
		h.Port = 22
	}
	inv := &Inventory{Hosts: []Host{h}}
	if err := inv.resolve(); err != nil {
		return nil, fmt.Errorf("--host %s: %w", orig, err)
	}
	return inv, nil
}
