package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestPropsFromContext: context values from -c (strings) and from cdk.json
// (JSON values) become the same props; the existing-VPC keys switch the
// variant.
func TestPropsFromContext(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ctx  map[string]any
		want Props
	}{
		{"empty", map[string]any{}, Props{}},
		{"strings from -c", map[string]any{
			"assetRoot": " /repo ", "dashboardOrigins": "https://a.example, ,https://b.example", "simulator": "true",
			"streamMemoryMb": "256", "streamReservedConcurrency": "10", "heartbeatInterval": "20s",
			"logRetentionDays": "7", "redisSingleNode": "1", "redisClientSecurityGroupIds": "sg-1,sg-2",
		}, Props{
			AssetRoot: "/repo", DashboardOrigins: []string{"https://a.example", "https://b.example"}, Simulator: true,
			StreamMemoryMB: 256, StreamReservedConcurrency: 10, HeartbeatInterval: 20 * time.Second,
			LogRetentionDays: 7, RedisSingleNode: true, RedisClientSecurityGroupIDs: []string{"sg-1", "sg-2"},
		}},
		{"JSON from cdk.json", map[string]any{
			"dashboardOrigins": []any{"https://a.example"}, "simulator": true, "streamMemoryMb": 512.0,
		}, Props{DashboardOrigins: []string{"https://a.example"}, Simulator: true, StreamMemoryMB: 512}},
		{"existing", map[string]any{
			"vpcId": "vpc-1", "subnetIds": "subnet-1,subnet-2", "securityGroupId": "sg-1",
			"redisEndpoint": "r:6379", "redisPlaintext": "false", "secretsEndpoint": true,
		}, Props{Existing: &Existing{
			VpcID: "vpc-1", SubnetIDs: []string{"subnet-1", "subnet-2"}, SecurityGroupID: "sg-1",
			RedisEndpoint: "r:6379", SecretsEndpoint: true,
		}}},
		{"one existing key is enough to select the variant", map[string]any{"redisEndpoint": "r:6379"},
			Props{Existing: &Existing{RedisEndpoint: "r:6379"}}},
		{"flush interval", map[string]any{"streamFlushInterval": " 2ms "}, Props{StreamFlushInterval: 2 * time.Millisecond}},
		// An explicit 0 is not "unset": it turns the flushing off where the
		// default would be on.
		{"flush interval off", map[string]any{"streamFlushInterval": "0s"}, Props{StreamFlushInterval: StreamFlushOff}},
		{"flush interval bare 0", map[string]any{"streamFlushInterval": "0"}, Props{StreamFlushInterval: StreamFlushOff}},
		{"flush interval empty is unset", map[string]any{"streamFlushInterval": ""}, Props{}},
	}
	for _, c := range cases {
		got, err := PropsFromContext(func(k string) any { return c.ctx[k] })
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}

	_, err := PropsFromContext(func(k string) any {
		return map[string]any{"simulator": "yes", "streamMemoryMb": "lots", "heartbeatInterval": "25", "logRetentionDays": 1.5}[k]
	})
	for _, want := range []string{"simulator", "streamMemoryMb", "heartbeatInterval", "logRetentionDays"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad %s: error %v", want, err)
		}
	}

	// A negative interval is refused, not taken for StreamFlushOff (-1ns).
	for _, v := range []any{"-1ns", "-5ms", "soon", 5.0} {
		_, err := PropsFromContext(func(k string) any { return map[string]any{"streamFlushInterval": v}[k] })
		if err == nil || !strings.Contains(err.Error(), "streamFlushInterval") {
			t.Errorf("streamFlushInterval %v: error %v", v, err)
		}
	}
}

// TestStreamFlushIntervalDefault: on managed instances, where CPU is the
// bill, the flush interval defaults to 5ms; in the classic mode it stays
// off. An explicit value wins in both, StreamFlushOff included.
func TestStreamFlushIntervalDefault(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		p    Props
		want time.Duration
	}{
		{"classic", Props{}, 0},
		{"classic explicit", Props{StreamFlushInterval: 20 * time.Millisecond}, 20 * time.Millisecond},
		{"classic off", Props{StreamFlushInterval: StreamFlushOff}, StreamFlushOff},
		{"managed", Props{StreamCompute: ComputeManagedInstances}, DefaultManagedStreamFlushInterval},
		{"managed explicit", Props{StreamCompute: ComputeManagedInstances, StreamFlushInterval: time.Second}, time.Second},
		{"managed off", Props{StreamCompute: ComputeManagedInstances, StreamFlushInterval: StreamFlushOff}, StreamFlushOff},
	} {
		got := c.p.withDefaults()
		if got.StreamFlushInterval != c.want {
			t.Errorf("%s: %v, want %v", c.name, got.StreamFlushInterval, c.want)
		}
		// Defaults are a fixed point: applying them twice changes nothing.
		if again := got.withDefaults().StreamFlushInterval; again != c.want {
			t.Errorf("%s: %v after withDefaults twice, want %v", c.name, again, c.want)
		}
		got.AssetRoot = assetRoot
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if DefaultManagedStreamFlushInterval.String() != "5ms" {
		t.Errorf("DefaultManagedStreamFlushInterval = %v, the README says 5ms", DefaultManagedStreamFlushInterval)
	}
}

// TestValidate: each bad value is reported, all at once, by name.
func TestValidate(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, fn := range append(append([]string(nil), Functions...), SimulatorFunction) {
		p := filepath.Join(root, "bin", fn, "bootstrap")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	valid := Props{AssetRoot: root}
	if err := valid.withDefaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Props)
		want []string
	}{
		{"no asset root", func(p *Props) { p.AssetRoot = "" }, []string{"assetRoot: required"}},
		{"missing bootstrap", func(p *Props) { p.AssetRoot = t.TempDir() }, []string{"bin/stream/bootstrap is missing", "bin/health/bootstrap is missing"}},
		{"origins", func(p *Props) {
			p.DashboardOrigins = []string{"*", "http://dash.example.com", "https://x.example/path"}
		},
			[]string{`"*": a wildcard`, "must be https", `"https://x.example/path"`}},
		{"numbers", func(p *Props) {
			p.StreamMemoryMB, p.StreamReservedConcurrency, p.LogRetentionDays, p.MaxStreamsPerIP = 64, -1, 10, -2
		}, []string{"streamMemoryMb", "streamReservedConcurrency", "logRetentionDays", "maxStreamsPerIp"}},
		{"heartbeat too slow for CloudFront", func(p *Props) { p.HeartbeatInterval = 45 * time.Second }, []string{"heartbeatInterval"}},
		{"flush interval above 1s", func(p *Props) { p.StreamFlushInterval = 1500 * time.Millisecond }, []string{"streamFlushInterval: 1.5s must be between 0s (off) and 1s"}},
		{"negative flush interval", func(p *Props) { p.StreamFlushInterval = -5 * time.Millisecond }, []string{"streamFlushInterval: -5ms"}},
		{"enums", func(p *Props) { p.LogLevel, p.ConnectionLimitPolicy = "trace", "oldest" }, []string{"logLevel", "connectionLimitPolicy"}},
		{"access token twice", func(p *Props) {
			p.AccessTokenSecretArn, p.AccessTokenPublicKey = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", "key"
		}, []string{"set at most one", "not a complete Secrets Manager ARN", "not a PEM public key"}},
		{"domain without certificate", func(p *Props) { p.DomainName = "sse.example.com" }, []string{"set both or neither"}},
		{"certificate outside us-east-1", func(p *Props) {
			p.DomainName, p.CertificateArn = "sse.example.com", "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
		}, []string{"us-east-1"}},
		{"arns", func(p *Props) { p.AlarmTopicArn, p.WebACLArn = "topic", "acl" }, []string{"alarmTopicArn", "webAclArn"}},
		{"alarm e-mail", func(p *Props) { p.Ops.AlarmEmail = "ops at example" }, []string{"alarmEmail: \"ops at example\""}},
		{"alarm e-mail with a given topic", func(p *Props) {
			p.Ops.AlarmEmail, p.AlarmTopicArn = "ops@example.com", "arn:aws:sns:eu-central-1:123456789012:ops"
		}, []string{"alarmEmail and alarmTopicArn"}},
		{"redis user", func(p *Props) {
			p.Existing = &Existing{VpcID: "vpc-1", SubnetIDs: []string{"subnet-1"}, SecurityGroupID: "sg-1", RedisEndpoint: "r:1", RedisUsername: "bad user"}
		}, []string{"redisUsername"}},
		{"existing incomplete", func(p *Props) { p.Existing = &Existing{RedisEndpoint: "no-port"} },
			[]string{"vpcId", "subnetIds: required", "securityGroupId", "redisEndpoint"}},
		{"new-Redis options with existing", func(p *Props) {
			p.RedisSingleNode = true
			p.Existing = &Existing{VpcID: "vpc-1", SubnetIDs: []string{"subnet-1"}, SecurityGroupID: "sg-1", RedisEndpoint: "r:1"}
		}, []string{"only for a new Redis"}},
	}
	for _, c := range cases {
		p := valid
		c.edit(&p)
		err := p.withDefaults().Validate()
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want it to mention %q", c.name, err, want)
			}
		}
	}
}

// TestReadmeDocumentsConfiguration: every context key and every variable
// the stack sets appears in infra/README.md.
func TestReadmeDocumentsConfiguration(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	names := append([]string(nil), ContextKeys...)
	names = append(names, EnvRedisURL, EnvRedisAuthSecretArn, EnvAccessTokenSecretArn, EnvAccessTokenPublicKey,
		EnvAccessTokenUserClaim, EnvStreamTicketSecretArn, EnvOriginVerifySecretArn, EnvTrustedClientIPHeader,
		EnvCORSAllowedOrigins, EnvHeartbeatInterval, EnvStreamFlushInterval, EnvLogLevel, EnvConnectionLimitPolicy, EnvMaxStreamsPerIP)
	for _, n := range names {
		if !strings.Contains(readme, "`"+n+"`") {
			t.Errorf("README.md does not mention `%s`", n)
		}
	}
}
