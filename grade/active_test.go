package grade

import (
	"strings"
	"testing"

	"github.com/deploylab/deploylab/checks"
)

// TestReloadCommandSystemPM2: as root, only a pm2 from a system directory
// is run; a pm2 in a home is run only as its daemon's user.
func TestReloadCommandSystemPM2(t *testing.T) {
	server := checks.Server{Port: 3000, Manager: "pm2", Workers: []checks.Process{{PID: 11}}}
	facts := func(user, pm2 string) *checks.HostFacts {
		return &checks.HostFacts{
			PM2:   []checks.PM2Daemon{{PID: 10, Home: "/home/ana/.pm2", User: user, Apps: []checks.PM2App{{Name: "app", PID: 11}}}},
			Tools: []checks.Tool{{Name: "pm2", Path: pm2}},
		}
	}
	nvm := "/home/ana/.nvm/versions/node/v20.0.0/bin/pm2"
	tests := []struct {
		name       string
		sudo       bool
		user, pm2  string
		want, what string // substrings of the command; "" for none
	}{
		{"root daemon, system pm2", true, "root", "/usr/bin/pm2", "/usr/bin/pm2 reload app", "pm2 reload app"},
		{"root daemon, pm2 in a home", true, "root", nvm, "", "no se ejecuta como root"},
		{"user daemon, pm2 in a home", true, "ana", nvm, "runuser -u ana -- env PM2_HOME=/home/ana/.pm2 HOME=/home/ana PATH=/home/ana/.nvm/versions/node/v20.0.0/bin:/usr/local/bin:/usr/bin:/bin " + nvm + " reload app", "pm2 reload app"},
		{"no sudo: as the login user", false, "ana", nvm, nvm + " reload app", "pm2 reload app"},
		{"dot-dot is not a system path", true, "root", "/usr/bin/../../home/ana/pm2", "", "no se ejecuta como root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &prober{sudo: tt.sudo}
			cmd, what := p.reloadCommand(facts(tt.user, tt.pm2), server)
			if tt.want == "" && cmd != "" || !strings.Contains(cmd, tt.want) || !strings.Contains(what, tt.what) {
				t.Errorf("reloadCommand = %q, %q; want %q, %q", cmd, what, tt.want, tt.what)
			}
			if tt.user == "root" && strings.Contains(cmd, "runuser") {
				t.Errorf("runuser for root: %q", cmd)
			}
		})
	}
}
