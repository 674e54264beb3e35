package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/payload"
)

// Deployment says what deploylab installs on a host and where. Up installs
// it; the other verbs (down, restart, ls, ...) find things through it.
//
// On the host:
//
//	/opt/deploylab/releases/<hash>/   one directory per payload, immutable
//	/opt/deploylab/current            -> releases/<hash>, switched by rename
//	/opt/deploylab/bin/<program>      hard links to current's programs
//	/opt/deploylab/state/<service>    what the running service was started with
//	/etc/systemd/system/deploylab-<service>.service
//
// The units run /opt/deploylab/bin/<program>, not current/<program>: a
// process's /proc/self/exe names the resolved file, so the cluster master,
// which re-executes its own path for new workers on a reload, must be started
// from a path that is not a symlink and that a new binary replaces by
// rename. Then SIGHUP brings up workers running the new binary.
type Deployment struct {
	// Root is where releases live: /opt/deploylab.
	Root string
	// Supervisor is what runs the services: "systemd" (the only one so far;
	// "pm2" comes later).
	Supervisor string
	// Services are the servers, in start order.
	Services []Service
	// KeepReleases is how many releases to keep (the current one included).
	KeepReleases int
}

// Service is one supervised server.
type Service struct {
	// Name names the unit (deploylab-<Name>.service) and the state file.
	Name string
	// Program is the payload program it runs.
	Program     string
	Description string
	// Port is the TCP port it serves HTTP on (all addresses).
	Port int
	// Args are extra arguments after --port.
	Args []string
	// Notify: the program reports READY=1 over sd_notify (Type=notify).
	Notify bool
	// Reload: SIGHUP makes the program replace its workers with the binary
	// now at its path, without dropping a request; a new binary is then
	// reloaded rather than restarted.
	Reload bool
	// RuntimeDirectory is the name of the service's /run directory ("" for
	// none); the server keeps its statistics socket (stats.sock) there.
	RuntimeDirectory string
}

// Unit is the systemd unit name.
func (s Service) Unit() string { return "deploylab-" + s.Name + ".service" }

// Default root and ports.
const (
	DefaultRoot        = "/opt/deploylab"
	DefaultPort        = 3000
	DefaultClusterPort = 3001
	SupervisorSystemd  = "systemd"
)

// DeploymentOptions are the user's choices for NewDeployment.
type DeploymentOptions struct {
	// Port and ClusterPort are the servers' ports; 0 means the defaults.
	Port, ClusterPort int
	// Instances is the cluster's worker count: 0 = one per CPU, -1 = CPUs-1.
	Instances int
	// Supervisor: "" or "systemd".
	Supervisor string
}

// NewDeployment describes the practice's deployment: the single server on
// Port and the clustered server on ClusterPort.
func NewDeployment(o DeploymentOptions) (Deployment, error) {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.ClusterPort == 0 {
		o.ClusterPort = DefaultClusterPort
	}
	if o.Supervisor == "" {
		o.Supervisor = SupervisorSystemd
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--port", o.Port}, {"--cluster-port", o.ClusterPort}} {
		if p.v < 1 || p.v > 65535 {
			return Deployment{}, fail.Errorf(fail.Usage, "use a port from 1 to 65535 (1024 and up: the servers run unprivileged)", "%s %d is out of range", p.flag, p.v)
		}
		if p.v < 1024 {
			return Deployment{}, fail.Errorf(fail.Usage, "use a port from 1024 to 65535", "%s %d is a privileged port: the servers run unprivileged", p.flag, p.v)
		}
	}
	if o.Port == o.ClusterPort {
		return Deployment{}, fail.Errorf(fail.Usage, "give the single and the clustered server different ports", "--port and --cluster-port are both %d", o.Port)
	}
	if o.Instances < -1 || o.Instances > 256 {
		return Deployment{}, fail.Errorf(fail.Usage, "use 0 (one per CPU), -1 (CPUs-1) or a count up to 256", "--instances %d is out of range", o.Instances)
	}
	if o.Supervisor != SupervisorSystemd && o.Supervisor != SupervisorPM2 {
		return Deployment{}, fail.Errorf(fail.Usage, "use --supervisor systemd or --supervisor pm2", "supervisor %q is not supported", o.Supervisor)
	}
	return Deployment{
		Root:         DefaultRoot,
		Supervisor:   o.Supervisor,
		KeepReleases: 3,
		Services: []Service{
			{
				Name:        payload.Sumserver,
				Program:     payload.Sumserver,
				Description: "deploylab single sum server",
				Port:        o.Port,
				// Its statistics socket (requests served, for ls).
				RuntimeDirectory: "deploylab-sumserver",
			},
			{
				Name:             payload.Sumcluster,
				Program:          payload.Sumcluster,
				Description:      "deploylab clustered sum server",
				Port:             o.ClusterPort,
				Args:             []string{"--instances", strconv.Itoa(o.Instances)},
				Notify:           true,
				Reload:           true,
				RuntimeDirectory: "deploylab-sumcluster",
			},
		},
	}, nil
}

// Paths on the host.

// ReleaseDir is the directory of the release hash.
func (d Deployment) ReleaseDir(hash string) string { return path.Join(d.Root, "releases", hash) }

// Current is the symlink to the current release.
func (d Deployment) Current() string { return path.Join(d.Root, "current") }

// BinPath is the stable path a service's program runs from.
func (d Deployment) BinPath(program string) string { return path.Join(d.Root, "bin", program) }

// StatePath records what a service was last started or reloaded with.
func (d Deployment) StatePath(s Service) string { return path.Join(d.Root, "state", s.Name) }

// UnitPath is where the unit file goes.
func (d Deployment) UnitPath(s Service) string { return path.Join("/etc/systemd/system", s.Unit()) }

// Hardening are the sandboxing directives of every unit. All of them apply
// both on a Debian 12 VM and in a systemd-nspawn container (deploylab's lab
// hosts): the journal shows no "Failed to set up" or "ignoring" for them
// there, and the processes run with NoNewPrivs, seccomp and an empty
// capability bounding set. systemd-analyze security rates them about 1.1 (OK).
var Hardening = []string{
	"DynamicUser=yes",
	"NoNewPrivileges=yes",
	"ProtectSystem=strict",
	"ProtectHome=yes",
	"PrivateTmp=yes",
	"PrivateDevices=yes",
	"PrivateUsers=yes",
	"ProtectKernelTunables=yes",
	"ProtectKernelModules=yes",
	"ProtectKernelLogs=yes",
	"ProtectControlGroups=yes",
	"ProtectClock=yes",
	"ProtectHostname=yes",
	"ProtectProc=invisible",
	"ProcSubset=pid",
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
	"RestrictNamespaces=yes",
	"RestrictRealtime=yes",
	"RestrictSUIDSGID=yes",
	"LockPersonality=yes",
	"MemoryDenyWriteExecute=yes",
	"SystemCallFilter=@system-service",
	"SystemCallFilter=~@privileged @resources",
	"SystemCallErrorNumber=EPERM",
	"SystemCallArchitectures=native",
	"CapabilityBoundingSet=",
	"AmbientCapabilities=",
	"DevicePolicy=closed",
	"RemoveIPC=yes",
	"UMask=0077",
}

// UnitFile renders the systemd unit of s.
func (d Deployment) UnitFile(s Service) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by deploylab up; changes here are overwritten by the next run.")
	w("[Unit]")
	w("Description=%s (port %d)", s.Description, s.Port)
	w("Documentation=https://github.com/deploylab/deploylab")
	w("After=network.target")
	w("StartLimitIntervalSec=60")
	w("StartLimitBurst=10")
	w("")
	w("[Service]")
	if s.Notify {
		w("Type=notify")
		w("NotifyAccess=main")
	} else {
		w("Type=exec")
	}
	args := append([]string{d.BinPath(s.Program), "--port", strconv.Itoa(s.Port)}, s.Args...)
	w("ExecStart=%s", strings.Join(args, " "))
	if s.Reload {
		w("ExecReload=/bin/kill -HUP $MAINPID")
	}
	w("Restart=on-failure")
	w("RestartSec=1s")
	// SIGTERM to the main process only: it drains its workers itself.
	w("KillMode=mixed")
	w("TimeoutStopSec=45s")
	if s.RuntimeDirectory != "" {
		w("RuntimeDirectory=%s", s.RuntimeDirectory)
		w("RuntimeDirectoryMode=0755")
	}
	for _, h := range Hardening {
		w("%s", h)
	}
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return []byte(b.String())
}

// unitSum is a short hash of a unit's content, recorded in the state file.
func unitSum(unit []byte) string {
	s := sha256.Sum256(unit)
	return hex.EncodeToString(s[:])[:16]
}

// Service returns the service named name.
func (d Deployment) Service(name string) (Service, bool) {
	for _, s := range d.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}
