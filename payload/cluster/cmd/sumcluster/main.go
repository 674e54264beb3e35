// Command sumcluster serves the practice's app (package sumserver) the way
// Node's cluster module would, done right: a master binds the port and forks
// worker processes, schedules connections to the least loaded one, re-forks
// crashed workers with back-off, reloads them one at a time with zero failed
// requests on SIGHUP, recycles them, drains on SIGTERM, and serves per-worker
// statistics on a local unix socket (`sumcluster stats`). See package cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/deploylab/deploylab/payload/cluster"
	"github.com/deploylab/deploylab/payload/sessions"
	"github.com/deploylab/deploylab/payload/sumserver"
)

const usage = `Usage: sumcluster [flags]
       sumcluster stats [--stats-socket PATH] [--port N]

Serves the practice's app (GET / and GET /api/:n, as Express answers them)
from a master process and N worker processes sharing one port, like Node's
cluster module. Only the master binds the port.

Flags:
  --port N              TCP port (default: $PORT, else 3001; 0 picks a free port)
  --addr HOST           address to listen on (default: all interfaces)
  --instances N         workers: 0 = one per CPU (default), -1 = CPUs-1 (at
                        least 1), N = N
  --schedule S          how connections reach workers:
                          least  the master hands each connection to the worker
                                 with the fewest requests in flight; a worker
                                 stuck in a long request ranks last (default)
                          rr     the master hands them out in turn (Node's default)
                          none   workers accept on the shared socket (kernel's pick)
  --mode M              serial: one request computed at a time per worker, like
                        Node (default); parallel: concurrently, like Go
  --max-requests N      recycle a worker after N requests (0 = never)
  --max-age D           recycle a worker after D up, e.g. 1h (0 = never)
  --max-memory BYTES    recycle a worker whose RSS reaches BYTES (K, M, G
                        suffixes, powers of 1024; 0 = never)
  --stats-socket PATH   unix socket serving statistics as JSON (default:
                        $RUNTIME_DIRECTORY/stats.sock under systemd, else
                        /tmp/sumcluster-<port>.sock); never the public port
  --shutdown-timeout D  time a draining worker gets to finish its requests
                        (default 30s)
` + sessions.FlagsHelp + `  --help                show this help

Recycling and reloads replace one worker at a time: the new one is ready
before the old one stops receiving connections, and the old one finishes its
requests (answering keep-alive clients with Connection: close) before it exits.
A crashed worker is re-forked after 100ms, doubling up to 15s while it keeps
crashing (reset after 30s up). Workers die with the master.

sumcluster stats prints the master's statistics (workers, pids, requests
served and in flight, RSS, uptime, restarts) as JSON.

Signals (to the master):
  SIGHUP           rolling reload: replace every worker, one at a time, with
                   zero failed requests (runs the binary now at the master's path)
  SIGTERM, SIGINT  graceful stop: stop accepting, finish requests in flight
                   (up to --shutdown-timeout), exit 0; a second one kills
                   the workers at once
Under systemd (NOTIFY_SOCKET set) the master reports READY=1, RELOADING=1 and
STOPPING=1, so Type=notify and Type=notify-reload units work.

Exit codes:
  0  stopped by SIGTERM/SIGINT after the workers drained
  1  could not start (port or stats socket in use), workers had to be killed,
     or sumcluster stats could not read the socket
  2  bad flag, argument or $PORT
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a bad flag or argument: one line, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

type options struct {
	port            int
	addr            string
	instances       int
	schedule        cluster.Schedule
	mode            sumserver.Mode
	maxRequests     uint64
	maxAge          time.Duration
	maxMemory       int64
	statsSocket     string
	shutdownTimeout time.Duration
	sessions        sessions.Options
}

// parse parses the serving flags (the workers parse the same argv).
func parse(args []string, envPort string) (options, error) {
	var o options
	fs := flag.NewFlagSet("sumcluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defPort := "3001"
	if envPort != "" {
		defPort = envPort
	}
	port := fs.String("port", defPort, "")
	fs.StringVar(&o.addr, "addr", "", "")
	fs.IntVar(&o.instances, "instances", 0, "")
	schedule := fs.String("schedule", "least", "")
	mode := fs.String("mode", "serial", "")
	fs.Uint64Var(&o.maxRequests, "max-requests", 0, "")
	fs.DurationVar(&o.maxAge, "max-age", 0, "")
	maxMemory := fs.String("max-memory", "0", "")
	fs.StringVar(&o.statsSocket, "stats-socket", "", "")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "")
	sf := sessions.Bind(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q", fs.Arg(0))
	}
	p, err := strconv.Atoi(*port)
	if err != nil || p < 0 || p > 65535 {
		return o, usagef("bad port %q: want a number from 0 to 65535 (--port or $PORT)", *port)
	}
	o.port = p
	if _, err := cluster.Instances(o.instances, 1); err != nil {
		return o, usagef("--instances: %v", err)
	}
	if o.schedule, err = cluster.ParseSchedule(*schedule); err != nil {
		return o, usagef("--schedule: %v", err)
	}
	if o.mode, err = sumserver.ParseMode(*mode); err != nil {
		return o, usagef("--mode: %v", err)
	}
	if o.maxMemory, err = cluster.ParseBytes(*maxMemory); err != nil {
		return o, usagef("--max-memory: %v", err)
	}
	if o.maxAge < 0 {
		return o, usagef("--max-age: must not be negative, got %s", o.maxAge)
	}
	if o.shutdownTimeout <= 0 {
		return o, usagef("--shutdown-timeout: must be positive, got %s", o.shutdownTimeout)
	}
	if o.sessions, err = sf.Options(); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "stats" {
		return runStats(args[1:], stdout, stderr)
	}
	o, err := parse(args, os.Getenv("PORT"))
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sumcluster: %v (see sumcluster --help)\n", err)
		return 2
	}
	if cluster.IsWorker() {
		return runWorker(o, stderr)
	}
	return runMaster(o, stderr)
}

func runWorker(o options, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	wc := cluster.WorkerConfig{
		Handler:         sumserver.NewHandler(sumserver.Options{Mode: o.mode}),
		NewServer:       sumserver.NewServer,
		WrapListener:    sumserver.WrapListener,
		ShutdownTimeout: o.shutdownTimeout,
	}
	if o.sessions.Mode != sessions.Off {
		ss, err := sessions.New(o.sessions)
		if err != nil {
			fmt.Fprintf(stderr, "sumcluster: worker: %v\n", err)
			return 1
		}
		wc.Handler = ss.Wrap(wc.Handler)
		if o.sessions.Mode == sessions.Master {
			wc.OnStart = ss.SetSend
			wc.OnMessage = ss.OnMessage
		}
	}
	err := cluster.RunWorker(ctx, wc)
	if err != nil {
		fmt.Fprintf(stderr, "sumcluster: worker: %v\n", err)
		return 1
	}
	return 0
}

func runMaster(o options, stderr io.Writer) int {
	// Signals first, so that one arriving during start-up is not lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	logger := log.New(stderr, "sumcluster: ", 0)
	cfg := cluster.Config{
		Addr:            net.JoinHostPort(o.addr, strconv.Itoa(o.port)),
		Instances:       o.instances,
		Schedule:        o.schedule,
		MaxRequests:     o.maxRequests,
		MaxAge:          o.maxAge,
		MaxMemory:       o.maxMemory,
		StatsSocket:     o.statsSocket,
		ShutdownTimeout: o.shutdownTimeout,
		Logger:          logger,
	}
	if o.sessions.Mode == sessions.Master {
		hub := sessions.NewHub(o.sessions.Cap)
		cfg.OnFork = func(_ *cluster.Master, _ int, send func(any) error) { hub.OnFork(send) }
		cfg.OnMessage = func(m *cluster.Master, from int, raw json.RawMessage) { hub.OnMessage(m, from, raw) }
	}
	m, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sumcluster: error: %v\n", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(stderr, "hint: another process listens on port %d: stop it or pass another --port\n", o.port)
		}
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- m.Wait() }()
	stopping := false
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(stderr, "sumcluster: error: %v\n", err)
				return 1
			}
			return 0
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				if !stopping {
					go func() {
						if err := m.Reload(); err != nil {
							logger.Printf("reload: %v", err)
						}
					}()
				}
			case !stopping:
				stopping = true
				logger.Printf("%s: stopping gracefully (again to kill the workers)", sig)
				go m.Stop()
			default:
				logger.Printf("%s again: killing the workers", sig)
				m.Kill()
			}
		}
	}
}

func runStats(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sumcluster stats", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defPort := "3001"
	if p := os.Getenv("PORT"); p != "" {
		defPort = p
	}
	sock := fs.String("stats-socket", "", "")
	port := fs.String("port", defPort, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "sumcluster: stats: %v (see sumcluster --help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sumcluster: stats: unexpected argument %q (see sumcluster --help)\n", fs.Arg(0))
		return 2
	}
	path := *sock
	if path == "" {
		p, err := strconv.Atoi(*port)
		if err != nil || p < 0 || p > 65535 {
			fmt.Fprintf(stderr, "sumcluster: stats: bad port %q: want a number from 0 to 65535 (--port or $PORT)\n", *port)
			return 2
		}
		path = cluster.DefaultStatsSocket(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := cluster.ReadStats(ctx, path)
	if err != nil {
		fmt.Fprintf(stderr, "sumcluster: stats: %v\nhint: is sumcluster running? pass the --stats-socket it uses\n", err)
		return 1
	}
	_, _ = stdout.Write(b)
	return 0
}
