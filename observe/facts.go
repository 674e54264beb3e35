package observe

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
)

// parseMeta reads the meta section's key=value lines.
func parseMeta(f *Facts, body string) {
	booted := false
	for _, l := range lines(body) {
		k, v, _ := strings.Cut(l, "=")
		v = clip(strings.TrimSpace(v), MaxField)
		switch k {
		case "hostname":
			f.Hostname = clip(v, MaxName)
		case "user":
			f.User = clip(v, MaxName)
		case "uid":
			if n, err := strconv.Atoi(v); err == nil {
				f.UID = n
			}
		case "home":
			f.Home = v
		case "sudo":
			f.Sudo = clip(v, MaxName)
		case "machine":
			f.Machine = clip(v, MaxName)
			f.Arch = GoArch(f.Machine)
		case "kernel":
			f.Kernel = clip(v, MaxName)
		case "os": // older probes: PRETTY_NAME
			f.OSName = v
		case "cpus":
			f.CPUs, _ = strconv.Atoi(v)
		case "mem": // kB
			if kb, err := strconv.ParseInt(v, 10, 64); err == nil && kb >= 0 && kb < 1<<50 {
				f.MemTotal = kb * 1024
			}
		case "init":
			f.Init = clip(v, MaxName)
		case "systemd_booted":
			booted = v == "1"
		case "machine_id":
			if machineIDRe.MatchString(v) {
				f.MachineID = v
			}
		}
	}
	f.Systemd = booted && f.Init == "systemd"
}

// parseOSRelease reads /etc/os-release (never sourced: parsed here).
func parseOSRelease(f *Facts, body string) {
	for _, l := range lines(body) {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = clip(unquoteOSRelease(v), MaxName)
		switch k {
		case "ID":
			f.OSID = v
		case "VERSION_ID":
			f.OSVersion = v
		case "PRETTY_NAME":
			f.OSName = v
		}
	}
}

func unquoteOSRelease(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		v = v[1 : len(v)-1]
		v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
	}
	return v
}

// parseDF reads "DIR\tdf -Pk's last line" lines into free bytes per DIR.
func parseDF(body string) map[string]int64 {
	m := map[string]int64{}
	for _, line := range lines(body) {
		if len(m) >= 1000 {
			break
		}
		dir, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		// Filesystem 1024-blocks Used Available Capacity Mounted-on
		fs := strings.Fields(rest)
		if len(fs) < 6 {
			continue
		}
		if kb, err := strconv.ParseInt(fs[3], 10, 64); err == nil && kb >= 0 && kb < 1<<50 {
			m[clip(dir, MaxField)] = kb * 1024
		}
	}
	return m
}

// parseExe reads "PID\t/path/of/exe\tcommand line" lines.
func parseExe(body string) map[int]Program {
	m := map[int]Program{}
	for _, l := range lines(body) {
		if len(m) >= 1000 {
			break
		}
		f := strings.SplitN(l, "\t", 3)
		pid, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if len(f) < 2 || err != nil || f[1] == "" {
			continue
		}
		p := Program{Exe: clip(f[1], MaxField)}
		if len(f) == 3 {
			p.Cmdline = clip(strings.TrimSpace(f[2]), MaxField)
		}
		m[pid] = p
	}
	return m
}

// parseCgroups sets the units' CPUStat from "CPUStat=/sys/fs/cgroup/<cg>/cpu.stat" lines.
func parseCgroups(units []Unit, body string) {
	for _, l := range lines(body) {
		p, ok := strings.CutPrefix(l, "CPUStat=")
		if !ok {
			continue
		}
		for i := range units {
			cg := units[i].ControlGroup
			if cg != "" && units[i].CPUStat == "" && strings.HasSuffix(p, cg+"/cpu.stat") {
				units[i].CPUStat = clip(p, MaxField)
			}
		}
	}
}

// GoArch maps uname -m to GOARCH; "" when there is no Go port.
func GoArch(machine string) string {
	switch machine {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "aarch64_be":
		return "arm64"
	case "armv7l", "armv6l", "armv7", "armhf":
		return "arm"
	case "i386", "i486", "i586", "i686":
		return "386"
	case "riscv64":
		return "riscv64"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	case "loongarch64":
		return "loong64"
	}
	return ""
}

var (
	machineIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sha256Re    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseHostKeys reads SSH public host key lines ("ssh-ed25519 AAAA… comment")
// into their fingerprints as ssh-keygen -l prints them ("ED25519
// SHA256:…"); lines that are not keys are skipped.
func ParseHostKeys(body string) []string {
	var out []string
	for _, l := range lines(body) {
		fs := strings.Fields(l)
		if len(fs) < 2 || len(out) >= MaxHostKeys || len(fs[1]) > 4096 {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(fs[1])
		if err != nil || len(blob) < 8 {
			continue
		}
		typ := strings.TrimPrefix(fs[0], "ssh-")
		typ = strings.ToUpper(strings.SplitN(typ, "-", 2)[0])
		if typ == "" || len(typ) > 16 {
			continue
		}
		sum := sha256.Sum256(blob)
		fp := typ + " SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
		dup := false
		for _, o := range out {
			dup = dup || o == fp
		}
		if !dup {
			out = append(out, fp)
		}
	}
	return out
}

// parseHistoryFile reads a history section's size and hashes (absent when
// the host has no sha256sum, or when they are not what the script prints).
func parseHistoryFile(attrs map[string]string) (HistoryFile, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(attrs["lines"]))
	if err != nil || n < 0 || !sha256Re.MatchString(attrs["sum"]) || !sha256Re.MatchString(attrs["head"]) {
		return HistoryFile{}, false
	}
	return HistoryFile{File: clip(attrs["file"], MaxField), Lines: n, Sum: attrs["sum"], HeadSum: attrs["head"]}, true
}
