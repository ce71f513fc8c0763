// Command ticket is the Lambda behind POST /sse/stream-ticket and POST
// /sse/close (both POSTs, routed alike at the edge).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/urlfn"
)

func main() {
	a := app.MustLoad(config.NeedRedis|config.NeedTicketSecret|config.NeedAccessToken, app.AccessTokens)
	// A BUFFERED function URL: one JSON response object, not a stream.
	lambda.Start(urlfn.Buffered(a.Serve(app.TicketRoute, app.CloseRoute)))
}
