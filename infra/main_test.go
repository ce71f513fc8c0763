package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// assetRoot is a temporary directory with placeholder bin/<fn>/bootstrap
// files, standing in for `make build` output.
var assetRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sse-infra-assets-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	assetRoot = dir
	for _, fn := range append(append([]string(nil), Functions...), SimulatorFunction) {
		path := filepath.Join(dir, "bin", fn, "bootstrap")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// Distinct contents, so each function gets its own asset.
		if err := os.WriteFile(path, []byte("#!/bin/sh\n# placeholder "+fn+"\n"), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	jsii.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// variant is one synthesized configuration of the stack, built once and
// shared by every test that looks at it.
type variant struct {
	name    string
	context map[string]any

	once   sync.Once
	err    error
	outdir string // the cloud assembly App.Synth wrote
	app    awscdk.App
	stack  awscdk.Stack
	tmpl   assertions.Template
	json   template
}

// The configurations under test. Each is built at most once per test run.
var (
	// defaults is `make synth` without any context: new VPC and Redis.
	defaults = &variant{name: "defaults", context: map[string]any{}}
	// demo is a demo deployment: simulator, CORS for a dashboard, a single
	// Redis node, alarms to a topic.
	demo = &variant{name: "demo", context: map[string]any{
		"dashboardOrigins": "https://dashboard.example.com, http://localhost:5173",
		"simulator":        "true",
		"redisSingleNode":  true,
		"alarmTopicArn":    "arn:aws:sns:eu-central-1:123456789012:ops-alerts",
		"logLevel":         "debug",
		"logRetentionDays": 14.0,
	}}
	// existing deploys into an existing VPC next to an existing Redis, with
	// every optional feature on.
	existing = &variant{name: "existing", context: map[string]any{
		"vpcId":                     "vpc-0abc1234def567890",
		"subnetIds":                 "subnet-0aaa1111bbb22223, subnet-0ccc3333ddd44445",
		"securityGroupId":           "sg-0123456789abcdef0",
		"redisEndpoint":             "ingest-redis.abc123.ng.0001.euc1.cache.amazonaws.com:6380",
		"redisAuthSecretArn":        existingRedisSecret,
		"redisUsername":             "sse-app",
		"secretsEndpoint":           "true",
		"dashboardOrigins":          []any{"https://dash.example.org"},
		"accessTokenPublicKey":      testPublicKey,
		"accessTokenUserClaim":      "userId",
		"domainName":                "sse.example.org",
		"certificateArn":            "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		"webAclArn":                 "arn:aws:wafv2:us-east-1:123456789012:global/webacl/sse/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"streamReservedConcurrency": "20",
		"streamMemoryMb":            "256",
		"connectionLimitPolicy":     "reject",
		"maxStreamsPerIp":           "3",
		"heartbeatInterval":         "20s",
		"streamFlushInterval":       "20ms", // an explicit value in the classic mode
		"alarmEmail":                "ops@example.org",
	}}
	// managed runs the stream function on Lambda Managed Instances, every
	// compute setting given (the flush interval explicitly off).
	managed = &variant{name: "managed", context: map[string]any{
		"streamCompute":        "managed-instances",
		"instanceTypes":        "m7g.large, c7g.xlarge",
		"maxVCpu":              "24",
		"streamMaxConcurrency": 400.0,
		"memoryPerVCpu":        "4",
		"streamMemoryMb":       "4096",
		"streamFlushInterval":  "0s",
	}}
	// managedExisting is managed instances in an existing VPC, with the
	// defaults of the compute settings.
	managedExisting = &variant{name: "managed-existing", context: map[string]any{
		"streamCompute":   "managed-instances",
		"vpcId":           "vpc-0abc1234def567890",
		"subnetIds":       "subnet-0aaa1111bbb22223, subnet-0ccc3333ddd44445",
		"securityGroupId": "sg-0123456789abcdef0",
		"redisEndpoint":   "ingest-redis.abc123.ng.0001.euc1.cache.amazonaws.com:6380",
		"secretsEndpoint": "true",
	}}
	// edge adds the us-east-1 stacks: the web ACL (waf) and, once the
	// distribution exists, its access logs and 5xx alarm (distributionId).
	edge = &variant{name: "edge", context: map[string]any{
		"waf":            "true",
		"wafRateLimit":   "500",
		"distributionId": "E2ABCDEF123456",
		"webAclArn":      "arn:aws:wafv2:us-east-1:123456789012:global/webacl/MachineSse/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"alarmEmail":     "ops@example.org",
	}}
	variants = []*variant{defaults, demo, existing, managed, managedExisting, edge}
)

const existingRedisSecret = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:ingest/redis-auth-AbC123"

const testPublicKey = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"

// get builds the variant (once) the way `cdk synth` runs main: cdk.json
// context, then the variant's context, then Build and App.Synth into an
// output directory, whose template file the tests then read.
func (v *variant) get(t *testing.T) *variant {
	t.Helper()
	v.once.Do(func() {
		ctx := cdkJSONContext(t)
		// What the CDK CLI adds to every synth (its defaults).
		ctx["aws:cdk:enable-path-metadata"] = true
		ctx["aws:cdk:enable-asset-metadata"] = true
		ctx["assetRoot"] = assetRoot
		for k, val := range v.context {
			ctx[k] = val
		}
		v.outdir = filepath.Join(assetRoot, "cdk.out."+v.name)
		app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(v.outdir)})
		if v.err = Build(app); v.err != nil {
			return
		}
		v.app = app
		v.stack = app.Node().FindChild(jsii.String(StackID)).(awscdk.Stack)
		asm := app.Synth(nil)
		raw, err := os.ReadFile(filepath.Join(*asm.Directory(), StackID+".template.json"))
		if err != nil {
			v.err = err
			return
		}
		if v.err = json.Unmarshal(raw, &v.json); v.err != nil {
			return
		}
		var m map[string]any
		if v.err = json.Unmarshal(raw, &m); v.err != nil {
			return
		}
		v.tmpl = assertions.Template_FromJSON(&m, nil)
	})
	if v.err != nil {
		t.Fatalf("%s: %v", v.name, v.err)
	}
	return v
}

// cdkJSONContext is the "context" of the repository's cdk.json, so the tests
// see what `make synth` sees.
func cdkJSONContext(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	var cfg struct {
		App     string         `json:"app"`
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	if cfg.Context == nil {
		cfg.Context = map[string]any{}
	}
	return cfg.Context
}

// check runs an assertions call, turning its panic (how jsii reports a
// failed match) into a test error.
func check(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// template is a synthesized CloudFormation template as plain JSON.
type template struct {
	Resources map[string]resource `json:"Resources"`
	Outputs   map[string]struct {
		Value any `json:"Value"`
	} `json:"Outputs"`
}

type resource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
	Metadata   map[string]any `json:"Metadata"`
}

// byType returns the resources of one type by logical id, in id order.
func (tm template) byType(typ string) []named {
	var out []named
	for id, r := range tm.Resources {
		if r.Type == typ {
			out = append(out, named{id, r})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

type named struct {
	id string
	resource
}

// path returns the construct path of a resource ("MachineSse/Stream/Function/Resource").
func (r resource) path() string {
	p, _ := r.Metadata["aws:cdk:path"].(string)
	return p
}

// function returns the AWS::Lambda::Function of one of our functions.
func (tm template) function(t *testing.T, name string) named {
	t.Helper()
	want := StackID + "/" + strings.ToUpper(name[:1]) + name[1:] + "/Function/Resource"
	managed := StackID + "/" + strings.ToUpper(name[:1]) + name[1:] + "/ManagedFunction/Resource"
	for _, r := range tm.byType("AWS::Lambda::Function") {
		if r.path() == want || r.path() == managed {
			return r
		}
	}
	t.Fatalf("no function %s", want)
	return named{}
}

// dig walks a JSON value along keys (map keys, or [index] for arrays).
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// ref is the logical id a {"Ref": id} or {"Fn::GetAtt": [id, ...]} points at.
func ref(v any) string {
	if s, ok := dig(v, "Ref").(string); ok {
		return s
	}
	if s, ok := dig(v, "Fn::GetAtt", 0).(string); ok {
		return s
	}
	return ""
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
