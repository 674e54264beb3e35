package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/render"
)

// The HTML reports' flags of deploylab bench (and bench show).

func addBenchReportFlags(c *cobra.Command, live bool) {
	f := c.Flags()
	f.String("html", "", "also write the report as one self-contained HTML file (charts inline; opens offline, prints to PDF)")
	f.String("charts", "", "also write each chart into this directory as SVG, and PNG when Chromium is installed")
	if live {
		f.String("live", "", "serve the report while the bench runs, updated as each run finishes: --live ("+render.DefaultLiveAddr+", loopback only) or --live=ADDR")
		f.Lookup("live").NoOptDefVal = render.DefaultLiveAddr
	}
}

// startLive starts the live page when --live was given, and returns the
// progress to give the bench (the terminal's and the page's) and a
// function to call when the bench is over.
func (r *rootCmd) startLive(c *cobra.Command, cfg *config.Config, prog bench.Progress) (bench.Progress, func(), error) {
	addr := cfg.Live
	if addr == "" {
		return prog, func() {}, nil
	}
	l, err := render.NewLive(addr, nil, render.BenchOptions{Version: versionString()})
	if err != nil {
		return nil, nil, err
	}
	where := "loopback only"
	if !render.Loopback(addr) {
		where = "reachable from other machines, as asked"
	}
	fmt.Fprintf(r.stderr, "live report: %s (%s)\n", l.URL(), where)
	finish := func() {
		l.Finish()
		fmt.Fprintf(r.stderr, "live report: the bench is over; %s stays up until Ctrl-C\n", l.URL())
		<-c.Context().Done()
		_ = l.Close()
	}
	return bench.TeeProgress(prog, l), finish, nil
}

// writeBenchReport writes --html and --charts for runs, when asked.
func (r *rootCmd) writeBenchReport(ctx context.Context, cfg *config.Config, runs []*bench.Record) error {
	htmlPath, chartsDir := cfg.HTML, cfg.Charts
	if (htmlPath == "" && chartsDir == "") || len(runs) == 0 {
		return nil
	}
	rep := render.BuildBench(runs, render.BenchOptions{Version: versionString(), Generated: time.Now()})
	if htmlPath != "" {
		if err := rep.WriteFile(htmlPath); err != nil {
			return fail.New(fail.Usage, "pass a writable --html path", fmt.Errorf("html report: %w", err))
		}
		fmt.Fprintf(r.stdout, "report: %s\n", htmlPath)
	}
	if chartsDir == "" {
		return nil
	}
	svgs, err := render.WriteCharts(chartsDir, rep.Charts)
	if err != nil {
		return fail.New(fail.Usage, "pass a writable --charts directory", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	pngs, err := render.WritePNGs(ctx, svgs)
	fmt.Fprintf(r.stdout, "charts: %d SVG and %d PNG files in %s\n", len(svgs), len(pngs), chartsDir)
	if err != nil {
		fmt.Fprintf(r.stderr, "charts: no PNG: %v\n", err)
		if hint := fail.HintOf(err); hint != "" {
			fmt.Fprintf(r.stderr, "hint: %s\n", hint)
		}
	}
	return nil
}
