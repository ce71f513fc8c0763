package main

import (
	"strings"
	"testing"
)

// TestManagedInstances: with streamCompute=managed-instances the stream
// function runs on a capacity provider in the functions' subnets with the
// Redis client security group (arm64, the instance types and vCPU ceiling
// given), with its concurrency and memory per vCPU; CloudFront streams
// from the function URL of its published version's alias. Ticket, status
// and health stay classic functions in the VPC.
func TestManagedInstances(t *testing.T) {
	for _, c := range []struct {
		v           *variant
		types       []any
		vcpu, conc  float64
		gib, memory float64
		subnets     []any // nil: the new VPC's isolated subnets
		sg          string
	}{
		{managed, []any{"m7g.large", "c7g.xlarge"}, 24, 400, 4, 4096, nil, ""},
		{managedExisting, []any{"m7g.large", "c7g.large", "m6g.large"}, DefaultMaxVCpu, DefaultStreamMaxConcurrency,
			DefaultMemoryGiBPerVCpu, DefaultManagedStreamMemoryMB,
			[]any{"subnet-0aaa1111bbb22223", "subnet-0ccc3333ddd44445"}, "sg-0123456789abcdef0"},
	} {
		v := c.v.get(t)
		cps := v.json.byType("AWS::Lambda::CapacityProvider")
		if len(cps) != 1 {
			t.Fatalf("%s: %d capacity providers, want 1", v.name, len(cps))
		}
		cp := cps[0].Properties
		if got := asJSON(dig(cp, "InstanceRequirements", "Architectures")); got != `["arm64"]` {
			t.Errorf("%s: architectures %s, want arm64", v.name, got)
		}
		if got := dig(cp, "InstanceRequirements", "AllowedInstanceTypes"); asJSON(got) != asJSON(c.types) {
			t.Errorf("%s: instance types %s, want %s", v.name, asJSON(got), asJSON(c.types))
		}
		if got := dig(cp, "CapacityProviderScalingConfig", "MaxVCpuCount"); got != c.vcpu {
			t.Errorf("%s: max vCPU %v, want %v (%s)", v.name, got, c.vcpu, asJSON(cp))
		}
		sgs := dig(cp, "VpcConfig", "SecurityGroupIds").([]any)
		subnets := dig(cp, "VpcConfig", "SubnetIds").([]any)
		if c.subnets != nil {
			if asJSON(subnets) != asJSON(c.subnets) || asJSON(sgs) != asJSON([]any{c.sg}) {
				t.Errorf("%s: capacity provider in %s with %s", v.name, asJSON(subnets), asJSON(sgs))
			}
		} else {
			// The same subnets and group as the classic functions, so Redis
			// and the endpoints admit the instances.
			ticket := v.json.function(t, "ticket").Properties
			if asJSON(subnets) != asJSON(dig(ticket, "VpcConfig", "SubnetIds")) ||
				asJSON(sgs) != asJSON(dig(ticket, "VpcConfig", "SecurityGroupIds")) {
				t.Errorf("%s: capacity provider in %s with %s, want the functions' subnets and group", v.name, asJSON(subnets), asJSON(sgs))
			}
		}

		stream := v.json.function(t, "stream")
		p := stream.Properties
		// Lambda cannot remove a capacity provider from a function: the
		// managed function is another resource, so a switch replaces it.
		if classic := defaults.get(t).json.function(t, "stream").id; stream.id == classic {
			t.Errorf("%s: the stream function has the classic mode's logical id %s", v.name, classic)
		}
		if p["VpcConfig"] != nil || p["ReservedConcurrentExecutions"] != nil {
			t.Errorf("%s: stream function has VpcConfig %v / reserved concurrency %v; the capacity provider places it",
				v.name, p["VpcConfig"], p["ReservedConcurrentExecutions"])
		}
		mi := dig(p, "CapacityProviderConfig", "LambdaManagedInstancesCapacityProviderConfig")
		if ref(dig(mi, "CapacityProviderArn")) != cps[0].id ||
			dig(mi, "PerExecutionEnvironmentMaxConcurrency") != c.conc ||
			dig(mi, "ExecutionEnvironmentMemoryGiBPerVCpu") != c.gib {
			t.Errorf("%s: stream capacity provider config %s", v.name, asJSON(p["CapacityProviderConfig"]))
		}
		if p["MemorySize"] != c.memory || asJSON(p["Architectures"]) != `["arm64"]` {
			t.Errorf("%s: stream memory %v architectures %v", v.name, p["MemorySize"], p["Architectures"])
		}
		for _, name := range []string{"ticket", "status", "health"} {
			fp := v.json.function(t, name).Properties
			if fp["CapacityProviderConfig"] != nil || fp["VpcConfig"] == nil {
				t.Errorf("%s/%s: not a classic VPC function", v.name, name)
			}
		}

		// The stream URL targets the alias of a published version.
		aliases := v.json.byType("AWS::Lambda::Alias")
		versions := v.json.byType("AWS::Lambda::Version")
		if len(aliases) != 1 || len(versions) != 1 {
			t.Fatalf("%s: %d aliases, %d versions, want 1 each", v.name, len(aliases), len(versions))
		}
		if ref(aliases[0].Properties["FunctionName"]) != stream.id || ref(aliases[0].Properties["FunctionVersion"]) != versions[0].id ||
			ref(versions[0].Properties["FunctionName"]) != stream.id {
			t.Errorf("%s: alias %s of version %s", v.name, asJSON(aliases[0].Properties), asJSON(versions[0].Properties))
		}
		var streamURL string
		for _, u := range v.json.byType("AWS::Lambda::Url") {
			if u.Properties["InvokeMode"] == "RESPONSE_STREAM" {
				if ref(u.Properties["TargetFunctionArn"]) != stream.id || u.Properties["Qualifier"] != "live" {
					t.Errorf("%s: streaming URL targets %s, want the alias live of the stream function", v.name, asJSON(u.Properties))
				}
				streamURL = u.id
			}
		}
		dist := v.json.byType("AWS::CloudFront::Distribution")
		if len(dist) != 1 || !strings.Contains(asJSON(dist[0].Properties), `"`+streamURL+`"`) {
			t.Errorf("%s: the distribution does not use the streaming URL %s", v.name, streamURL)
		}
		// The invoke permission is on the alias: CloudFront's (origin
		// access control, AWS_IAM) names the alias URL's function ARN,
		// which carries the qualifier.
		found := false
		for _, perm := range v.json.byType("AWS::Lambda::Permission") {
			fn := perm.Properties["FunctionName"]
			if perm.Properties["Action"] == "lambda:InvokeFunctionUrl" &&
				(ref(fn) == aliases[0].id || asJSON(fn) == `{"Fn::GetAtt":["`+streamURL+`","FunctionArn"]}`) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no lambda:InvokeFunctionUrl permission on the alias", v.name)
		}
	}
}

// TestManagedNetwork: the instances ship the function's logs from the VPC,
// so managed instances add a CloudWatch Logs endpoint that only the
// functions' group reaches, and nothing else: no NAT, no internet gateway.
// The classic mode has no such endpoint.
func TestManagedNetwork(t *testing.T) {
	for _, c := range []struct {
		v    *variant
		logs bool
	}{{defaults, false}, {existing, false}, {managed, true}, {managedExisting, true}} {
		v := c.v.get(t)
		n := 0
		for _, e := range v.json.byType("AWS::EC2::VPCEndpoint") {
			if strings.Contains(asJSON(e.Properties["ServiceName"]), "}.logs") {
				n++
			}
		}
		if want := map[bool]int{false: 0, true: 1}[c.logs]; n != want {
			t.Errorf("%s: %d CloudWatch Logs endpoints, want %d", v.name, n, want)
		}
		for _, typ := range []string{"AWS::EC2::NatGateway", "AWS::EC2::InternetGateway"} {
			if got := len(v.json.byType(typ)); got != 0 {
				t.Errorf("%s: %d %s", v.name, got, typ)
			}
		}
	}
}

// TestComputeValidation: the compute settings are checked, all at once.
func TestComputeValidation(t *testing.T) {
	t.Parallel()
	ok := Props{AssetRoot: assetRoot, StreamCompute: ComputeManagedInstances}.withDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults of managed instances: %v", err)
	}
	if got, want := ok.StreamReservedConcurrency, DefaultMaxVCpu*DefaultStreamMaxConcurrency; got != want {
		t.Errorf("concurrency limit of managed instances %d, want %d (the ceiling the alarm watches)", got, want)
	}
	for _, c := range []struct {
		name string
		p    Props
		want []string
	}{
		{"unknown mode", Props{StreamCompute: "fargate"}, []string{"streamCompute"}},
		{"managed settings in the classic mode", Props{MaxVCpu: 8, InstanceTypes: []string{"m7g.large"}}, []string{"only with streamCompute"}},
		{"bad managed settings", Props{StreamCompute: ComputeManagedInstances, InstanceTypes: []string{"m7i.large"},
			MemoryGiBPerVCpu: 3, StreamMaxConcurrency: 1601, StreamMemoryMB: 1024},
			[]string{`"m7i.large"`, "memoryPerVCpu", "streamMaxConcurrency", "streamMemoryMb"}},
		{"memory not a multiple of the memory per vCPU", Props{StreamCompute: ComputeManagedInstances, MemoryGiBPerVCpu: 4, StreamMemoryMB: 6144},
			[]string{"streamMemoryMb"}},
	} {
		c.p.AssetRoot = assetRoot
		err := c.p.withDefaults().Validate()
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to mention %s", c.name, err, w)
			}
		}
	}
}
