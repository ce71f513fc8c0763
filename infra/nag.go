package main

import (
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// AddChecks applies the cdk-nag AwsSolutions pack to scope. Its findings
// are synthesis annotations: errors fail `cdk synth` and the tests.
func AddChecks(scope awscdk.App) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// written are the suppressions as the code wrote them (construct path,
// rule, reason), so a test can check that each one in a template is the
// one written for its construct.
var (
	written   []writtenSuppression
	writtenMu sync.Mutex
)

type writtenSuppression struct{ path, id, reason string }

// suppress records a cdk-nag suppression on construct (and its children).
// Every suppression says why the finding does not apply here.
func suppress(construct any, id, reason string, appliesTo ...string) {
	path := *constructs.Node_Of(construct.(constructs.IConstruct)).Path()
	writtenMu.Lock()
	written = append(written, writtenSuppression{path: path, id: id, reason: reason})
	writtenMu.Unlock()
	s := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		list := make([]any, len(appliesTo))
		for i, a := range appliesTo {
			list[i] = a
		}
		s.AppliesTo = &list
	}
	cdknag.NagSuppressions_AddResourceSuppressions(construct, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}
