package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// TestSynthWritesTemplate: the app synthesizes (as `make synth` runs it) a
// cloud assembly with the stack's template and one code asset per function,
// each holding the function's bootstrap.
func TestSynthWritesTemplate(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			v.get(t)
			for _, f := range []string{"manifest.json", StackID + ".template.json", StackID + ".assets.json"} {
				if st, err := os.Stat(filepath.Join(v.outdir, f)); err != nil || st.Size() == 0 {
					t.Errorf("%s: missing or empty (%v)", f, err)
				}
			}
			if len(v.json.Resources) == 0 {
				t.Fatal("template has no resources")
			}
			names := Functions
			if v == demo {
				names = append(append([]string(nil), Functions...), SimulatorFunction)
			}
			if got := len(v.json.byType("AWS::Lambda::Function")); got != len(names) {
				t.Errorf("%d functions, want %d", got, len(names))
			}
			for _, name := range names {
				fn := v.json.function(t, name)
				asset, _ := fn.Metadata["aws:asset:path"].(string)
				body, err := os.ReadFile(filepath.Join(v.outdir, asset, "bootstrap"))
				if err != nil || !strings.Contains(string(body), "placeholder "+name) {
					t.Errorf("%s: asset %q does not hold its bootstrap: %v", name, asset, err)
				}
			}
		})
	}
}

// TestFunctionURLs: the stream function's URL streams (RESPONSE_STREAM); the
// others buffer. The GET-only ones are AWS_IAM (origin access control), the
// ticket URL NONE (guarded by the origin secret): see TestOriginAccessControl.
func TestFunctionURLs(t *testing.T) {
	v := defaults.get(t)
	check(t, "stream URL", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), &map[string]any{
			"InvokeMode":        "RESPONSE_STREAM",
			"AuthType":          "AWS_IAM",
			"TargetFunctionArn": map[string]any{"Fn::GetAtt": []any{v.json.function(t, "stream").id, "Arn"}},
		})
	})
	urls := v.json.byType("AWS::Lambda::Url")
	if len(urls) != len(Functions) {
		t.Fatalf("%d function URLs, want %d", len(urls), len(Functions))
	}
	for _, u := range urls {
		fn := ref(u.Properties["TargetFunctionArn"])
		want := "BUFFERED"
		if fn == v.json.function(t, "stream").id {
			want = "RESPONSE_STREAM"
		}
		if got := u.Properties["InvokeMode"]; got != want {
			t.Errorf("%s: InvokeMode %v, want %s", u.path(), got, want)
		}
		wantAuth := "AWS_IAM"
		if fn == v.json.function(t, "ticket").id {
			wantAuth = "NONE"
		}
		if got := u.Properties["AuthType"]; got != wantAuth {
			t.Errorf("%s: AuthType %v, want %s", u.path(), got, wantAuth)
		}
	}
}

// TestFunctionSettings: runtime, architecture, handler, memory, timeouts,
// VPC placement and log retention of every function.
func TestFunctionSettings(t *testing.T) {
	type want struct {
		memory, timeout float64
	}
	cases := []struct {
		v         *variant
		retention float64
		fns       map[string]want
	}{
		{defaults, DefaultLogRetentionDays, map[string]want{
			"stream": {128, 900}, "ticket": {128, 10}, "status": {128, 10}, "health": {128, 10},
		}},
		{demo, 14, map[string]want{
			"stream": {128, 900}, "ticket": {128, 10}, "status": {128, 10}, "health": {128, 10}, "simulator": {128, SimulatorTimeout.Seconds()},
		}},
		{existing, DefaultLogRetentionDays, map[string]want{
			"stream": {256, 900}, "ticket": {128, 10}, "status": {128, 10}, "health": {128, 10},
		}},
	}
	for _, c := range cases {
		v := c.v.get(t)
		for name, w := range c.fns {
			fn := v.json.function(t, name)
			p := fn.Properties
			if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" || asJSON(p["Architectures"]) != `["arm64"]` {
				t.Errorf("%s/%s: runtime %v handler %v architectures %v", v.name, name, p["Runtime"], p["Handler"], p["Architectures"])
			}
			if p["MemorySize"] != w.memory || p["Timeout"] != w.timeout {
				t.Errorf("%s/%s: memory %v timeout %v, want %v %v", v.name, name, p["MemorySize"], p["Timeout"], w.memory, w.timeout)
			}
			if n := len(dig(p, "VpcConfig", "SubnetIds").([]any)); n != 2 {
				t.Errorf("%s/%s: %d subnets, want 2", v.name, name, n)
			}
			logs := ref(dig(p, "LoggingConfig", "LogGroup"))
			if got := v.json.Resources[logs].Properties["RetentionInDays"]; got != c.retention {
				t.Errorf("%s/%s: log retention %v, want %v", v.name, name, got, c.retention)
			}
		}
	}
}

// TestEnvironment: the exact variables each function gets (a contract with
// the functions' config), including which secrets each one may read.
func TestEnvironment(t *testing.T) {
	common := []string{EnvRedisURL, EnvRedisAuthSecretArn, EnvLogLevel}
	public := append(append([]string(nil), common...), EnvOriginVerifySecretArn, EnvTrustedClientIPHeader)
	with := func(base []string, extra ...string) []string {
		return append(append([]string(nil), base...), extra...)
	}
	cases := []struct {
		v    *variant
		want map[string][]string
	}{
		{defaults, map[string][]string{
			"stream": with(public, EnvStreamTicketSecretArn, EnvHeartbeatInterval),
			"ticket": with(public, EnvStreamTicketSecretArn, EnvAccessTokenSecretArn, EnvAccessTokenUserClaim),
			"status": with(public, EnvStreamTicketSecretArn),
			"health": public,
		}},
		{demo, map[string][]string{
			"stream":    with(public, EnvCORSAllowedOrigins, EnvStreamTicketSecretArn, EnvHeartbeatInterval),
			"ticket":    with(public, EnvCORSAllowedOrigins, EnvStreamTicketSecretArn, EnvAccessTokenSecretArn, EnvAccessTokenUserClaim),
			"status":    with(public, EnvCORSAllowedOrigins, EnvStreamTicketSecretArn),
			"health":    with(public, EnvCORSAllowedOrigins),
			"simulator": common,
		}},
		{existing, map[string][]string{
			"stream": with(public, EnvCORSAllowedOrigins, EnvStreamTicketSecretArn, EnvHeartbeatInterval,
				EnvStreamFlushInterval, EnvConnectionLimitPolicy, EnvMaxStreamsPerIP),
			"ticket": with(public, EnvCORSAllowedOrigins, EnvStreamTicketSecretArn, EnvAccessTokenPublicKey, EnvAccessTokenUserClaim),
			"status": with(public, EnvCORSAllowedOrigins, EnvStreamTicketSecretArn, EnvConnectionLimitPolicy, EnvMaxStreamsPerIP),
			"health": with(public, EnvCORSAllowedOrigins),
		}},
	}
	for _, c := range cases {
		v := c.v.get(t)
		for name, want := range c.want {
			env, _ := dig(v.json.function(t, name).Properties, "Environment", "Variables").(map[string]any)
			var got []string
			for k := range env {
				got = append(got, k)
			}
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: variables\n got %v\nwant %v", v.name, name, got, want)
			}
		}
	}

	d := defaults.get(t).json
	stream := dig(d.function(t, "stream").Properties, "Environment", "Variables").(map[string]any)
	if stream[EnvTrustedClientIPHeader] != "CloudFront-Viewer-Address" || stream[EnvHeartbeatInterval] != "25s" || stream[EnvLogLevel] != "info" {
		t.Errorf("stream: %v", stream)
	}
	if url := asJSON(stream[EnvRedisURL]); !strings.Contains(url, `"rediss://"`) || !strings.Contains(url, "PrimaryEndPoint.Address") {
		t.Errorf("stream REDIS_URL = %s, want rediss://<primary endpoint>:<port>", url)
	}
	ticket := dig(d.function(t, "ticket").Properties, "Environment", "Variables").(map[string]any)
	if ticket[EnvAccessTokenUserClaim] != "sub" {
		t.Errorf("ticket claim = %v", ticket[EnvAccessTokenUserClaim])
	}

	e := existing.get(t).json
	stream = dig(e.function(t, "stream").Properties, "Environment", "Variables").(map[string]any)
	for k, want := range map[string]string{
		EnvRedisURL:              "rediss://sse-app@ingest-redis.abc123.ng.0001.euc1.cache.amazonaws.com:6380",
		EnvRedisAuthSecretArn:    existingRedisSecret,
		EnvCORSAllowedOrigins:    "https://dash.example.org",
		EnvConnectionLimitPolicy: "reject",
		EnvMaxStreamsPerIP:       "3",
		EnvHeartbeatInterval:     "20s",
		EnvStreamFlushInterval:   "20ms",
	} {
		if stream[k] != want {
			t.Errorf("existing stream %s = %v, want %q", k, stream[k], want)
		}
	}
	ticket = dig(e.function(t, "ticket").Properties, "Environment", "Variables").(map[string]any)
	if ticket[EnvAccessTokenPublicKey] != testPublicKey || ticket[EnvAccessTokenUserClaim] != "userId" {
		t.Errorf("existing ticket: public key %q claim %v", ticket[EnvAccessTokenPublicKey], ticket[EnvAccessTokenUserClaim])
	}
	if got := dig(demo.get(t).json.function(t, "stream").Properties, "Environment", "Variables", EnvCORSAllowedOrigins); got != "https://dashboard.example.com,http://localhost:5173" {
		t.Errorf("demo CORS_ALLOWED_ORIGINS = %v", got)
	}
}

// TestStreamFlushInterval: STREAM_FLUSH_INTERVAL is on the stream function
// only, and only when on: 5ms by default on managed instances, absent by
// default in the classic mode (its template unchanged) and when given as 0s,
// the given value otherwise.
func TestStreamFlushInterval(t *testing.T) {
	for _, c := range []struct {
		v    *variant
		want any // nil: no such variable
	}{
		{defaults, nil}, {demo, nil}, {edge, nil},
		{existing, "20ms"},       // classic, given
		{managed, nil},           // managed instances, given as 0s
		{managedExisting, "5ms"}, // managed instances, the default
	} {
		v := c.v.get(t)
		stream := v.json.function(t, "stream").id
		// Every function of the template, not only ours by name.
		for _, fn := range v.json.byType("AWS::Lambda::Function") {
			env, _ := dig(fn.Properties, "Environment", "Variables").(map[string]any)
			got, ok := env[EnvStreamFlushInterval]
			want := c.want
			if fn.id != stream {
				want = nil
			}
			if ok != (want != nil) || (ok && got != want) {
				t.Errorf("%s/%s: %s = %v, want %v", v.name, fn.path(), EnvStreamFlushInterval, got, want)
			}
		}
	}
}

// TestReservedConcurrency: the stream function has its own reserved
// concurrency (a prop); ticket, status and health stay in the unreserved
// pool so streams can never starve them.
func TestReservedConcurrency(t *testing.T) {
	for _, c := range []struct {
		v    *variant
		want float64
	}{{defaults, DefaultStreamReservedConcurrency}, {existing, 20}} {
		v := c.v.get(t)
		check(t, v.name+" stream reserved concurrency", func() {
			v.tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
				"Description":                  assertions.Match_StringLikeRegexp(jsii.String("^SSE streams")),
				"ReservedConcurrentExecutions": c.want,
			})
		})
		for _, name := range []string{"ticket", "status", "health"} {
			if got, ok := v.json.function(t, name).Properties["ReservedConcurrentExecutions"]; ok {
				t.Errorf("%s/%s: ReservedConcurrentExecutions %v, want none", v.name, name, got)
			}
		}
	}
	if got := demo.get(t).json.function(t, "simulator").Properties["ReservedConcurrentExecutions"]; got != 1.0 {
		t.Errorf("simulator reserved concurrency %v, want 1", got)
	}
}

// TestNetwork: a 2-AZ VPC with isolated subnets only: no NAT gateway, no
// internet gateway, no public address; a Secrets Manager interface endpoint.
func TestNetwork(t *testing.T) {
	v := defaults.get(t)
	for typ, n := range map[string]float64{
		"AWS::EC2::NatGateway": 0, "AWS::EC2::InternetGateway": 0, "AWS::EC2::EIP": 0,
		"AWS::EC2::VPC": 1, "AWS::EC2::Subnet": 2, "AWS::EC2::FlowLog": 1, "AWS::EC2::VPCEndpoint": 1,
	} {
		check(t, typ+" count", func() { v.tmpl.ResourceCountIs(jsii.String(typ), jsii.Number(n)) })
	}
	for _, r := range v.json.byType("AWS::EC2::Route") {
		t.Errorf("route %s: isolated subnets have no routes out: %s", r.id, asJSON(r.Properties))
	}
	check(t, "subnets are private", func() {
		v.tmpl.AllResourcesProperties(jsii.String("AWS::EC2::Subnet"), &map[string]any{"MapPublicIpOnLaunch": false})
	})
	azs := map[string]bool{}
	for _, s := range v.json.byType("AWS::EC2::Subnet") {
		azs[asJSON(s.Properties["AvailabilityZone"])] = true
	}
	if len(azs) != 2 {
		t.Errorf("subnets span %d AZs, want 2", len(azs))
	}
	check(t, "secrets manager endpoint", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::EC2::VPCEndpoint"), &map[string]any{
			"ServiceName":       map[string]any{"Fn::Sub": "com.amazonaws.${AWS::Region}.secretsmanager"},
			"VpcEndpointType":   "Interface",
			"PrivateDnsEnabled": true,
		})
	})
	check(t, "flow log of rejected traffic", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::EC2::FlowLog"), &map[string]any{"TrafficType": "REJECT"})
	})
}

// TestRedis: Valkey, cluster mode disabled, TLS required in transit,
// encrypted at rest, AUTH token from Secrets Manager; Multi-AZ by default.
func TestRedis(t *testing.T) {
	for _, c := range []struct {
		v       *variant
		nodes   float64
		multiAZ bool
	}{{defaults, 2, true}, {demo, 1, false}} {
		v := c.v.get(t)
		auth := ""
		for _, s := range v.json.byType("AWS::SecretsManager::Secret") {
			if strings.HasSuffix(s.path(), "/RedisAuthToken/Resource") {
				auth = s.id
			}
		}
		check(t, v.name+" replication group", func() {
			v.tmpl.HasResourceProperties(jsii.String("AWS::ElastiCache::ReplicationGroup"), &map[string]any{
				"Engine":                   "valkey",
				"TransitEncryptionEnabled": true,
				"TransitEncryptionMode":    "required",
				"AtRestEncryptionEnabled":  true,
				"AuthToken": map[string]any{"Fn::Join": []any{"", []any{
					"{{resolve:secretsmanager:", map[string]any{"Ref": auth}, ":SecretString:::}}",
				}}},
				"NumCacheClusters":         c.nodes,
				"MultiAZEnabled":           c.multiAZ,
				"AutomaticFailoverEnabled": c.multiAZ,
				"Port":                     float64(RedisPort),
				"ClusterMode":              assertions.Match_Absent(),
				"NumNodeGroups":            assertions.Match_Absent(),
			})
		})
	}
}

// TestSecurityGroups: nothing may connect in except the functions to Redis
// (6379) and to the Secrets Manager endpoint (443); the functions connect
// out to nothing else; no rule is open to an address range.
func TestSecurityGroups(t *testing.T) {
	v := defaults.get(t)
	sgs := map[string]string{} // construct name -> logical id
	for _, sg := range v.json.byType("AWS::EC2::SecurityGroup") {
		name := strings.TrimSuffix(strings.TrimPrefix(sg.path(), StackID+"/"), "/Resource")
		sgs[name] = sg.id
		if in, ok := sg.Properties["SecurityGroupIngress"]; ok {
			t.Errorf("%s: inline ingress %s", name, asJSON(in))
		}
		// Either the "disallow all" placeholder (no egress at all) or no
		// inline egress, with explicit egress rules below. Never allow-all.
		for _, e := range asSlice(sg.Properties["SecurityGroupEgress"]) {
			if dig(e, "CidrIp") != "255.255.255.255/32" {
				t.Errorf("%s: egress %s", name, asJSON(e))
			}
		}
	}
	fns, redis, endpoint := sgs["FunctionsSecurityGroup"], sgs["RedisSecurityGroup"], sgs["SecretsEndpointSecurityGroup"]
	if fns == "" || redis == "" || endpoint == "" || len(sgs) != 3 {
		t.Fatalf("security groups %v", sgs)
	}
	type rule struct {
		group, peer string
		port        float64
	}
	var ingress, egress []rule
	for _, r := range v.json.byType("AWS::EC2::SecurityGroupIngress") {
		if _, ok := r.Properties["CidrIp"]; ok {
			t.Errorf("ingress %s from an address range: %s", r.id, asJSON(r.Properties))
		}
		ingress = append(ingress, rule{ref(r.Properties["GroupId"]), ref(r.Properties["SourceSecurityGroupId"]), toPort(r.Properties)})
	}
	for _, r := range v.json.byType("AWS::EC2::SecurityGroupEgress") {
		egress = append(egress, rule{ref(r.Properties["GroupId"]), ref(r.Properties["DestinationSecurityGroupId"]), toPort(r.Properties)})
	}
	less := func(rs []rule) func(i, j int) bool {
		return func(i, j int) bool { return rs[i].group+rs[i].peer < rs[j].group+rs[j].peer }
	}
	wantIn := []rule{{redis, fns, 6379}, {endpoint, fns, 443}}
	wantOut := []rule{{fns, redis, 6379}, {fns, endpoint, 443}}
	for _, rs := range [][]rule{ingress, egress, wantIn, wantOut} {
		sort.Slice(rs, less(rs))
	}
	if !reflect.DeepEqual(ingress, wantIn) {
		t.Errorf("ingress rules %v, want %v", ingress, wantIn)
	}
	if !reflect.DeepEqual(egress, wantOut) {
		t.Errorf("egress rules %v, want %v", egress, wantOut)
	}
	for _, name := range Functions {
		got := asJSON(dig(v.json.function(t, name).Properties, "VpcConfig", "SecurityGroupIds"))
		if want := `[{"Fn::GetAtt":["` + fns + `","GroupId"]}]`; got != want {
			t.Errorf("%s security groups %s, want %s", name, got, want)
		}
	}
	check(t, "Redis in its group", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::ElastiCache::ReplicationGroup"), &map[string]any{
			"SecurityGroupIds": []any{map[string]any{"Fn::GetAtt": []any{redis, "GroupId"}}},
		})
	})
}

func toPort(p map[string]any) float64 {
	if p["FromPort"] != p["ToPort"] || p["IpProtocol"] != "tcp" {
		return -1
	}
	f, _ := p["FromPort"].(float64)
	return f
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestExistingVariant: with vpcId etc. the stack creates no VPC, no subnets,
// no Redis and no security group for the functions; it uses the given ids
// and endpoint, and reads the given AUTH secret (and no other) by ARN.
func TestExistingVariant(t *testing.T) {
	v := existing.get(t)
	for _, typ := range []string{
		"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::FlowLog", "AWS::EC2::SecurityGroupEgress",
		"AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::SubnetGroup", "AWS::ElastiCache::CacheCluster",
	} {
		check(t, typ+" count", func() { v.tmpl.ResourceCountIs(jsii.String(typ), jsii.Number(0)) })
	}
	// Only the endpoint's own group (secretsEndpoint=true), open to the
	// given group on 443.
	check(t, "endpoint group", func() { v.tmpl.ResourceCountIs(jsii.String("AWS::EC2::SecurityGroup"), jsii.Number(1)) })
	check(t, "endpoint ingress", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::EC2::SecurityGroupIngress"), &map[string]any{
			"SourceSecurityGroupId": "sg-0123456789abcdef0", "FromPort": 443.0, "ToPort": 443.0,
		})
	})
	check(t, "endpoint in the given VPC and subnets", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::EC2::VPCEndpoint"), &map[string]any{
			"VpcId":     "vpc-0abc1234def567890",
			"SubnetIds": []any{"subnet-0aaa1111bbb22223", "subnet-0ccc3333ddd44445"},
		})
	})
	check(t, "functions in the given subnets and group", func() {
		v.tmpl.AllResourcesProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
			"VpcConfig": map[string]any{
				"SubnetIds":        []any{"subnet-0aaa1111bbb22223", "subnet-0ccc3333ddd44445"},
				"SecurityGroupIds": []any{"sg-0123456789abcdef0"},
			},
		})
	})
	reads := 0
	for _, p := range v.json.byType("AWS::IAM::Policy") {
		if strings.Contains(asJSON(p.Properties), `"`+existingRedisSecret+`"`) {
			reads++
		}
	}
	if reads != len(Functions) {
		t.Errorf("%d roles read the existing AUTH secret, want %d", reads, len(Functions))
	}
	if _, ok := v.json.Outputs["AccessTokenSecretArn"]; ok {
		t.Error("AccessTokenSecretArn output with a public key")
	}
	check(t, "no access-token secret with a public key", func() {
		v.tmpl.ResourceCountIs(jsii.String("AWS::SecretsManager::Secret"), jsii.Number(2)) // ticket + origin
	})

}

// TestCloudFront: one distribution; the seed's paths in an order where the
// ticket path is not swallowed by /sse/stream*; caching disabled; viewer
// headers (Last-Event-ID, Authorization) and query strings forwarded, Host
// not; HTTPS only; origin read timeout well above the heartbeat; the origin
// secret on every origin; errors never cached.
func TestCloudFront(t *testing.T) {
	for _, v := range variants {
		v := v.get(t)
		dists := v.json.byType("AWS::CloudFront::Distribution")
		if len(dists) != 1 {
			t.Fatalf("%s: %d distributions", v.name, len(dists))
		}
		dc := dists[0].Properties["DistributionConfig"].(map[string]any)

		origins := map[string]string{} // origin id -> function logical id
		for _, o := range asSlice(dc["Origins"]) {
			id := dig(o, "Id").(string)
			origins[id] = ref(dig(o, "DomainName", "Fn::Select", 1, "Fn::Split", 1))
			cfg := dig(o, "CustomOriginConfig")
			if dig(cfg, "OriginProtocolPolicy") != "https-only" || asJSON(dig(cfg, "OriginSSLProtocols")) != `["TLSv1.2"]` {
				t.Errorf("%s origin %s: %s", v.name, id, asJSON(cfg))
			}
			read, _ := dig(cfg, "OriginReadTimeout").(float64)
			hb := v.context["heartbeatInterval"]
			heartbeat := DefaultHeartbeatInterval.Seconds()
			if hb == "20s" {
				heartbeat = 20
			}
			if read != OriginReadTimeout.Seconds() || read < 2*heartbeat {
				t.Errorf("%s origin %s: read timeout %v, heartbeat %vs", v.name, id, read, heartbeat)
			}
			if _, ok := dig(cfg, "OriginResponseCompletionTimeout").(float64); ok {
				t.Errorf("%s origin %s: a response completion timeout would cut streams", v.name, id)
			}
			headers := asJSON(dig(o, "OriginCustomHeaders"))
			if !strings.Contains(headers, `"HeaderName":"X-Origin-Verify"`) || !strings.Contains(headers, "{{resolve:secretsmanager:") {
				t.Errorf("%s origin %s: custom headers %s", v.name, id, headers)
			}
		}
		fnID := func(name string) string { return v.json.function(t, name).id }
		urlTarget := map[string]string{} // URL logical id -> function logical id
		for _, u := range v.json.byType("AWS::Lambda::Url") {
			urlTarget[u.id] = ref(u.Properties["TargetFunctionArn"])
		}

		var got []string
		for _, b := range asSlice(dc["CacheBehaviors"]) {
			path := dig(b, "PathPattern").(string)
			got = append(got, path)
			var route Route
			for _, r := range Routes() {
				if r.Path == path {
					route = r
				}
			}
			if target := urlTarget[origins[dig(b, "TargetOriginId").(string)]]; target != fnID(route.Function) {
				t.Errorf("%s %s: served by %s, want the %s function", v.name, path, target, route.Function)
			}
			methods := asJSON(dig(b, "AllowedMethods"))
			wantMethods := `["GET","HEAD","OPTIONS"]`
			if route.Function == "ticket" {
				wantMethods = `["GET","HEAD","OPTIONS","PUT","PATCH","POST","DELETE"]`
			}
			if methods != wantMethods {
				t.Errorf("%s %s: methods %s, want %s", v.name, path, methods, wantMethods)
			}
			checkBehavior(t, v.name+" "+path, b)
		}
		want := []string{"/sse/stream-ticket", "/sse/close", "/sse/stream*", "/sse/alerts*", "/sse/status", "/sse/client.*", "/health"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: behaviours %v, want %v (ticket before stream*)", v.name, got, want)
		}
		def := dc["DefaultCacheBehavior"]
		checkBehavior(t, v.name+" default", def)
		if dig(def, "FunctionAssociations", 0, "EventType") != "viewer-request" {
			t.Errorf("%s: default behaviour has no 404 function: %s", v.name, asJSON(def))
		}

		var cached []float64
		for _, e := range asSlice(dc["CustomErrorResponses"]) {
			if dig(e, "ErrorCachingMinTTL") != 0.0 || dig(e, "ResponsePagePath") != nil {
				t.Errorf("%s: error response %s", v.name, asJSON(e))
			}
			cached = append(cached, dig(e, "ErrorCode").(float64))
		}
		if !reflect.DeepEqual(cached, cloudFrontCachedErrors) {
			t.Errorf("%s: error caching off for %v, want %v", v.name, cached, cloudFrontCachedErrors)
		}
		if dc["HttpVersion"] != "http2and3" || dc["Enabled"] != true {
			t.Errorf("%s: http version %v enabled %v", v.name, dc["HttpVersion"], dc["Enabled"])
		}

		cert := dc["ViewerCertificate"]
		if v == existing {
			if dig(cert, "MinimumProtocolVersion") != "TLSv1.2_2021" || dig(cert, "SslSupportMethod") != "sni-only" ||
				asJSON(dc["Aliases"]) != `["sse.example.org"]` || !strings.Contains(asJSON(dc["WebACLId"]), "webacl") {
				t.Errorf("%s: viewer certificate %s aliases %v web ACL %v", v.name, asJSON(cert), dc["Aliases"], dc["WebACLId"])
			}
		} else if cert != nil {
			t.Errorf("%s: viewer certificate %s without a domain", v.name, asJSON(cert))
		}
	}
}

// checkBehavior: caching disabled, all viewer values but Host forwarded,
// HTTPS only, no compression (it would buffer the event stream).
func checkBehavior(t *testing.T, what string, b any) {
	t.Helper()
	const cachingDisabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	const allViewerExceptHost = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
	if dig(b, "CachePolicyId") != cachingDisabled {
		t.Errorf("%s: cache policy %v, want CachingDisabled", what, dig(b, "CachePolicyId"))
	}
	if dig(b, "OriginRequestPolicyId") != allViewerExceptHost {
		t.Errorf("%s: origin request policy %v, want AllViewerExceptHostHeader", what, dig(b, "OriginRequestPolicyId"))
	}
	if dig(b, "ViewerProtocolPolicy") != "https-only" {
		t.Errorf("%s: viewer protocol %v, want https-only", what, dig(b, "ViewerProtocolPolicy"))
	}
	if dig(b, "Compress") != false {
		t.Errorf("%s: compress %v, want false", what, dig(b, "Compress"))
	}
}

// TestCORS: function URL CORS for the configured dashboard origins only,
// with credentials; Last-Event-ID on the stream, Authorization and
// Content-Type on the ticket. No origins, no CORS.
func TestCORS(t *testing.T) {
	v := demo.get(t)
	origins := []any{"https://dashboard.example.com", "http://localhost:5173"}
	for name, c := range map[string]struct {
		method  string
		headers any
	}{
		"stream": {"GET", []any{"Last-Event-ID"}},
		"ticket": {"POST", []any{"Authorization", "Content-Type"}},
		"status": {"GET", assertions.Match_Absent()},
		"health": {"GET", assertions.Match_Absent()},
	} {
		check(t, name+" CORS", func() {
			v.tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), &map[string]any{
				"TargetFunctionArn": map[string]any{"Fn::GetAtt": []any{v.json.function(t, name).id, "Arn"}},
				"Cors": map[string]any{
					"AllowOrigins":     origins,
					"AllowMethods":     []any{c.method},
					"AllowCredentials": true,
					"AllowHeaders":     c.headers,
					"MaxAge":           3600.0,
				},
			})
		})
	}
	check(t, "no CORS without origins", func() {
		defaults.get(t).tmpl.AllResourcesProperties(jsii.String("AWS::Lambda::Url"), &map[string]any{"Cors": assertions.Match_Absent()})
	})
}

// TestLeastPrivilege: no managed policies at all (so no *FullAccess), no
// wildcard actions, "*" resources only for the VPC network-interface
// actions, secrets read by exact ARN, and each role reads only the secrets
// its function uses.
func TestLeastPrivilege(t *testing.T) {
	eni := map[string]bool{
		"ec2:CreateNetworkInterface": true, "ec2:DescribeNetworkInterfaces": true, "ec2:DescribeSubnets": true,
		"ec2:DeleteNetworkInterface": true, "ec2:AssignPrivateIpAddresses": true, "ec2:UnassignPrivateIpAddresses": true,
	}
	for _, v := range variants {
		v := v.get(t)
		for _, r := range v.json.byType("AWS::IAM::Role") {
			if m, ok := r.Properties["ManagedPolicyArns"]; ok {
				// Only the operator role Lambda assumes for managed instances
				// has one: AWS's policy for it (compute.go).
				if r.path() != StackID+"/Stream/CapacityProvider/OperatorRole/Resource" ||
					!strings.HasSuffix(asJSON(m), `:iam::aws:policy/`+OperatorPolicy+`"]]}]`) {
					t.Errorf("%s %s: managed policies %s", v.name, r.path(), asJSON(m))
				}
			}
		}
		check(t, v.name+" no managed policies", func() {
			v.tmpl.ResourceCountIs(jsii.String("AWS::IAM::ManagedPolicy"), jsii.Number(0))
		})
		for _, st := range statements(v.json) {
			actions := stringsOf(st.stmt["Action"])
			for _, a := range actions {
				if a == "*" || strings.HasSuffix(a, ":*") || strings.Contains(strings.ToLower(a), "fullaccess") {
					t.Errorf("%s %s: wildcard action %q", v.name, st.where, a)
				}
				if strings.HasPrefix(a, "secretsmanager:") && a != "secretsmanager:GetSecretValue" && a != "secretsmanager:DescribeSecret" {
					t.Errorf("%s %s: secrets action %q", v.name, st.where, a)
				}
			}
			if st.stmt["Effect"] != "Allow" || st.stmt["NotAction"] != nil || st.stmt["NotResource"] != nil {
				t.Errorf("%s %s: statement %s", v.name, st.where, asJSON(st.stmt))
			}
			for _, res := range asList(st.stmt["Resource"]) {
				if s, ok := res.(string); ok && strings.Contains(s, "*") {
					for _, a := range actions {
						if !eni[a] {
							t.Errorf("%s %s: %q on resource %q", v.name, st.where, a, s)
						}
					}
				}
			}
		}
	}

	// Which secret each function's role may read.
	d := defaults.get(t).json
	secretOf := map[string]string{}
	for _, s := range d.byType("AWS::SecretsManager::Secret") {
		secretOf[s.id] = strings.Split(strings.TrimPrefix(s.path(), StackID+"/"), "/")[0]
	}
	for name, want := range map[string][]string{
		"stream": {"OriginVerifySecret", "RedisAuthToken", "StreamTicketSecret"},
		"ticket": {"AccessTokenSecret", "OriginVerifySecret", "RedisAuthToken", "StreamTicketSecret"},
		"status": {"OriginVerifySecret", "RedisAuthToken", "StreamTicketSecret"},
		"health": {"OriginVerifySecret", "RedisAuthToken"},
	} {
		role := ref(d.function(t, name).Properties["Role"])
		var got []string
		for _, st := range statements(d) {
			if st.role != role || !strings.HasPrefix(stringsOf(st.stmt["Action"])[0], "secretsmanager:") {
				continue
			}
			for _, res := range asList(st.stmt["Resource"]) {
				got = append(got, secretOf[ref(res)])
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s reads secrets %v, want %v", name, got, want)
		}
	}
}

type statement struct {
	where string // role or policy path
	role  string // logical id of the role it belongs to
	stmt  map[string]any
}

// statements are all IAM policy statements: roles' inline policies and
// AWS::IAM::Policy resources.
func statements(tm template) []statement {
	var out []statement
	for _, r := range tm.byType("AWS::IAM::Role") {
		for _, p := range asSlice(r.Properties["Policies"]) {
			for _, s := range asSlice(dig(p, "PolicyDocument", "Statement")) {
				out = append(out, statement{r.path(), r.id, s.(map[string]any)})
			}
		}
	}
	for _, r := range tm.byType("AWS::IAM::Policy") {
		for _, s := range asSlice(dig(r.Properties, "PolicyDocument", "Statement")) {
			out = append(out, statement{r.path(), ref(dig(r.Properties, "Roles", 0)), s.(map[string]any)})
		}
	}
	return out
}

func asList(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	return []any{v}
}

func stringsOf(v any) []string {
	var out []string
	for _, e := range asList(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestAlarms: stream throttles, stream concurrency at 80 % of its reserved
// value, errors of every function; actions only with an alarm topic.
func TestAlarms(t *testing.T) {
	for _, c := range []struct {
		v         *variant
		near      float64
		functions int
	}{{defaults, 40, 4}, {demo, 40, 5}, {existing, 16, 4}} {
		v := c.v.get(t)
		stream := v.json.function(t, "stream").id
		dims := []any{map[string]any{"Name": "FunctionName", "Value": map[string]any{"Ref": stream}}}
		check(t, v.name+" throttles", func() {
			v.tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), &map[string]any{
				"MetricName": "Throttles", "Namespace": "AWS/Lambda", "Dimensions": dims,
				"Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Statistic": "Sum",
			})
		})
		check(t, v.name+" concurrency", func() {
			v.tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), &map[string]any{
				"MetricName": "ConcurrentExecutions", "Dimensions": dims, "Threshold": c.near, "Statistic": "Maximum",
			})
		})
		check(t, v.name+" errors", func() {
			v.tmpl.ResourcePropertiesCountIs(jsii.String("AWS::CloudWatch::Alarm"), &map[string]any{
				"MetricName": "Errors", "Namespace": "AWS/Lambda",
			}, jsii.Number(float64(c.functions)))
		})
		// Every alarm and its recovery reach a person: the given topic, or
		// the stack's own.
		want := `ops-alerts"`
		if v != demo {
			want = `{"Ref":"` + v.json.byType("AWS::SNS::Topic")[0].id + `"}`
		}
		for _, a := range v.json.byType("AWS::CloudWatch::Alarm") {
			for _, k := range []string{"AlarmActions", "OKActions"} {
				if actions := asJSON(a.Properties[k]); !strings.Contains(actions, want) {
					t.Errorf("%s %s: %s %s, want %s", v.name, a.id, k, actions, want)
				}
			}
		}
	}
}

// TestSimulator: only with simulator=true; run every minute, not retried.
func TestSimulator(t *testing.T) {
	v := demo.get(t)
	sim := v.json.function(t, SimulatorFunction).id
	check(t, "schedule", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), &map[string]any{
			"ScheduleExpression": "rate(1 minute)",
			"State":              "ENABLED",
			"Targets": []any{assertions.Match_ObjectLike(&map[string]any{
				"Arn":         map[string]any{"Fn::GetAtt": []any{sim, "Arn"}},
				"RetryPolicy": map[string]any{"MaximumRetryAttempts": 0.0, "MaximumEventAgeInSeconds": 60.0},
			})},
		})
	})
	// A run is over before the next one fires: with one reserved
	// execution an overlapping run would be throttled and lost.
	if timeout := v.json.function(t, SimulatorFunction).Properties["Timeout"].(float64); timeout >= 60 {
		t.Errorf("simulator timeout %vs reaches the next run of the 1-minute schedule", timeout)
	}
	check(t, "no async retries", func() {
		v.tmpl.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), &map[string]any{
			"FunctionName": map[string]any{"Ref": sim}, "MaximumRetryAttempts": 0.0,
		})
	})
	for _, o := range []*variant{defaults, existing} {
		check(t, o.name+" has no schedule", func() { o.get(t).tmpl.ResourceCountIs(jsii.String("AWS::Events::Rule"), jsii.Number(0)) })
	}
}

// TestOutputs: the public base URL and what a frontend and an ingest need.
func TestOutputs(t *testing.T) {
	d := defaults.get(t).json
	for _, k := range []string{"BaseUrl", "TicketUrl", "StreamUrl", "AlertsUrl", "StatusUrl", "HealthUrl",
		"DistributionId", "AccessTokenSecretArn", "RedisUrl", "RedisAuthSecretArn", "VpcId", "RedisSecurityGroupId",
		"StreamFunctionName", "TicketFunctionName", "StatusFunctionName", "HealthFunctionName"} {
		if _, ok := d.Outputs[k]; !ok {
			t.Errorf("defaults: no output %s", k)
		}
	}
	if got := asJSON(d.Outputs["TicketUrl"].Value); !strings.Contains(got, "DomainName") || !strings.Contains(got, `"/sse/stream-ticket"`) {
		t.Errorf("TicketUrl = %s", got)
	}
	e := existing.get(t).json
	for k, want := range map[string]string{
		"BaseUrl":   `"https://sse.example.org"`,
		"StreamUrl": `"https://sse.example.org/sse/stream"`,
		"AlertsUrl": `"https://sse.example.org/sse/alerts"`,
		"RedisUrl":  `"rediss://sse-app@ingest-redis.abc123.ng.0001.euc1.cache.amazonaws.com:6380"`,
	} {
		if got := asJSON(e.Outputs[k].Value); got != want {
			t.Errorf("existing %s = %s, want %s", k, got, want)
		}
	}
}
