// Command local serves every route of the service on one port for
// development (`make dev`): the same handlers as the functions, an embedded
// Redis unless REDIS_URL is set, demo users with a dev-only login, the
// telemetry simulator and the demo dashboard at /.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/machinedash/sse/internal/devserver"
)

func main() {
	var o devserver.Options
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "listen address")
	flag.BoolVar(&o.Simulate, "simulate", true, "publish demo telemetry for the demo machines")
	flag.DurationVar(&o.MaxStream, "max-stream", 0, "stream lifetime before the server rotates it, e.g. 30s (sets STREAM_MAX_DURATION; default as Lambda: 15m)")
	flag.DurationVar(&o.Sim.AlertEvery, "alert-every", 0, "mean time between simulated alerts per machine (default 2m)")
	flag.Parse()
	o.Getenv, o.Out = os.Getenv, os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second Ctrl-C while shutting down stops at once.
		<-ctx.Done()
		stop()
	}()
	if err := devserver.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
