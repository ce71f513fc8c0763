// Command smoke is the post-deploy check (make smoke), not a Lambda: it
// gets a ticket for each stream with an access token, opens the alerts
// and the data stream through the edge, and reports time to first byte,
// heartbeat spacing and whether events arrive incrementally. It exits 1
// when a stream is buffered or a heartbeat is late, 2 on bad usage.
//
//	SMOKE_TOKEN=<access token> go run ./functions/smoke -url https://<distribution> -device C01
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/machinedash/sse/internal/smoke"
)

func main() {
	var c smoke.Config
	flag.StringVar(&c.URL, "url", "", "base URL of the distribution, e.g. https://d111111abcdef8.cloudfront.net")
	flag.StringVar(&c.Device, "device", "", "a device of the token's user, for the data stream")
	flag.DurationVar(&c.Heartbeat, "heartbeat", 25*time.Second, "the service's HEARTBEAT_INTERVAL")
	flag.DurationVar(&c.Slack, "slack", 5*time.Second, "a heartbeat later than heartbeat+slack is late")
	flag.DurationVar(&c.Watch, "for", 0, "how long to watch each stream (default 2 x heartbeat + slack)")
	flag.DurationVar(&c.FirstEventMax, "first-event", 5*time.Second, "the first event later than this fails")
	flag.Parse()
	// The token comes from the environment, so that it is not in the
	// process list or the shell history.
	c.Token = os.Getenv("SMOKE_TOKEN")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := smoke.Run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintln(os.Stderr, "usage: SMOKE_TOKEN=<access token> smoke -url https://<distribution> -device <deviceId>")
		os.Exit(2)
	}
	fmt.Print(rep)
	if !rep.OK() {
		os.Exit(1)
	}
}
