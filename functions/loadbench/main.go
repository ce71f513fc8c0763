// Command loadbench is the load-harness driver (a command, not a Lambda): it runs
// ../shared/loadcmp's redis-sse target against local-server binaries, each given as a file or
// a git revision, and prints issue 14's table with the median of -runs runs of workload (a),
// an idle run and a saturation sweep, the binaries side by side (docs/benchmarks.md). Run it
// with the machine otherwise idle; it warns about every run that was not.
//
//	go run ./functions/loadbench -runs 3 before=/work/perf/local-before after=HEAD
//	go run ./functions/loadbench -kinds a,sweep w0=HEAD w2=HEAD,STREAM_FLUSH_INTERVAL=2ms
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/machinedash/sse/internal/loadbench"
)

func main() {
	c := loadbench.Config{Log: os.Stderr}
	flag.StringVar(&c.Repo, "repo", ".", "git repository that revisions are built from")
	flag.StringVar(&c.Harness, "harness", "../shared/loadcmp", "loadcmp's source folder")
	flag.StringVar(&c.Work, "work", "", "folder for binaries, logs and results.jsonl (default: a new one under /tmp)")
	flag.IntVar(&c.Runs, "runs", 3, "runs of every kind per binary (the table shows their median)")
	flag.IntVar(&c.Streams, "streams", 1000, "SSE streams, one user each")
	flag.IntVar(&c.Devices, "devices", 100, "devices")
	flag.IntVar(&c.PerStream, "per-stream", 5, "devices per stream")
	flag.Float64Var(&c.Rate, "rate", 1000, "workload (a): updates/s over all devices (1000 = 50k deliveries/s nominal)")
	flag.DurationVar(&c.Duration, "duration", 30*time.Second, "workload (a): measurement window")
	flag.DurationVar(&c.Warmup, "warmup", 5*time.Second, "workload (a): load before the window")
	flag.DurationVar(&c.Idle, "idle", 2*time.Second, "idle hold after connecting, in every run (idle RSS is read at its end)")
	sweep := flag.String("sweep", "3000,4000,6000", "saturation sweep rates, updates/s (x50 = deliveries/s nominal)")
	flag.DurationVar(&c.SweepDuration, "sweep-duration", 15*time.Second, "sweep: measurement window per rate")
	flag.DurationVar(&c.SweepWarmup, "sweep-warmup", 5*time.Second, "sweep: load before the window")
	kinds := flag.String("kinds", "a,idle,sweep", "which runs: a (workload a), idle (-rate 0), sweep")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./functions/loadbench [flags] NAME=PATH-OR-REVISION[,VAR=VALUE...]...\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	var err error
	if c.Sweep, err = loadbench.ParseRates(*sweep); err != nil {
		fail(err)
	}
	c.Kinds = strings.Split(*kinds, ",")
	for _, a := range flag.Args() {
		b, err := loadbench.ParseBinary(a)
		if err != nil {
			fail(err)
		}
		c.Binaries = append(c.Binaries, b)
	}
	if err := c.Check(); err != nil {
		fail(err)
	}
	if c.Work == "" {
		if c.Work, err = os.MkdirTemp("", "loadbench-"); err != nil {
			fail(err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := loadbench.Measure(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	flag.Usage()
	os.Exit(2)
}
