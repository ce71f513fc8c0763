// Command stream is the Lambda behind the RESPONSE_STREAM function URL: it
// serves GET /sse/stream and GET /sse/alerts, one SSE stream per
// invocation. The same binary serves many invocations at once on Lambda
// Managed Instances (AWS_LAMBDA_MAX_CONCURRENCY), all on one Redis
// subscription.
package main

import (
	"context"
	"os"
	"time"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
)

func main() {
	a := app.MustLoad(config.NeedRedis | config.NeedTicketSecret)
	a.LoadScripts(context.Background())
	// Metrics as EMF lines on stdout: CloudWatch Logs extracts them.
	a.Metrics.EmitTo(os.Stdout)
	go a.Metrics.Run(context.Background(), time.Minute)
	a.StartStream(a.Serve(app.StreamRoute, app.AlertsRoute))
}
