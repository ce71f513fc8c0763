package main

import (
	_ "github.com/aws/aws-cdk-go/awscdk/v2"
	_ "github.com/aws/constructs-go/constructs/v10"
	_ "github.com/aws/jsii-runtime-go"
	_ "github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

func main() {}
