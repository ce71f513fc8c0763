package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
)

// TestNagAwsSolutions: cdk-nag's AwsSolutions pack reports no unsuppressed
// error and no unsuppressed warning on any variant.
func TestNagAwsSolutions(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		annotations := assertions.Annotations_FromStack(v.stack)
		pattern := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		for kind, found := range map[string]*[]*cxapi.SynthesisMessage{
			"error":   annotations.FindError(jsii.String("*"), pattern),
			"warning": annotations.FindWarning(jsii.String("*"), pattern),
		} {
			for _, m := range *found {
				t.Errorf("%s: %s at %s: %v", v.name, kind, *m.Id, m.Entry.Data)
			}
		}
	}
}

// TestNagSuppressionsHaveReasons: every suppression says why, in a sentence.
func TestNagSuppressionsHaveReasons(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		n := 0
		for id, r := range v.json.Resources {
			for _, s := range asSlice(dig(r.Metadata, "cdk_nag", "rules_to_suppress")) {
				n++
				reason, _ := dig(s, "reason").(string)
				if len(reason) < 60 || !strings.HasPrefix(dig(s, "id").(string), "AwsSolutions-") {
					t.Errorf("%s %s: suppression %s", v.name, id, asJSON(s))
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no suppressions found (metadata layout changed?)", v.name)
		}
	}
}

// TestNoOtherWarnings: the synthesis leaves no CDK warning at all (an
// accepted one is acknowledged in code, with its reason).
func TestNoOtherWarnings(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		for _, m := range *assertions.Annotations_FromStack(v.stack).FindWarning(jsii.String("*"), assertions.Match_AnyValue()) {
			t.Errorf("%s: warning at %s: %v", v.name, *m.Id, m.Entry.Data)
		}
	}
}
