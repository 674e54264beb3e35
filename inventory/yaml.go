package inventory

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/deploylab/deploylab/internal/atomicfile"
	"go.yaml.in/yaml/v3"
)

// parseYAML walks the YAML node tree by hand so that every error carries the
// line of the offending node.
func parseYAML(file string, data []byte) (*Inventory, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, posError(file, 0, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	inv := &Inventory{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, posError(file, 0, "empty inventory: it needs a hosts: section")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, posError(file, root.Line, "the inventory must be a mapping with vars:, hosts: and groups:")
	}
	var hostsNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "vars":
			vars, err := parseVars(file, v, "vars")
			if err != nil {
				return nil, err
			}
			inv.Vars = vars
		case "hosts":
			hostsNode = v
		case "groups":
			groups, err := parseGroups(file, v)
			if err != nil {
				return nil, err
			}
			inv.Groups = groups
		default:
			return nil, posError(file, k.Line, "unknown key %q (want vars, hosts or groups)", k.Value)
		}
	}
	if hostsNode == nil {
		return nil, posError(file, root.Line, "no hosts: section")
	}
	if hostsNode.Kind != yaml.MappingNode {
		return nil, posError(file, hostsNode.Line, "hosts: must map host names to their settings")
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(hostsNode.Content); i += 2 {
		k, v := hostsNode.Content[i], hostsNode.Content[i+1]
		if !validName(k.Value) {
			return nil, posError(file, k.Line, "invalid host name %q (letters, digits, - _ . only)", k.Value)
		}
		if line, dup := seen[k.Value]; dup {
			return nil, posError(file, k.Line, "host %q already defined at line %d", k.Value, line)
		}
		seen[k.Value] = k.Line
		h, err := parseHost(file, k.Value, v)
		if err != nil {
			return nil, err
		}
		inv.Hosts = append(inv.Hosts, h)
	}
	if len(inv.Hosts) == 0 {
		return nil, posError(file, hostsNode.Line, "hosts: is empty")
	}
	for _, g := range inv.Groups {
		for _, m := range g.Hosts {
			if _, ok := seen[m]; !ok {
				return nil, posError(file, 0, "group %q names unknown host %q", g.Name, m)
			}
		}
	}
	inv.setGroupsOnHosts()
	return inv, nil
}

func (inv *Inventory) setGroupsOnHosts() {
	for i := range inv.Hosts {
		for _, g := range inv.Groups {
			for _, m := range g.Hosts {
				if m == inv.Hosts[i].Name {
					inv.Hosts[i].Groups = append(inv.Hosts[i].Groups, g.Name)
				}
			}
		}
	}
}

func parseHost(file, name string, n *yaml.Node) (Host, error) {
	h := Host{Name: name}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		// alu01: 192.168.1.50
		h.Address = n.Value
		return h, nil
	}
	if n.Kind != yaml.MappingNode {
		return h, posError(file, n.Line, "host %q: want an address or a mapping of settings", name)
	}
	var vars yaml.Node
	vars.Kind = yaml.MappingNode
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "address":
			s, err := scalar(file, k, v)
			if err != nil {
				return h, err
			}
			h.Address = s
		case "student":
			s, err := scalar(file, k, v)
			if err != nil {
				return h, err
			}
			h.Student = s
		case "id":
			s, err := scalar(file, k, v)
			if err != nil {
				return h, err
			}
			h.ID = s
		default:
			vars.Content = append(vars.Content, k, v)
		}
	}
	if h.Address == "" {
		return h, posError(file, n.Line, "host %q has no address", name)
	}
	v, err := parseVars(file, &vars, "host "+strconv.Quote(name))
	if err != nil {
		return h, err
	}
	h.Vars = v
	return h, nil
}

func parseVars(file string, n *yaml.Node, where string) (Vars, error) {
	var v Vars
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return v, nil
	}
	if n.Kind != yaml.MappingNode {
		return v, posError(file, n.Line, "%s: want a mapping of settings", where)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		s, err := scalar(file, k, val)
		if err != nil {
			return v, err
		}
		switch k.Value {
		case "user":
			v.User = s
		case "port":
			p, err := strconv.Atoi(s)
			if err != nil || p < 1 || p > 65535 {
				return v, posError(file, val.Line, "%s: port %q is not a number from 1 to 65535", where, s)
			}
			v.Port = p
		case "key":
			v.Key = s
		case "known_hosts":
			v.KnownHosts = s
		case "password_env":
			v.PasswordEnv = s
		case "sudo_password_env":
			v.SudoPasswordEnv = s
		case "password", "sudo_password", "ansible_password", "ansible_become_password":
			return v, posError(file, k.Line, "%s: passwords do not belong in the inventory; set %s_env to the name of an environment variable that holds it", where, strings.TrimPrefix(strings.TrimPrefix(k.Value, "ansible_"), "become_"))
		default:
			return v, posError(file, k.Line, "%s: unknown key %q (want address, student, id, user, port, key, known_hosts, password_env, sudo_password_env)", where, k.Value)
		}
	}
	return v, nil
}

func parseGroups(file string, n *yaml.Node) ([]Group, error) {
	if n.Kind != yaml.MappingNode {
		return nil, posError(file, n.Line, "groups: must map group names to {hosts: [...], vars: {...}}")
	}
	var groups []Group
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !validName(k.Value) {
			return nil, posError(file, k.Line, "invalid group name %q", k.Value)
		}
		g := Group{Name: k.Value}
		switch v.Kind {
		case yaml.SequenceNode: // tarde: [alu01, alu02]
			for _, m := range v.Content {
				g.Hosts = append(g.Hosts, m.Value)
			}
		case yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				gk, gv := v.Content[j], v.Content[j+1]
				switch gk.Value {
				case "hosts":
					if gv.Kind != yaml.SequenceNode {
						return nil, posError(file, gv.Line, "group %q: hosts: must be a list of host names", g.Name)
					}
					for _, m := range gv.Content {
						g.Hosts = append(g.Hosts, m.Value)
					}
				case "vars":
					vars, err := parseVars(file, gv, "group "+strconv.Quote(g.Name))
					if err != nil {
						return nil, err
					}
					g.Vars = vars
				default:
					return nil, posError(file, gk.Line, "group %q: unknown key %q (want hosts or vars)", g.Name, gk.Value)
				}
			}
		default:
			return nil, posError(file, v.Line, "group %q: want a list of hosts or {hosts: [...], vars: {...}}", g.Name)
		}
		groups = append(groups, g)
	}
	return groups, nil
}

func scalar(file string, k, v *yaml.Node) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", posError(file, v.Line, "%s: want a single value", k.Value)
	}
	return v.Value, nil
}

// Marshal renders the inventory as deploylab YAML. Each host lists only the
// settings that differ from the inventory's vars.
func (inv *Inventory) Marshal() ([]byte, error) {
	type hostOut struct {
		Address string `yaml:"address"`
		Student string `yaml:"student,omitempty"`
		ID      string `yaml:"id,omitempty"`
		Vars    `yaml:",inline"`
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v any) error {
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			return err
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &n)
		return nil
	}
	if inv.Vars != (Vars{}) {
		if err := add("vars", inv.Vars); err != nil {
			return nil, err
		}
	}
	hosts := &yaml.Node{Kind: yaml.MappingNode}
	for _, h := range inv.Hosts {
		own := h.Vars.minus(inv.Vars)
		if own.Port == 22 && inv.Vars.Port == 0 {
			own.Port = 0
		}
		var n yaml.Node
		if err := n.Encode(hostOut{Address: h.Address, Student: h.Student, ID: h.ID, Vars: own}); err != nil {
			return nil, err
		}
		n.Style = yaml.FlowStyle
		hosts.Content = append(hosts.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: h.Name}, &n)
	}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "hosts"}, hosts)
	if len(inv.Groups) > 0 {
		groups := &yaml.Node{Kind: yaml.MappingNode}
		for _, g := range inv.Groups {
			var n yaml.Node
			if err := n.Encode(struct {
				Hosts []string `yaml:"hosts,flow"`
				Vars  Vars     `yaml:"vars,omitempty"`
			}{g.Hosts, g.Vars}); err != nil {
				return nil, err
			}
			groups.Content = append(groups.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: g.Name}, &n)
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "groups"}, groups)
	}
	var buf bytes.Buffer
	buf.WriteString("# deploylab inventory\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// minus returns the settings of v that differ from base.
func (v Vars) minus(base Vars) Vars {
	if v.User == base.User {
		v.User = ""
	}
	if v.Port == base.Port {
		v.Port = 0
	}
	if v.Key == base.Key {
		v.Key = ""
	}
	if v.KnownHosts == base.KnownHosts {
		v.KnownHosts = ""
	}
	if v.PasswordEnv == base.PasswordEnv {
		v.PasswordEnv = ""
	}
	if v.SudoPasswordEnv == base.SudoPasswordEnv {
		v.SudoPasswordEnv = ""
	}
	return v
}

// Save writes the inventory to path atomically (a temp file, then rename).
func Save(path string, inv *Inventory) error {
	data, err := inv.Marshal()
	if err != nil {
		return fmt.Errorf("inventory %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, data, 0o644)
}
