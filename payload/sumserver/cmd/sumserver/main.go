// Command sumserver serves the practice's Express app, rewritten in Go with
// the same answers (see package sumserver). It is the payload deploylab
// builds and runs on the students' VMs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deploylab/deploylab/payload/cluster"
	"github.com/deploylab/deploylab/payload/sessions"
	"github.com/deploylab/deploylab/payload/sumserver"
)

const usage = `Usage: sumserver [--port N] [--addr HOST] [--mode serial|parallel] [--stats-socket PATH]
       sumserver stats --stats-socket PATH

Serves the practice's app: GET / answers "Hello World!", GET /api/:n answers
"Final count is <0+1+...+n>" (n capped at 5000000000, ~5-10 s of CPU).

Flags:
  --port N       TCP port (default: $PORT, else 3000; 0 picks a free port)
  --addr HOST    address to listen on (default: all interfaces)
  --mode MODE    serial: one request computed at a time, like Node (default)
                 parallel: requests computed concurrently, like idiomatic Go
  --drain D      on SIGTERM/SIGINT, time to let requests in flight finish
                 (default 15s)
  --stats-socket PATH
                 serve statistics (requests served, uptime) as JSON on this
                 unix socket (default: $RUNTIME_DIRECTORY/stats.sock when
                 systemd sets RUNTIME_DIRECTORY, else none)
` + sessions.FlagsHelp + `  --help         show this help

With --sessions master a sumserver, one process, keeps its tokens as memory
does (sumcluster shares them between its workers).

"sumserver stats --stats-socket PATH" prints a running server's statistics.

Signals:
  SIGTERM, SIGINT  stop accepting, finish requests in flight (up to --drain),
                   then exit 0

Exit codes:
  0  stopped by SIGTERM/SIGINT after finishing requests in flight
  1  could not listen, the server failed, or requests were still running
     when --drain ran out
  2  bad flag, --mode, --port or $PORT
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv("PORT"), os.Stdout, os.Stderr))
}

// stats is what the stats socket serves.
type stats struct {
	// Served counts the requests answered (any route, any status).
	Served uint64  `json:"served"`
	Uptime float64 `json:"uptime_s"`
	Mode   string  `json:"mode"`
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, envPort string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "stats" {
		return runStats(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sumserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defPort := "3000"
	if envPort != "" {
		defPort = envPort
	}
	port := fs.String("port", defPort, "")
	addr := fs.String("addr", "", "")
	mode := fs.String("mode", "serial", "")
	drain := fs.Duration("drain", 15*time.Second, "")
	sock := fs.String("stats-socket", "", "")
	sf := sessions.Bind(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "sumserver: %v (see --help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sumserver: unexpected argument %q (see --help)\n", fs.Arg(0))
		return 2
	}
	p, err := strconv.Atoi(*port)
	if err != nil || p < 0 || p > 65535 {
		fmt.Fprintf(stderr, "sumserver: bad port %q: want a number from 0 to 65535 (--port or $PORT)\n", *port)
		return 2
	}
	m, err := sumserver.ParseMode(*mode)
	if err != nil {
		fmt.Fprintf(stderr, "sumserver: %v\n", err)
		return 2
	}
	so, err := sf.Options()
	if err != nil {
		fmt.Fprintf(stderr, "sumserver: %v\n", err)
		return 2
	}
	if so.Mode == sessions.Master {
		so.Mode = sessions.Memory // one process: its memory is the whole state
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(p)))
	if err != nil {
		fmt.Fprintf(stderr, "sumserver: %v\n", err)
		return 1
	}
	h := sumserver.NewHandler(sumserver.Options{Mode: m})
	if so.Mode != sessions.Off {
		ss, err := sessions.New(so)
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "sumserver: %v\n", err)
			return 2
		}
		h = ss.Wrap(h)
	}
	var count atomic.Uint64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		count.Add(1)
	})
	if *sock == "" {
		*sock = cluster.RuntimeStatsSocket()
	}
	if *sock != "" {
		sln, err := cluster.ListenStats(*sock)
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "sumserver: %v\n", err)
			return 1
		}
		defer sln.Close()
		start := time.Now()
		go cluster.ServeStats(sln, func() any {
			return stats{Served: count.Load(), Uptime: time.Since(start).Seconds(), Mode: m.String()}
		})
	}
	srv := sumserver.NewServer(ln.Addr().String(), counted)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sumserver.WrapListener(ln)) }()
	fmt.Fprintf(stdout, "App listening on port %d (addr %s, mode %s, pid %d)\n",
		ln.Addr().(*net.TCPAddr).Port, ln.Addr(), m, os.Getpid())

	select {
	case err := <-served:
		fmt.Fprintf(stderr, "sumserver: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	fmt.Fprintf(stdout, "sumserver: stopping, letting requests in flight finish (up to %s)\n", *drain)
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "sumserver: stop: %v\n", err)
		return 1
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "sumserver: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "sumserver: stopped")
	return 0
}

// runStats prints the statistics a running sumserver serves on its socket.
func runStats(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sumserver stats", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sock := fs.String("stats-socket", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "sumserver: stats: %v (see sumserver --help)\n", err)
		return 2
	}
	if *sock == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sumserver: stats: give --stats-socket PATH, the socket the server serves (see sumserver --help)\n")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := cluster.ReadStats(ctx, *sock)
	if err != nil {
		fmt.Fprintf(stderr, "sumserver: stats: %v\nhint: is sumserver running with this --stats-socket?\n", err)
		return 1
	}
	_, _ = stdout.Write(b)
	return 0
}
