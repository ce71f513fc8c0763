// Command status is the Lambda behind GET /sse/status.
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
	lambdaurl.Start(a.Mux("/sse/status"))
}
