package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// The parts of the edge that AWS keeps in us-east-1 (a CLOUDFRONT-scope
// web ACL, CloudFront's standard logging v2, alarms on CloudFront's
// metrics) are stacks of their own, pinned there; the main stack stays
// region-agnostic. They are linked by context, not by cross-region
// references: the main stack takes webAclArn (the WAF stack's output), the
// edge stack takes distributionId (the main stack's output).
const (
	WafStackID  = "MachineSseWaf"
	EdgeStackID = "MachineSseEdge"
	edgeRegion  = "us-east-1"

	// DefaultWafRateLimit is the per-IP request limit of the web ACL in 5
	// minutes: a dashboard makes a handful (tickets, two streams, their
	// reconnects every few minutes), a flood makes thousands.
	DefaultWafRateLimit = 300
	// AlarmCloudFront5xxRate is the CloudFront 5xx rate (%) that alarms.
	AlarmCloudFront5xxRate = 5
)

// accessLogFields are the standard logging v2 fields written: everything
// useful for an investigation, but never the query string (cs-uri-query
// carries the stream ticket) nor cookies.
var accessLogFields = []string{
	"date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem",
	"sc-status", "cs(Referer)", "cs(User-Agent)", "x-edge-result-type", "x-edge-request-id",
	"x-host-header", "cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol",
	"x-edge-response-result-type", "cs-protocol-version", "c-port", "time-to-first-byte",
	"x-edge-detailed-result-type", "sc-content-type",
}

// edgeEnv pins a stack to us-east-1 (any account: synth needs none).
func edgeEnv() *awscdk.Environment { return &awscdk.Environment{Region: jsii.String(edgeRegion)} }

// NewWafStack adds the web ACL for the distribution: a rate-based rule per
// client IP and the AWS managed common rule set. Its output WebAclArn is
// what webAclArn takes.
func NewWafStack(scope constructs.Construct, props Props) awscdk.Stack {
	st := awscdk.NewStack(scope, jsii.String(WafStackID), &awscdk.StackProps{
		Env:         edgeEnv(),
		Description: jsii.String("AWS WAF web ACL (CLOUDFRONT scope) for the machine dashboard SSE distribution"),
	})
	visibility := func(name string) *awswafv2.CfnWebACL_VisibilityConfigProperty {
		return &awswafv2.CfnWebACL_VisibilityConfigProperty{
			CloudWatchMetricsEnabled: jsii.Bool(true), SampledRequestsEnabled: jsii.Bool(true), MetricName: jsii.String(name),
		}
	}
	limit := props.Ops.WafRateLimit
	acl := awswafv2.NewCfnWebACL(st, jsii.String("WebAcl"), &awswafv2.CfnWebACLProps{
		Scope:            jsii.String("CLOUDFRONT"),
		Description:      jsii.String("Per-IP rate limit and the AWS managed common rule set"),
		DefaultAction:    &awswafv2.CfnWebACL_DefaultActionProperty{Allow: &awswafv2.CfnWebACL_AllowActionProperty{}},
		VisibilityConfig: visibility("MachineSse"),
		Rules: &[]any{
			&awswafv2.CfnWebACL_RuleProperty{
				Name: jsii.String("RatePerIp"), Priority: jsii.Number(0),
				Action: &awswafv2.CfnWebACL_RuleActionProperty{Block: &awswafv2.CfnWebACL_BlockActionProperty{}},
				Statement: &awswafv2.CfnWebACL_StatementProperty{RateBasedStatement: &awswafv2.CfnWebACL_RateBasedStatementProperty{
					AggregateKeyType: jsii.String("IP"), Limit: jsii.Number(float64(limit)), EvaluationWindowSec: jsii.Number(300),
				}},
				VisibilityConfig: visibility("RatePerIp"),
			},
			&awswafv2.CfnWebACL_RuleProperty{
				Name: jsii.String("AWSManagedRulesCommonRuleSet"), Priority: jsii.Number(1),
				OverrideAction: &awswafv2.CfnWebACL_OverrideActionProperty{None: map[string]any{}},
				Statement: &awswafv2.CfnWebACL_StatementProperty{ManagedRuleGroupStatement: &awswafv2.CfnWebACL_ManagedRuleGroupStatementProperty{
					VendorName: jsii.String("AWS"), Name: jsii.String("AWSManagedRulesCommonRuleSet"),
				}},
				VisibilityConfig: visibility("CommonRuleSet"),
			},
		},
	})
	awscdk.NewCfnOutput(st, jsii.String("WebAclArn"), &awscdk.CfnOutputProps{
		Value: acl.AttrArn(), Description: jsii.String("Pass as -c webAclArn=... to the MachineSse stack"),
	})
	return st
}

// NewEdgeStack adds what watches the distribution from us-east-1: standard
// logging v2 into a log group there, without the query string, and an
// alarm on CloudFront's 5xx rate with a topic of its own (an alarm can
// only notify a topic in its region).
func NewEdgeStack(scope constructs.Construct, props Props) awscdk.Stack {
	st := awscdk.NewStack(scope, jsii.String(EdgeStackID), &awscdk.StackProps{
		Env:         edgeEnv(),
		Description: jsii.String("CloudFront access logs (no query strings) and the 5xx alarm of the machine dashboard SSE distribution"),
	})
	id := props.Ops.DistributionID
	logs := awslogs.NewLogGroup(st, jsii.String("AccessLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention[props.LogRetentionDays],
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	source := awslogs.NewCfnDeliverySource(st, jsii.String("AccessLogsSource"), &awslogs.CfnDeliverySourceProps{
		Name:        jsii.String("machine-sse-" + id),
		LogType:     jsii.String("ACCESS_LOGS"),
		ResourceArn: awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/"+id), nil),
	})
	dest := awslogs.NewCfnDeliveryDestination(st, jsii.String("AccessLogsDestination"), &awslogs.CfnDeliveryDestinationProps{
		Name:                   jsii.String("machine-sse-" + id),
		DestinationResourceArn: logs.LogGroupArn(),
		OutputFormat:           jsii.String("json"),
	})
	delivery := awslogs.NewCfnDelivery(st, jsii.String("AccessLogsDelivery"), &awslogs.CfnDeliveryProps{
		DeliverySourceName:     source.Name(),
		DeliveryDestinationArn: dest.AttrArn(),
		RecordFields:           jsii.Strings(accessLogFields...),
	})
	// The source is named, not referenced: order it explicitly.
	delivery.Node().AddDependency(source)

	topic := awssns.NewTopic(st, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Machine SSE edge alarms"), EnforceSSL: jsii.Bool(true),
	})
	suppress(topic, "AwsSolutions-SNS2", topicKeyReason)
	if props.Ops.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.Ops.AlarmEmail), nil))
	}
	a := alarmer{st: st, action: awscloudwatchactions.NewSnsAction(topic)}
	a.alarm("CloudFront5xxAlarm", awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/CloudFront"), MetricName: jsii.String("5xxErrorRate"),
		DimensionsMap: &map[string]*string{"DistributionId": jsii.String(id), "Region": jsii.String("Global")},
		Period:        fiveMinute, Statistic: jsii.String("Average"),
	}), AlarmCloudFront5xxRate, "More than 5 % of the distribution's responses were 5xx: an origin is failing, throttled or timing out")
	return st
}
