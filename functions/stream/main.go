// Command stream is the Lambda behind the RESPONSE_STREAM function URL: it
// serves GET /sse/stream and GET /sse/alerts, one SSE stream per
// invocation.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
)

func main() {
	a, err := app.Load(context.Background(), os.Getenv, config.NeedRedis|config.NeedTicketSecret)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambdaurl.Start(a.Mux("/sse/stream", "/sse/alerts"))
}
