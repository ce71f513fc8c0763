// Command local serves every route of the service on one port for
// development (`make dev`): the same handlers as the functions, an embedded
// Redis unless REDIS_URL is set, demo users with a dev-only login, the
// telemetry simulator and the demo dashboard at /. Its flags and usage
// text are internal/devserver's (Options.Register), so they are tested.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/machinedash/sse/internal/devserver"
)

func main() {
	var o devserver.Options
	o.Register(flag.CommandLine)
	flag.Parse()
	if err := o.Check(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.Getenv, o.Out = os.Getenv, os.Stdout
	stopProfile, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second Ctrl-C while shutting down stops at once.
		<-ctx.Done()
		stop()
	}()
	err = devserver.Run(ctx, o)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startCPUProfile starts the -cpuprofile profile (none for ""); stop
// writes it out.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
		}
	}, nil
}
