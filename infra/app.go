package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Build adds the stack to app, configured from the app's context, and applies
// the cdk-nag checks.
func Build(app awscdk.App) error {
	props, err := PropsFromContext(func(key string) any {
		return app.Node().TryGetContext(jsii.String(key))
	})
	if err != nil {
		return fmt.Errorf("infra: invalid context:\n%w", err)
	}
	if props.AssetRoot == "" {
		if props.AssetRoot, err = findRepoRoot(); err != nil {
			return err
		}
	}
	if _, err := NewStack(app, StackID, props); err != nil {
		return err
	}
	// The us-east-1 parts (regional.go), validated with the rest above.
	props = props.withDefaults()
	if props.Ops.WAF {
		NewWafStack(app, props)
	}
	if props.Ops.DistributionID != "" {
		NewEdgeStack(app, props)
	}
	AddChecks(app)
	return nil
}

// findRepoRoot is the nearest directory at or above the working directory
// that holds cdk.json: the root the CDK CLI runs in (bin/<fn>/bootstrap lives
// there), also when the app is run by hand from infra/.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "cdk.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("infra: no cdk.json at or above the working directory; set -c assetRoot=<repo root>")
		}
		dir = parent
	}
}
