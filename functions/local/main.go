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
