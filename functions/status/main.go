// Command status is the Lambda behind GET /sse/status, and serves the
// browser client (GET /sse/client.js, /sse/client.d.ts).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/urlfn"
)

func main() {
	a := app.MustLoad(config.NeedRedis | config.NeedTicketSecret)
	// A BUFFERED function URL: one JSON response object, not a stream.
	lambda.Start(urlfn.Buffered(a.Serve(app.StatusRoute, app.ClientJSRoute, app.ClientDTSRoute)))
}
