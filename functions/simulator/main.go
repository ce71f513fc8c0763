// Command simulator is the Lambda that EventBridge starts every minute: it
// publishes demo telemetry for SIMULATOR_DURATION (default 50s, cut short
// before the invocation deadline) and returns before the next run fires.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/sim"
)

// deadlineMargin is left before the invocation deadline for the last
// pipeline and the return: the platform kills at the deadline.
const deadlineMargin = 2 * time.Second

func main() {
	a := app.MustLoad(config.NeedRedis)
	set, err := sim.LoadSettings(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid configuration:\n"+err.Error())
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context) error {
		if err := sim.SeedOwners(ctx, a.Redis, a.Config.Keys, set.Owners); err != nil {
			return err
		}
		s, err := sim.New(a.Redis, sim.Config{Keys: a.Config.Keys, Machines: set.Machines, AlertEvery: set.AlertEvery, Log: a.Log})
		if err != nil {
			return err
		}
		err = s.RunFor(ctx, set.Duration, deadlineMargin)
		st := s.Stats()
		a.Log.InfoContext(ctx, "simulator run done", slog.Int64("ticks", st.Steps), slog.Int64("failed", st.Failed),
			slog.Int64("published", st.Published), slog.Int64("alerts", st.Alerts))
		return err
	})
}
