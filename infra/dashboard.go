package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"
)

// addDashboard adds one CloudWatch dashboard with the key figures: open
// streams and why streams end, refusals, resumes, deliveries, losses,
// latency to the first event, billed stream-seconds, Redis and CloudFront.
// It reads the service's EMF metrics (MetricsNamespace) and AWS's own.
func (s *stack) addDashboard(dist awscloudfront.Distribution) {
	search := func(dims, metric, stat string) awscloudwatch.IMetric {
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("SEARCH('{" + MetricsNamespace + "," + dims + `} MetricName="` + metric + `"', '` + stat + "', 300)"),
			Label:      jsii.String(""),
			Period:     fiveMinute,
		})
	}
	graph := func(title string, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Left: &metrics, Width: jsii.Number(8), Height: jsii.Number(6),
		})
	}
	label := func(m awscloudwatch.Metric, l string) awscloudwatch.IMetric {
		return m.With(&awscloudwatch.MetricOptions{Label: jsii.String(l)})
	}
	stream := s.functions["stream"].fn
	rows := [][]awscloudwatch.IWidget{
		{
			graph("Open streams (stream function concurrency)", stream.Metric(jsii.String("ConcurrentExecutions"),
				&awscloudwatch.MetricOptions{Period: minute, Statistic: jsii.String("Maximum")})),
			graph("Streams ended, by purpose and reason", search("Purpose,Reason", "StreamsEnded", "Sum")),
			graph("Refusals, by status", search("Status", "Refusals", "Sum")),
		},
		{
			graph("Resumes", label(serviceMetric("ResumesOk", "Sum", map[string]string{"Purpose": "alerts"}), "ok alerts"),
				label(serviceMetric("ResumesOk", "Sum", map[string]string{"Purpose": "data"}), "ok data"),
				label(serviceMetric("ResumesRefused", "Sum", nil), "refused"),
				label(serviceMetric("ReplayedAlerts", "Sum", nil), "alerts replayed")),
			graph("Deliveries, by event", search("Event", "Deliveries", "Sum")),
			graph("Dropped, coalesced, malformed", label(serviceMetric("Dropped", "Sum", nil), "dropped"),
				label(serviceMetric("Coalesced", "Sum", nil), "coalesced"),
				label(serviceMetric("Malformed", "Sum", nil), "malformed")),
		},
		{
			graph("Time to first event (ms)", label(serviceMetric("TimeToFirstByte", "p50", nil), "p50"),
				label(serviceMetric("TimeToFirstByte", "p99", nil), "p99")),
			graph("Billed stream-seconds", label(serviceMetric("StreamSeconds", "Sum", nil), "stream-seconds")),
			graph("CloudFront 5xx rate (%)", awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace: jsii.String("AWS/CloudFront"), MetricName: jsii.String("5xxErrorRate"),
				// CloudFront publishes its metrics in us-east-1 only.
				Region:        jsii.String("us-east-1"),
				DimensionsMap: &map[string]*string{"DistributionId": dist.DistributionId(), "Region": jsii.String("Global")},
				Period:        fiveMinute, Statistic: jsii.String("Average"),
			})),
		},
	}
	if s.redisGroup != nil {
		node := func(name, stat string) awscloudwatch.IMetric {
			return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression: jsii.String(`SEARCH('{AWS/ElastiCache,CacheClusterId,CacheNodeId} MetricName="` + name + `"', '` + stat + "', 300)"),
				Label:      jsii.String(""),
				Period:     fiveMinute,
			})
		}
		rows = append(rows, []awscloudwatch.IWidget{
			graph("Redis engine CPU (%)", node("EngineCPUUtilization", "Maximum")),
			graph("Redis memory (%)", node("DatabaseMemoryUsagePercentage", "Maximum")),
			graph("Redis connections", node("CurrConnections", "Maximum")),
		})
	}
	widgets := make([]*[]awscloudwatch.IWidget, len(rows))
	for i := range rows {
		widgets[i] = &rows[i]
	}
	awscloudwatch.NewDashboard(s.st, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{Widgets: &widgets})
}
