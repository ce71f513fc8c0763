package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"
)

// MetricsNamespace is the CloudWatch namespace of the stream function's
// Embedded Metric Format lines (internal/metrics.Namespace; a test keeps
// the two equal).
const MetricsNamespace = "MachineSSE"

// Thresholds of the alarms, named so that the tests and the runbook
// (README, "Runbook") refer to the same numbers. Counts are per 5 minutes.
const (
	AlarmLimitRefusals       = 5     // 429s: users or IPs at their stream limit
	AlarmSoftRefusals        = 10    // soft refusals: Redis unreachable or the service draining
	AlarmResumesRefused      = 20    // reconnects whose cursor was refused
	AlarmDropped             = 100   // messages refused by full stream queues
	AlarmMalformed           = 10    // channel messages dropped as malformed
	AlarmRedisEngineCPU      = 75    // % of the Redis engine thread
	AlarmRedisCPUCredits     = 20    // credits left on a burstable (t-family) node
	AlarmRedisMemory         = 80    // % of maxmemory used
	AlarmRedisConnections    = 52000 // 80 % of ElastiCache's maxclients (65,000)
	AlarmRedisReplicationLag = 5     // seconds behind the primary
)

// alarmer creates alarms in a stack that notify one topic.
type alarmer struct {
	st     awscdk.Stack
	action awscloudwatch.IAlarmAction
}

// topicKeyReason is why the alarm topics have no KMS key (cdk-nag SNS2).
const topicKeyReason = "Alarm notifications carry alarm names and states only, no data of the service. CloudWatch " +
	"cannot publish to a topic encrypted with the AWS managed SNS key, and a customer managed key with a " +
	"CloudWatch key policy would cost more than the topic."

// alarmTopic is the topic every alarm notifies: the given one, or one
// created here (with the optional e-mail subscription), so that an alarm
// always reaches a person.
func (s *stack) alarmTopic() awssns.ITopic {
	if s.props.AlarmTopicArn != "" {
		return awssns.Topic_FromTopicArn(s.st, jsii.String("AlarmTopic"), jsii.String(s.props.AlarmTopicArn))
	}
	topic := awssns.NewTopic(s.st, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Machine SSE alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	suppress(topic, "AwsSolutions-SNS2", topicKeyReason+" Set alarmTopicArn to use an encrypted topic of your own.")
	if s.props.Ops.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(s.props.Ops.AlarmEmail), nil))
	}
	return topic
}

// alarm adds one alarm: breaching at or above threshold in one period;
// no data (no traffic) is not trouble.
func (a alarmer) alarm(id string, metric awscloudwatch.IMetric, threshold float64, description string) awscloudwatch.Alarm {
	return a.alarmWith(id, metric, threshold, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, description)
}

func (a alarmer) alarmWith(id string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, description string) awscloudwatch.Alarm {
	al := awscloudwatch.NewAlarm(a.st, jsii.String(id), &awscloudwatch.AlarmProps{
		Metric:             metric,
		Threshold:          jsii.Number(threshold),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: op,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		AlarmDescription:   jsii.String(description + " (runbook: README, " + id + ")"),
	})
	al.AddAlarmAction(a.action)
	al.AddOkAction(a.action)
	return al
}

var (
	minute     = awscdk.Duration_Minutes(jsii.Number(1))
	fiveMinute = awscdk.Duration_Minutes(jsii.Number(5))
)

// serviceMetric is one of the stream function's EMF metrics.
func serviceMetric(name, statistic string, dims map[string]string) awscloudwatch.Metric {
	var dm *map[string]*string
	if len(dims) > 0 {
		m := map[string]*string{}
		for k, v := range dims {
			m[k] = jsii.String(v)
		}
		dm = &m
	}
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(MetricsNamespace), MetricName: jsii.String(name), DimensionsMap: dm,
		Period: fiveMinute, Statistic: jsii.String(statistic),
	})
}

// addAlarms adds the alarms: Lambda (stream throttles and concurrency,
// function errors, ticket throttles), the service's own metrics where they
// signal trouble, and Redis when the stack created it. Every alarm and its
// recovery go to the alarm topic.
func (s *stack) addAlarms() {
	a := alarmer{st: s.st, action: awscloudwatchactions.NewSnsAction(s.alarmTopic())}
	stream := s.functions["stream"].fn

	// A throttled stream is a 429, which ends a browser's EventSource for
	// good: every one matters.
	a.alarm("StreamThrottlesAlarm", stream.MetricThrottles(&awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Sum"),
	}), 1, "SSE stream requests were throttled (429): reserved concurrency is exhausted; browsers stop retrying")

	limit := float64(s.props.StreamReservedConcurrency)
	near := math.Max(1, math.Ceil(limit*ConcurrencyAlarmRatio))
	a.alarm("StreamConcurrencyAlarm", stream.Metric(jsii.String("ConcurrentExecutions"), &awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Maximum"),
	}), near, "Open SSE streams are near the stream function's reserved concurrency; raise streamReservedConcurrency before new streams get 429")

	a.alarm("TicketThrottlesAlarm", s.functions["ticket"].fn.MetricThrottles(&awscloudwatch.MetricOptions{
		Period: fiveMinute, Statistic: jsii.String("Sum"),
	}), 1, "Ticket requests were throttled: the account's unreserved concurrency is used up; dashboards cannot open new streams")

	for _, name := range s.props.functionNames() {
		id := strings.ToUpper(name[:1]) + name[1:]
		a.alarm(id+"ErrorsAlarm", s.functions[name].fn.MetricErrors(&awscloudwatch.MetricOptions{
			Period: fiveMinute, Statistic: jsii.String("Sum"),
		}), 1, "The SSE "+name+" function failed (an unhandled error, a crash or a timeout)")
	}

	a.alarm("LimitRefusalsAlarm", serviceMetric("Refusals", "Sum", map[string]string{"Status": "429"}), AlarmLimitRefusals,
		"Stream requests were refused with 429 (per-IP cap, or per-user limit under the reject policy); each one ends a native EventSource for good")
	a.alarm("SoftRefusalsAlarm", serviceMetric("Refusals", "Sum", map[string]string{"Status": "unavailable"}), AlarmSoftRefusals,
		"Streams were refused softly (200 + retry): Redis was unreachable or the service was draining")
	a.alarm("ResumesRefusedAlarm", serviceMetric("ResumesRefused", "Sum", nil), AlarmResumesRefused,
		"Reconnects with a Last-Event-ID were refused: browsers lose their stream and must fetch a new ticket")
	a.alarm("DroppedAlarm", serviceMetric("Dropped", "Sum", nil), AlarmDropped,
		"Stream queues overflowed: clients read too slowly or a burst exceeded the queue; their streams were ended")
	a.alarm("MalformedAlarm", serviceMetric("Malformed", "Sum", nil), AlarmMalformed,
		"Channel messages were dropped as malformed: the ingest publishes something the contract does not allow")

	s.addRedisAlarms(a)
}

// addRedisAlarms watches the Redis the stack created (the node ids are
// known only then; an existing Redis has its own alarms).
func (s *stack) addRedisAlarms(a alarmer) {
	if s.redisGroup == nil {
		return
	}
	nodes := 2
	if s.props.RedisSingleNode {
		nodes = 1
	}
	redis := func(node int, name, statistic string) awscloudwatch.Metric {
		// Member clusters of a replication group are <group id>-001, -002.
		id := awscdk.Fn_Join(jsii.String(""), &[]*string{s.redisGroup.Ref(), jsii.String(fmt.Sprintf("-%03d", node))})
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/ElastiCache"), MetricName: jsii.String(name),
			DimensionsMap: &map[string]*string{"CacheClusterId": id},
			Period:        fiveMinute, Statistic: jsii.String(statistic),
		})
	}
	for node := 1; node <= nodes; node++ {
		n := fmt.Sprintf("Node%d", node)
		a.alarm("Redis"+n+"EngineCpuAlarm", redis(node, "EngineCPUUtilization", "Maximum"), AlarmRedisEngineCPU,
			"The Redis engine thread is busy: pub/sub fan-out and admission slow down")
		if strings.HasPrefix(s.props.RedisNodeType, "cache.t") {
			a.alarmWith("Redis"+n+"CpuCreditsAlarm", redis(node, "CPUCreditBalance", "Minimum"), AlarmRedisCPUCredits,
				awscloudwatch.ComparisonOperator_LESS_THAN_OR_EQUAL_TO_THRESHOLD,
				"The burstable Redis node is running out of CPU credits: it will be throttled to its baseline")
		}
		a.alarm("Redis"+n+"MemoryAlarm", redis(node, "DatabaseMemoryUsagePercentage", "Maximum"), AlarmRedisMemory,
			"Redis memory is filling up: keys may be evicted (tickets, leases, history)")
		a.alarm("Redis"+n+"ConnectionsAlarm", redis(node, "CurrConnections", "Maximum"), AlarmRedisConnections,
			"Redis connections near maxclients: new streams will fail to subscribe")
		a.alarm("Redis"+n+"NetworkAllowanceAlarm", awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("bwin + bwout + pps"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"bwin":  redis(node, "NetworkBandwidthInAllowanceExceeded", "Sum"),
				"bwout": redis(node, "NetworkBandwidthOutAllowanceExceeded", "Sum"),
				"pps":   redis(node, "NetworkPacketsPerSecondAllowanceExceeded", "Sum"),
			},
			Label:  jsii.String("Packets shaped by the node's network allowance"),
			Period: fiveMinute,
		}), 1, "The Redis node exceeded its network allowance: packets were queued or dropped (pub/sub lags)")
		if node > 1 {
			a.alarm("Redis"+n+"ReplicationLagAlarm", redis(node, "ReplicationLag", "Maximum"), AlarmRedisReplicationLag,
				"The Redis replica lags behind the primary: a failover now would lose recent leases and tickets")
		}
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
