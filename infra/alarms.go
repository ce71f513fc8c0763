package main

import (
	"math"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

// addAlarms adds the alarms of issue 5: stream throttles, function errors,
// stream concurrency near its reserved value. With AlarmTopicArn they notify
// that topic; without, they show in the CloudWatch console.
func (s *stack) addAlarms() {
	var action awscloudwatch.IAlarmAction
	if s.props.AlarmTopicArn != "" {
		topic := awssns.Topic_FromTopicArn(s.st, jsii.String("AlarmTopic"), jsii.String(s.props.AlarmTopicArn))
		action = awscloudwatchactions.NewSnsAction(topic)
	}
	alarm := func(id string, metric awscloudwatch.IMetric, threshold float64, description string) {
		a := awscloudwatch.NewAlarm(s.st, jsii.String(id), &awscloudwatch.AlarmProps{
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			// No data means no invocations: nothing is wrong.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
			AlarmDescription: jsii.String(description),
		})
		if action != nil {
			a.AddAlarmAction(action)
			a.AddOkAction(action)
		}
	}
	minute := awscdk.Duration_Minutes(jsii.Number(1))
	stream := s.functions["stream"].fn

	// A throttled stream is a 429, which ends a browser's EventSource for
	// good: every one matters.
	alarm("StreamThrottlesAlarm", stream.MetricThrottles(&awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Sum"),
	}), 1, "SSE stream requests were throttled (429): reserved concurrency is exhausted; browsers stop retrying")

	limit := float64(s.props.StreamReservedConcurrency)
	near := math.Max(1, math.Ceil(limit*ConcurrencyAlarmRatio))
	alarm("StreamConcurrencyAlarm", stream.Metric(jsii.String("ConcurrentExecutions"), &awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Maximum"),
	}), near, "Open SSE streams are near the stream function's reserved concurrency; raise streamReservedConcurrency before new streams get 429")

	for _, name := range s.props.functionNames() {
		id := strings.ToUpper(name[:1]) + name[1:]
		alarm(id+"ErrorsAlarm", s.functions[name].fn.MetricErrors(&awscloudwatch.MetricOptions{
			Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum"),
		}), 1, "The SSE "+name+" function failed (an unhandled error, a crash or a timeout)")
	}
}

// addOutputs exports what a deployer, the dashboard and the ingest need.
func (s *stack) addOutputs(dist awscloudfront.Distribution) {
	out := func(id, description string, value *string) {
		awscdk.NewCfnOutput(s.st, jsii.String(id), &awscdk.CfnOutputProps{
			Value: value, Description: jsii.String(description),
		})
	}
	base := s.baseURL(dist)
	path := func(p string) *string { return awscdk.Fn_Join(jsii.String(""), &[]*string{base, jsii.String(p)}) }

	out("BaseUrl", "Public base URL of the SSE service (the dashboard's API base)", base)
	out("TicketUrl", "POST here with the access token (Bearer) for a stream ticket", path("/sse/stream-ticket"))
	out("StreamUrl", "EventSource URL for device data: ?ticket=...&deviceId=...", path("/sse/stream"))
	out("AlertsUrl", "EventSource URL for alerts: ?ticket=...", path("/sse/alerts"))
	out("StatusUrl", "Connection status: ?ticket=...", path("/sse/status"))
	out("HealthUrl", "Health check", path("/health"))
	out("DistributionId", "CloudFront distribution id", dist.DistributionId())
	out("DistributionDomainName", "CloudFront domain name (the CNAME target for domainName)", dist.DistributionDomainName())
	for _, name := range s.props.functionNames() {
		id := strings.ToUpper(name[:1]) + name[1:]
		out(id+"FunctionName", "Lambda function "+name+" (logs, metrics, recycling after a secret change)", s.functions[name].fn.FunctionName())
	}
	if s.accessTokenSecret != nil {
		out("AccessTokenSecretArn", "Secret holding the existing app's HS256 access-token secret (put the value here)", s.accessTokenSecret.SecretArn())
	}
	out("RedisUrl", "REDIS_URL the functions use", s.redisURL)
	if s.redisAuthSecret != nil {
		out("RedisAuthSecretArn", "Secret holding the Redis AUTH token (the ingest uses it too)", s.redisAuthSecret.SecretArn())
	}
	if s.redisSG != nil {
		out("VpcId", "VPC of the service", s.vpcID)
		out("RedisSecurityGroupId", "Security group of Redis (see redisClientSecurityGroupIds to let an ingest in)", s.redisSG.SecurityGroupId())
	}
}
