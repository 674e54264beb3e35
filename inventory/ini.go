package inventory

import (
	"strconv"
	"strings"
)

// iniKeys maps Ansible's connection variables (and deploylab's own keys) to
// a setter. Anything else is an error, so a typo never passes silently.
var iniKeys = map[string]func(h *Host, v *Vars, val string) error{
	"ansible_host":                 func(h *Host, _ *Vars, s string) error { h.Address = s; return nil },
	"address":                      func(h *Host, _ *Vars, s string) error { h.Address = s; return nil },
	"student":                      func(h *Host, _ *Vars, s string) error { h.Student = s; return nil },
	"id":                           func(h *Host, _ *Vars, s string) error { h.ID = s; return nil },
	"ansible_user":                 func(_ *Host, v *Vars, s string) error { v.User = s; return nil },
	"ansible_ssh_user":             func(_ *Host, v *Vars, s string) error { v.User = s; return nil },
	"user":                         func(_ *Host, v *Vars, s string) error { v.User = s; return nil },
	"ansible_ssh_private_key_file": func(_ *Host, v *Vars, s string) error { v.Key = s; return nil },
	"key":                          func(_ *Host, v *Vars, s string) error { v.Key = s; return nil },
	"known_hosts":                  func(_ *Host, v *Vars, s string) error { v.KnownHosts = s; return nil },
	"password_env":                 func(_ *Host, v *Vars, s string) error { v.PasswordEnv = s; return nil },
	"sudo_password_env":            func(_ *Host, v *Vars, s string) error { v.SudoPasswordEnv = s; return nil },
	"ansible_port":                 setPort,
	"ansible_ssh_port":             setPort,
	"port":                         setPort,
}

func setPort(_ *Host, v *Vars, s string) error {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return strconv.ErrRange
	}
	v.Port = p
	return nil
}

// parseINI reads the subset of Ansible's INI inventory format that a class
// list uses: host lines (name key=value ...), [group] sections, [group:vars]
// and [all:vars], and [group:children].
func parseINI(file string, data []byte) (*Inventory, error) {
	inv := &Inventory{}
	hostLine := map[string]int{}
	groupIdx := map[string]int{}
	type childRef struct {
		parent, child string
		line          int
	}
	var children []childRef
	section, kind := "", "hosts" // "" = ungrouped
	group := func(name string) *Group {
		i, ok := groupIdx[name]
		if !ok {
			inv.Groups = append(inv.Groups, Group{Name: name})
			i = len(inv.Groups) - 1
			groupIdx[name] = i
		}
		return &inv.Groups[i]
	}
	for n, raw := range strings.Split(string(data), "\n") {
		line := n + 1
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			continue
		}
		if strings.HasPrefix(t, "[") {
			if !strings.HasSuffix(t, "]") {
				return nil, posError(file, line, "section header %q is missing its closing ]", t)
			}
			name := t[1 : len(t)-1]
			section, kind = name, "hosts"
			if i := strings.IndexByte(name, ':'); i >= 0 {
				section, kind = name[:i], name[i+1:]
				if kind != "vars" && kind != "children" {
					return nil, posError(file, line, "unknown section kind %q (want :vars or :children)", kind)
				}
			}
			if section != "all" && !validName(section) {
				return nil, posError(file, line, "invalid group name %q", section)
			}
			if section == "all" && kind != "vars" {
				return nil, posError(file, line, "[all] holds every host already; use [all:vars] for settings")
			}
			if section != "all" {
				group(section)
			}
			continue
		}
		fields, err := splitINI(t)
		if err != nil {
			return nil, posError(file, line, "%v", err)
		}
		switch kind {
		case "vars":
			for _, f := range fields {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return nil, posError(file, line, "want key=value, got %q", f)
				}
				var h Host
				var vars Vars
				if section != "all" {
					vars = group(section).Vars
				} else {
					vars = inv.Vars
				}
				if err := setINI(file, line, &h, &vars, k, v); err != nil {
					return nil, err
				}
				if h.Address != "" || h.Student != "" || h.ID != "" {
					return nil, posError(file, line, "%s is a per-host setting; put it on the host's line", k)
				}
				if section != "all" {
					group(section).Vars = vars
				} else {
					inv.Vars = vars
				}
			}
		case "children":
			if len(fields) != 1 || !validName(fields[0]) {
				return nil, posError(file, line, "want one group name per line in [%s:children]", section)
			}
			children = append(children, childRef{section, fields[0], line})
		default:
			name := fields[0]
			if !validName(name) {
				return nil, posError(file, line, "invalid host name %q (letters, digits, - _ . only)", name)
			}
			if _, dup := hostLine[name]; !dup {
				h := Host{Name: name, Address: name}
				for _, f := range fields[1:] {
					k, v, ok := strings.Cut(f, "=")
					if !ok {
						return nil, posError(file, line, "host %q: want key=value, got %q", name, f)
					}
					if err := setINI(file, line, &h, &h.Vars, k, v); err != nil {
						return nil, err
					}
				}
				hostLine[name] = line
				inv.Hosts = append(inv.Hosts, h)
			} else if len(fields) > 1 {
				return nil, posError(file, line, "host %q already defined at line %d; set its variables there", name, hostLine[name])
			}
			if section != "" {
				g := group(section)
				g.Hosts = append(g.Hosts, name)
			}
		}
	}
	if len(inv.Hosts) == 0 {
		return nil, posError(file, 0, "no hosts in the inventory")
	}
	// [parent:children] adds the child group's hosts (one level deep, in order).
	for _, c := range children {
		i, ok := groupIdx[c.child]
		if !ok {
			return nil, posError(file, c.line, "group %q names unknown child group %q", c.parent, c.child)
		}
		p := group(c.parent)
		p.Hosts = append(p.Hosts, inv.Groups[i].Hosts...)
	}
	inv.setGroupsOnHosts()
	return inv, nil
}

func setINI(file string, line int, h *Host, v *Vars, k, val string) error {
	if strings.Contains(k, "pass") && !strings.HasSuffix(k, "_env") {
		return posError(file, line, "passwords do not belong in the inventory; set password_env (or sudo_password_env) to the name of an environment variable that holds it")
	}
	set, ok := iniKeys[k]
	if !ok {
		return posError(file, line, "unknown variable %q (known: ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file, student, id, known_hosts, password_env, sudo_password_env)", k)
	}
	if err := set(h, v, val); err != nil {
		return posError(file, line, "%s=%q is not a port number from 1 to 65535", k, val)
	}
	return nil
}

// splitINI splits a line on spaces, honouring "double" and 'single' quotes
// (student="Ana García").
func splitINI(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	inField := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inField = r, true
		case r == ' ' || r == '\t':
			if inField {
				out = append(out, cur.String())
				cur.Reset()
				inField = false
			}
		case r == '#' && !inField:
			return out, nil
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if quote != 0 {
		return nil, strconv.ErrSyntax
	}
	if inField {
		out = append(out, cur.String())
	}
	return out, nil
}
