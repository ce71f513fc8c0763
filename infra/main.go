// Command infra is the AWS CDK app of the machine dashboard's SSE service:
// VPC, ElastiCache, secrets, the Lambda functions and their URLs, CloudFront
// and alarms (DESIGN section 1). `cdk synth` (make synth) runs it; its
// configuration comes from CDK context, see README.md.
//
// Synthesis looks nothing up in AWS: it works offline and without an account.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	app := awscdk.NewApp(nil)
	if err := Build(app); err != nil {
		fmt.Fprintln(os.Stderr, err)
		jsii.Close()
		os.Exit(1)
	}
	app.Synth(nil)
	jsii.Close()
}
