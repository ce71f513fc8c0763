// Command health is the Lambda behind GET /health.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/urlfn"
)

func main() {
	a := app.MustLoad(config.NeedRedis)
	// A BUFFERED function URL: one JSON response object, not a stream.
	lambda.Start(urlfn.Buffered(a.Serve(app.HealthRoute)))
}
