package observe

import (
	"encoding/json"
	"strings"
	"testing"
)

// The fuzz targets: every parser of host output, fed anything. None may
// panic, and what they keep stays within the bounds. Their seed corpora are
// in testdata/fuzz (real outputs and the hostile cases found so far);
// scripts/test.sh runs each for a few seconds.

func checkListeners(t *testing.T, ls []Listener) {
	t.Helper()
	if len(ls) > MaxListeners {
		t.Fatalf("%d listeners", len(ls))
	}
	for _, l := range ls {
		if len(l.PIDs) > MaxSocketPIDs || len(l.Names) > len(l.PIDs) || l.Port < 0 || l.Port > 65535 || len(l.Addr) > MaxName {
			t.Fatalf("listener out of bounds: %d pids, %d names, port %d", len(l.PIDs), len(l.Names), l.Port)
		}
		for _, n := range l.Names {
			if len(n) > MaxName {
				t.Fatalf("name of %d bytes", len(n))
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Parse(data)
		if err != nil {
			return
		}
		if len(h.Processes) > MaxProcesses || len(h.Notes) > MaxNotes || len(h.Files) > MaxFiles ||
			len(h.History) > MaxHistory || len(h.HTTP) > MaxHTTP || len(h.PM2) > MaxPM2 || len(h.Units) > MaxUnits ||
			len(h.HostKeys) > MaxHostKeys || len(h.HistoryFiles) > MaxHistoryFiles || len(h.MachineID) > 32 {
			t.Fatalf("out of bounds: %d processes, %d notes", len(h.Processes), len(h.Notes))
		}
		checkListeners(t, h.Listeners)
		if _, err := json.Marshal(h); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
	})
}

func FuzzParseProcesses(f *testing.F) {
	f.Fuzz(func(t *testing.T, body, format string) {
		ps, _ := ParseProcesses(body, format)
		for _, p := range ps {
			if len(p.Cmdline) > MaxField || len(p.User) > MaxName || p.Cmdline == "" {
				t.Fatalf("process out of bounds: %+v", p)
			}
		}
	})
}

func FuzzParseSS(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string) {
		ls, _ := ParseSS(body)
		checkListeners(t, ls)
	})
}

func FuzzParseProcNet(f *testing.F) {
	f.Fuzz(func(t *testing.T, tcp, sockets string) {
		ls, _ := ParseProcNet(lines(tcp), ParseSockets(sockets))
		checkListeners(t, ls)
	})
}

func FuzzParsePM2(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string, dump bool) {
		apps, err := ParsePM2(body, dump)
		if err != nil && apps != nil {
			t.Fatalf("apps with an error")
		}
		if len(apps) > MaxPM2Apps {
			t.Fatalf("%d apps", len(apps))
		}
		for _, a := range apps {
			if len(a.Name) > MaxName || len(a.Script) > MaxField || len(a.Cwd) > MaxField || len(a.Instances) > 32 {
				t.Fatalf("app out of bounds")
			}
		}
	})
}

func FuzzParseUnits(f *testing.F) {
	f.Fuzz(func(t *testing.T, body, cgroups string) {
		us := ParseUnits(body)
		parseCgroups(us, cgroups)
		for _, u := range us {
			if u.Name == "" || len(u.Name) > MaxName || len(u.ExecStart) > MaxField {
				t.Fatalf("unit out of bounds: %+v", u)
			}
		}
	})
}

func FuzzParseHistory(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string, max int) {
		max = max % 1000
		hs := ParseHistory(body, "/h", max)
		if len(hs) > max && max >= 0 {
			t.Fatalf("%d lines, max %d", len(hs), max)
		}
		for _, h := range hs {
			if h.Line == "" || len(h.Line) > MaxHistoryLine || strings.ContainsAny(h.Line, "\n") {
				t.Fatalf("line out of bounds: %q", h.Line)
			}
		}
	})
}

func FuzzParseFacts(f *testing.F) {
	f.Fuzz(func(t *testing.T, meta, osrelease, df, tools string) {
		var fs Facts
		parseMeta(&fs, meta)
		parseOSRelease(&fs, osrelease)
		fs.DiskFree = parseDF(df)
		ts := ParseTools(tools)
		if len(fs.Hostname) > MaxName || len(fs.Home) > MaxField || len(fs.OSName) > MaxName || len(ts) > MaxTools || fs.MemTotal < 0 {
			t.Fatalf("facts out of bounds: %+v", fs)
		}
		for _, n := range fs.DiskFree {
			if n < 0 {
				t.Fatalf("negative disk")
			}
		}
		if _, err := json.Marshal(fs); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseResult(f *testing.F) {
	f.Fuzz(func(t *testing.T, r string) {
		_, ms, _, _ := ParseResult(r)
		if ms != ms {
			t.Fatal("NaN")
		}
		b := parseBlocking(map[string]string{"heavy_result": r, "short_result": r, "offset": r})
		if _, err := json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseHostKeys: public host key lines and a history section's
// attributes, as a VM prints them (untrusted).
func FuzzParseHostKeys(f *testing.F) {
	f.Fuzz(func(t *testing.T, keys, lines, sum, head string) {
		ks := ParseHostKeys(keys)
		if len(ks) > MaxHostKeys {
			t.Fatalf("%d host keys", len(ks))
		}
		for _, k := range ks {
			if len(k) > 80 || strings.ContainsAny(k, "\n\t") {
				t.Fatalf("fingerprint %q", k)
			}
		}
		if hf, ok := parseHistoryFile(map[string]string{"file": "/h", "lines": lines, "sum": sum, "head": head}); ok {
			if hf.Lines < 0 || len(hf.Sum) != 64 || len(hf.HeadSum) != 64 {
				t.Fatalf("history file %+v", hf)
			}
		}
	})
}
