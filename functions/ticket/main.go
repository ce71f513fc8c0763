// Command ticket is the Lambda behind POST /sse/stream-ticket.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/urlfn"
)

func main() {
	a, err := app.Load(context.Background(), os.Getenv, config.NeedRedis|config.NeedTicketSecret|config.NeedAccessToken)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A BUFFERED function URL: one JSON response object, not a stream.
	lambda.Start(urlfn.Buffered(a.Mux("/sse/stream-ticket")))
}
