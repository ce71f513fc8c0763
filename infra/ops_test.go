package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// alarmsOf returns the alarms of a template by logical id prefix (the
// construct id the code gave them).
func alarmOf(t *testing.T, v *variant, id string) named {
	t.Helper()
	for _, a := range v.json.byType("AWS::CloudWatch::Alarm") {
		if strings.HasPrefix(a.id, id) {
			return a
		}
	}
	t.Fatalf("%s: no alarm %s", v.name, id)
	return named{}
}

// TestAlarmTopic: without alarmTopicArn the stack creates a topic (TLS
// only), with an e-mail subscription when alarmEmail is given; with
// alarmTopicArn it creates none.
func TestAlarmTopic(t *testing.T) {
	for _, c := range []struct {
		v      *variant
		topics float64
		email  string
	}{{defaults, 1, ""}, {demo, 0, ""}, {existing, 1, "ops@example.org"}} {
		v := c.v.get(t)
		check(t, v.name+" topics", func() {
			v.tmpl.ResourceCountIs(jsii.String("AWS::SNS::Topic"), jsii.Number(c.topics))
		})
		subs := v.json.byType("AWS::SNS::Subscription")
		if c.email == "" && len(subs) != 0 || c.email != "" && (len(subs) != 1 || subs[0].Properties["Protocol"] != "email" || subs[0].Properties["Endpoint"] != c.email) {
			t.Errorf("%s: subscriptions %s", v.name, asJSON(subs))
		}
		if c.topics == 1 {
			if p := asJSON(v.json.byType("AWS::SNS::TopicPolicy")); !strings.Contains(p, `"aws:SecureTransport":"false"`) {
				t.Errorf("%s: topic does not enforce TLS: %s", v.name, p)
			}
		}
	}
}

// TestServiceAlarms: each alarm on the stream function's EMF metrics, with
// its metric, dimensions, statistic and threshold.
func TestServiceAlarms(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		for _, c := range []struct {
			id, metric string
			dims       []any
			threshold  float64
		}{
			{"LimitRefusalsAlarm", "Refusals", []any{map[string]any{"Name": "Status", "Value": "429"}}, AlarmLimitRefusals},
			{"SoftRefusalsAlarm", "Refusals", []any{map[string]any{"Name": "Status", "Value": "unavailable"}}, AlarmSoftRefusals},
			{"ResumesRefusedAlarm", "ResumesRefused", nil, AlarmResumesRefused},
			{"DroppedAlarm", "Dropped", nil, AlarmDropped},
			{"MalformedAlarm", "Malformed", nil, AlarmMalformed},
		} {
			p := alarmOf(t, v, c.id).Properties
			if p["Namespace"] != MetricsNamespace || p["MetricName"] != c.metric || p["Statistic"] != "Sum" || p["Period"] != 300.0 ||
				p["Threshold"] != c.threshold || p["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || asJSON(p["Dimensions"]) != asJSON(c.dims) {
				t.Errorf("%s %s: %s", v.name, c.id, asJSON(p))
			}
		}
		ticket := v.json.function(t, "ticket").id
		check(t, v.name+" ticket throttles", func() {
			v.tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), &map[string]any{
				"MetricName": "Throttles", "Namespace": "AWS/Lambda", "Threshold": 1.0, "Statistic": "Sum", "Period": 300.0,
				"Dimensions": []any{map[string]any{"Name": "FunctionName", "Value": map[string]any{"Ref": ticket}}},
			})
		})
	}
}

// TestRedisAlarms: the Redis the stack creates is watched node by node
// (engine CPU, CPU credits of the t4g node, memory, connections, network
// allowance, replication lag of the replica); an existing Redis is not.
func TestRedisAlarms(t *testing.T) {
	for _, c := range []struct {
		v     *variant
		nodes int
	}{{defaults, 2}, {demo, 1}, {existing, 0}} {
		v := c.v.get(t)
		n := 0
		for _, a := range v.json.byType("AWS::CloudWatch::Alarm") {
			if strings.Contains(asJSON(a.Properties), "AWS/ElastiCache") {
				n++
			}
		}
		perNode := 5 // engine CPU, credits, memory, connections, network
		want := c.nodes * perNode
		if c.nodes > 1 {
			want += c.nodes - 1 // replication lag of each replica
		}
		if n != want {
			t.Errorf("%s: %d Redis alarms, want %d", v.name, n, want)
		}
		if c.nodes == 0 {
			continue
		}
		node1 := map[string]any{"Name": "CacheClusterId", "Value": map[string]any{"Fn::Join": []any{"", []any{map[string]any{"Ref": v.json.byType("AWS::ElastiCache::ReplicationGroup")[0].id}, "-001"}}}}
		for _, w := range []struct {
			id, metric, stat, op string
			threshold            float64
		}{
			{"RedisNode1EngineCpuAlarm", "EngineCPUUtilization", "Maximum", "GreaterThanOrEqualToThreshold", AlarmRedisEngineCPU},
			{"RedisNode1CpuCreditsAlarm", "CPUCreditBalance", "Minimum", "LessThanOrEqualToThreshold", AlarmRedisCPUCredits},
			{"RedisNode1MemoryAlarm", "DatabaseMemoryUsagePercentage", "Maximum", "GreaterThanOrEqualToThreshold", AlarmRedisMemory},
			{"RedisNode1ConnectionsAlarm", "CurrConnections", "Maximum", "GreaterThanOrEqualToThreshold", AlarmRedisConnections},
		} {
			p := alarmOf(t, v, w.id).Properties
			if p["MetricName"] != w.metric || p["Statistic"] != w.stat || p["ComparisonOperator"] != w.op || p["Threshold"] != w.threshold ||
				asJSON(p["Dimensions"]) != asJSON([]any{node1}) {
				t.Errorf("%s %s: %s", v.name, w.id, asJSON(p))
			}
		}
		net := asJSON(alarmOf(t, v, "RedisNode1NetworkAllowanceAlarm").Properties)
		for _, m := range []string{"NetworkBandwidthInAllowanceExceeded", "NetworkBandwidthOutAllowanceExceeded", "NetworkPacketsPerSecondAllowanceExceeded"} {
			if !strings.Contains(net, `"MetricName":"`+m+`"`) {
				t.Errorf("%s: network allowance alarm lacks %s: %s", v.name, m, net)
			}
		}
		if c.nodes > 1 {
			p := alarmOf(t, v, "RedisNode2ReplicationLagAlarm").Properties
			if p["MetricName"] != "ReplicationLag" || p["Threshold"] != float64(AlarmRedisReplicationLag) || !strings.Contains(asJSON(p["Dimensions"]), `"-002"`) {
				t.Errorf("%s: replication lag alarm %s", v.name, asJSON(p))
			}
		}
	}
}

// TestOriginAccessControl: the URLs of exactly the GET-only functions are
// AWS_IAM and their origins are signed by an origin access control for
// Lambda, which alone may invoke them; the ticket origin (POST) is not
// signed and keeps the origin secret.
func TestOriginAccessControl(t *testing.T) {
	for _, name := range []string{"stream", "status", "health"} {
		if !GetOnly(name) {
			t.Errorf("%s is not GET-only", name)
		}
	}
	if GetOnly("ticket") || GetOnly(SimulatorFunction) {
		t.Error("ticket or simulator taken for GET-only")
	}
	for _, v := range variants {
		v := v.get(t)
		oacs := v.json.byType("AWS::CloudFront::OriginAccessControl")
		if len(oacs) == 0 {
			t.Fatalf("%s: no origin access control", v.name)
		}
		for _, o := range oacs {
			cfg := o.Properties["OriginAccessControlConfig"]
			if dig(cfg, "OriginAccessControlOriginType") != "lambda" || dig(cfg, "SigningBehavior") != "always" || dig(cfg, "SigningProtocol") != "sigv4" {
				t.Errorf("%s: %s", v.name, asJSON(cfg))
			}
		}
		urlTarget := map[string]string{}
		for _, u := range v.json.byType("AWS::Lambda::Url") {
			urlTarget[u.id] = ref(u.Properties["TargetFunctionArn"])
		}
		signed := map[string]bool{}
		dc := v.json.byType("AWS::CloudFront::Distribution")[0].Properties["DistributionConfig"]
		for _, o := range asSlice(dig(dc, "Origins")) {
			fn := urlTarget[ref(dig(o, "DomainName", "Fn::Select", 1, "Fn::Split", 1))]
			_, hasOAC := dig(o, "OriginAccessControlId").(map[string]any)
			signed[fn] = hasOAC
		}
		for _, name := range Functions {
			id := v.json.function(t, name).id
			if signed[id] != GetOnly(name) {
				t.Errorf("%s %s: origin signed %v, want %v", v.name, name, signed[id], GetOnly(name))
			}
			// CloudFront, for this distribution only, may invoke exactly the
			// signed URLs (both actions a function URL with AWS_IAM needs).
			urlID := ""
			for u, f := range urlTarget {
				if f == id {
					urlID = u
				}
			}
			actions := map[string]bool{}
			for _, p := range v.json.byType("AWS::Lambda::Permission") {
				pp := p.Properties
				if pp["Principal"] == "cloudfront.amazonaws.com" && strings.Contains(asJSON(pp["FunctionName"]), `"`+urlID+`"`) &&
					strings.Contains(asJSON(pp["SourceArn"]), `":distribution/",{"Ref":"Distribution`) {
					actions[pp["Action"].(string)] = true
				}
			}
			if want := GetOnly(name); actions["lambda:InvokeFunctionUrl"] != want || actions["lambda:InvokeFunction"] != want {
				t.Errorf("%s %s: CloudFront may %v, want both invoke actions %v", v.name, name, actions, want)
			}
		}
	}
}

// TestDashboard: one dashboard with the service's figures, Redis (when the
// stack made it) and CloudFront's 5xx rate from us-east-1.
func TestDashboard(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		boards := v.json.byType("AWS::CloudWatch::Dashboard")
		if len(boards) != 1 {
			t.Fatalf("%s: %d dashboards", v.name, len(boards))
		}
		body := asJSON(boards[0].Properties["DashboardBody"])
		for _, want := range []string{"StreamsEnded", "Refusals", "ResumesRefused", "Deliveries", "Dropped", "Coalesced", "Malformed",
			"TimeToFirstByte", "StreamSeconds", "ReplayedAlerts", "ConcurrentExecutions", "5xxErrorRate", `\"region\":\"us-east-1\"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: dashboard lacks %s", v.name, want)
			}
		}
		made := len(v.json.byType("AWS::ElastiCache::ReplicationGroup")) > 0
		if hasRedis := strings.Contains(body, "EngineCPUUtilization"); hasRedis != made {
			t.Errorf("%s: Redis widgets %v", v.name, hasRedis)
		}
	}
}

// TestMetricNamesMatchTheService: the namespace and every metric name the
// alarms and the dashboard use are the ones internal/metrics writes.
func TestMetricNamesMatchTheService(t *testing.T) {
	raw, err := os.ReadFile("../internal/metrics/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	if !strings.Contains(src, `const Namespace = "`+MetricsNamespace+`"`) {
		t.Fatalf("internal/metrics writes another namespace than %s", MetricsNamespace)
	}
	for _, v := range variants {
		v := v.get(t)
		all := asJSON(v.json.Resources)
		for _, m := range regexp.MustCompile(`"Namespace":"MachineSSE"[^}]*?"MetricName":"(\w+)"|"MetricName":"(\w+)","Namespace":"MachineSSE"`).FindAllStringSubmatch(all, -1) {
			name := m[1] + m[2]
			if !regexp.MustCompile(`= "` + name + `"`).MatchString(src) {
				t.Errorf("%s: metric %s is not one internal/metrics writes", v.name, name)
			}
		}
	}
}

// TestNagSuppressionsAreTheOnesWritten: every suppression in every
// template carries exactly the reason the code wrote for its construct
// (and so the corrected CFR2 and CFR3 reasons are the ones deployed).
func TestNagSuppressionsAreTheOnesWritten(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		for id, r := range v.json.Resources {
			path, _ := r.Metadata["aws:cdk:path"].(string)
			for _, s := range asSlice(dig(r.Metadata, "cdk_nag", "rules_to_suppress")) {
				rule, reason := dig(s, "id").(string), dig(s, "reason").(string)
				found := false
				for _, w := range written {
					if w.id == rule && w.reason == reason && (path == w.path || strings.HasPrefix(path, w.path+"/")) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s %s (%s): %s suppressed with a reason the code did not write for it: %q", v.name, id, path, rule, reason)
				}
			}
		}
	}
	for _, rule := range []string{"AwsSolutions-CFR2", "AwsSolutions-CFR3"} {
		for _, w := range written {
			if w.id == rule && (strings.Contains(w.reason, "costs more") || strings.Contains(w.reason, "cannot leave that field out")) {
				t.Errorf("%s keeps its old, inaccurate reason: %s", rule, w.reason)
			}
		}
	}
}

// stackJSON is a stack's template as plain JSON.
func stackJSON(t *testing.T, st awscdk.Stack) template {
	t.Helper()
	raw, err := json.Marshal(assertions.Template_FromStack(st, nil).ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var tm template
	if err := json.Unmarshal(raw, &tm); err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestRegionalStacks: waf=true adds the us-east-1 web ACL stack (per-IP
// rate rule, AWS managed common rule set); distributionId adds the
// us-east-1 edge stack (standard logging v2 without the query string or
// cookies, the CloudFront 5xx alarm to a topic of its own). Both are clean
// under cdk-nag; without the keys neither exists.
func TestRegionalStacks(t *testing.T) {
	for _, v := range []*variant{defaults, demo, existing} {
		v := v.get(t)
		n := 0
		for _, c := range *v.app.Node().Children() {
			if *awscdk.Stack_IsStack(c) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d stacks, want the main stack only", v.name, n)
		}
	}
	v := edge.get(t)
	stacks := map[string]awscdk.Stack{}
	for _, id := range []string{WafStackID, EdgeStackID} {
		st, ok := v.app.Node().TryFindChild(jsii.String(id)).(awscdk.Stack)
		if !ok {
			t.Fatalf("no %s stack", id)
		}
		if *st.Region() != "us-east-1" {
			t.Errorf("%s in %s, want us-east-1", id, *st.Region())
		}
		stacks[id] = st
		annotations := assertions.Annotations_FromStack(st)
		for _, m := range *annotations.FindError(jsii.String("*"), assertions.Match_AnyValue()) {
			t.Errorf("%s: error at %s: %v", id, *m.Id, m.Entry.Data)
		}
		for _, m := range *annotations.FindWarning(jsii.String("*"), assertions.Match_AnyValue()) {
			t.Errorf("%s: warning at %s: %v", id, *m.Id, m.Entry.Data)
		}
	}

	waf := stackJSON(t, stacks[WafStackID])
	acls := waf.byType("AWS::WAFv2::WebACL")
	if len(acls) != 1 || acls[0].Properties["Scope"] != "CLOUDFRONT" {
		t.Fatalf("web ACL %s", asJSON(acls))
	}
	rules := asSlice(acls[0].Properties["Rules"])
	rate := dig(rules[0], "Statement", "RateBasedStatement")
	if len(rules) != 2 || dig(rate, "AggregateKeyType") != "IP" || dig(rate, "Limit") != 500.0 || dig(rate, "EvaluationWindowSec") != 300.0 ||
		dig(rules[0], "Action", "Block") == nil {
		t.Errorf("rate rule %s", asJSON(rules))
	}
	if m := dig(rules[1], "Statement", "ManagedRuleGroupStatement"); dig(m, "VendorName") != "AWS" || dig(m, "Name") != "AWSManagedRulesCommonRuleSet" {
		t.Errorf("managed rule %s", asJSON(rules[1]))
	}
	if _, ok := waf.Outputs["WebAclArn"]; !ok {
		t.Error("no WebAclArn output")
	}

	e := stackJSON(t, stacks[EdgeStackID])
	src := e.byType("AWS::Logs::DeliverySource")
	if len(src) != 1 || src[0].Properties["LogType"] != "ACCESS_LOGS" || !strings.Contains(asJSON(src[0].Properties["ResourceArn"]), ":distribution/E2ABCDEF123456") {
		t.Fatalf("delivery source %s", asJSON(src))
	}
	del := e.byType("AWS::Logs::Delivery")
	if len(del) != 1 {
		t.Fatalf("%d deliveries", len(del))
	}
	fields := stringsOf(del[0].Properties["RecordFields"])
	for _, f := range fields {
		if f == "cs-uri-query" || f == "cs(Cookie)" {
			t.Errorf("access logs record %s", f)
		}
	}
	if !strings.Contains(strings.Join(fields, " "), "cs-uri-stem sc-status") {
		t.Errorf("access log fields %v", fields)
	}
	dst := e.byType("AWS::Logs::DeliveryDestination")
	if len(dst) != 1 || !strings.Contains(asJSON(dst[0].Properties["DestinationResourceArn"]), e.byType("AWS::Logs::LogGroup")[0].id) {
		t.Errorf("delivery destination %s", asJSON(dst))
	}
	al := e.byType("AWS::CloudWatch::Alarm")
	if len(al) != 1 {
		t.Fatalf("%d edge alarms", len(al))
	}
	p := al[0].Properties
	if p["Namespace"] != "AWS/CloudFront" || p["MetricName"] != "5xxErrorRate" || p["Threshold"] != float64(AlarmCloudFront5xxRate) ||
		!strings.Contains(asJSON(p["Dimensions"]), `"Value":"E2ABCDEF123456"`) || !strings.Contains(asJSON(p["AlarmActions"]), e.byType("AWS::SNS::Topic")[0].id) {
		t.Errorf("5xx alarm %s", asJSON(p))
	}
	if subs := e.byType("AWS::SNS::Subscription"); len(subs) != 1 || subs[0].Properties["Endpoint"] != "ops@example.org" {
		t.Errorf("edge subscriptions %s", asJSON(subs))
	}
	for _, tm := range []template{waf, e} {
		for id, r := range tm.Resources {
			for _, s := range asSlice(dig(r.Metadata, "cdk_nag", "rules_to_suppress")) {
				if dig(s, "reason") != topicKeyReason {
					t.Errorf("%s: suppression %s", id, asJSON(s))
				}
			}
		}
	}
}
