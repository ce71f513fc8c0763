package main

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// The stream function's compute mode managed-instances: Lambda Managed
// Instances runs it on EC2 instances that Lambda manages in the service's
// private subnets, many invocations per execution environment
// (AWS_LAMBDA_MAX_CONCURRENCY), all sharing the process's one Redis
// subscription. The function URL (RESPONSE_STREAM) stays the front door,
// on a published version's alias, since only published versions run
// there.

// gravitonType matches arm64 (Graviton) instance types: m7g.large,
// c7gn.xlarge, r8gd.2xlarge.
var gravitonType = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.[0-9]*[a-z]+$`)

// OperatorPolicy is the AWS managed policy of the capacity provider's
// operator role, the only managed policy in the stack.
const OperatorPolicy = "AWSLambdaManagedEC2ResourceOperator"

// managed reports whether the stream function runs on managed instances.
func (p Props) managed() bool { return p.StreamCompute == ComputeManagedInstances }

// vCPUsPerEnvironment is the size of one execution environment: its memory
// over the memory per vCPU.
func (p Props) vCPUsPerEnvironment() int {
	return max(p.StreamMemoryMB/1024/max(p.MemoryGiBPerVCpu, 1), 1)
}

// managedStreamCeiling is the most streams the capacity provider holds:
// environments at its vCPU ceiling times streams per environment.
func (p Props) managedStreamCeiling() int {
	return p.MaxVCpu / p.vCPUsPerEnvironment() * p.StreamMaxConcurrency
}

// validateCompute checks the compute-mode props (after defaults).
func (p Props) validateCompute() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch p.StreamCompute {
	case ComputeInvocation:
		if len(p.InstanceTypes) > 0 || p.MaxVCpu != 0 || p.StreamMaxConcurrency != 0 || p.MemoryGiBPerVCpu != 0 {
			bad("instanceTypes, maxVCpu, streamMaxConcurrency, memoryPerVCpu: only with streamCompute=%s", ComputeManagedInstances)
		}
		return errs
	case ComputeManagedInstances:
	default:
		bad("streamCompute: %q is not %s or %s", p.StreamCompute, ComputeInvocation, ComputeManagedInstances)
		return errs
	}
	switch p.MemoryGiBPerVCpu {
	case 2, 4, 8:
	default:
		bad("memoryPerVCpu: %d is not 2, 4 or 8 (GiB per vCPU)", p.MemoryGiBPerVCpu)
	}
	if step := p.MemoryGiBPerVCpu * 1024; p.StreamMemoryMB < 2048 || p.StreamMemoryMB > 32768 || (step > 0 && p.StreamMemoryMB%step != 0) {
		bad("streamMemoryMb: %d must be 2048..32768 and a multiple of memoryPerVCpu (%d GiB) on managed instances", p.StreamMemoryMB, p.MemoryGiBPerVCpu)
	}
	if p.StreamMaxConcurrency < 1 || p.StreamMaxConcurrency > MaxStreamMaxConcurrency {
		bad("streamMaxConcurrency: %d is outside 1..%d", p.StreamMaxConcurrency, MaxStreamMaxConcurrency)
	}
	if p.MaxVCpu < p.vCPUsPerEnvironment() || p.MaxVCpu > 10000 {
		bad("maxVCpu: %d must hold at least one environment (%d vCPU) and be at most 10000", p.MaxVCpu, p.vCPUsPerEnvironment())
	}
	for _, t := range p.InstanceTypes {
		if !gravitonType.MatchString(t) {
			bad("instanceTypes: %q is not an arm64 (Graviton) instance type like m7g.large", t)
		}
	}
	return errs
}

// onCapacityProvider puts the stream function on a capacity provider in
// the functions' subnets, with the functions' security group (the one
// Redis and the Secrets Manager endpoint admit), and returns the alias of
// its published version, which carries the function URL.
func (s *stack) onCapacityProvider(scope constructs.Construct, fn awslambda.Function) awslambda.Alias {
	p := s.props
	types := make([]awsec2.InstanceType, len(p.InstanceTypes))
	for i, t := range p.InstanceTypes {
		types[i] = awsec2.NewInstanceType(jsii.String(t))
	}
	logs := awslogs.NewLogGroup(scope, jsii.String("CapacityProviderLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention[p.LogRetentionDays],
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	cp := awslambda.NewCapacityProvider(scope, jsii.String("CapacityProvider"), &awslambda.CapacityProviderProps{
		Subnets:            &s.subnetList,
		SecurityGroups:     &[]awsec2.ISecurityGroup{s.functionSG},
		Architectures:      &[]awslambda.Architecture{awslambda.Architecture_ARM_64()},
		InstanceTypeFilter: awslambda.InstanceTypeFilter_Allow(&types),
		MaxVCpuCount:       jsii.Number(float64(p.MaxVCpu)),
		LogGroup:           logs,
	})
	// OperatorPolicy is AWS's own policy for the role Lambda uses to run the
	// instances; CDK attaches it to the generated operator role.
	suppress(cp, "AwsSolutions-IAM4",
		"The operator role is assumed by Lambda itself to launch, tag and terminate the capacity provider's "+
			"EC2 instances; AWSLambdaManagedEC2ResourceOperator is the policy AWS maintains for exactly that role "+
			"(CDK's default), and Lambda's set of needed EC2 actions changes with the service, so a copy would drift.",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/"+OperatorPolicy)
	cp.AddFunction(fn, &awslambda.CapacityProviderFunctionOptions{
		PerExecutionEnvironmentMaxConcurrency: jsii.Number(float64(p.StreamMaxConcurrency)),
		ExecutionEnvironmentMemoryGiBPerVCpu:  jsii.Number(float64(p.MemoryGiBPerVCpu)),
	})
	return awslambda.NewAlias(scope, jsii.String("Live"), &awslambda.AliasProps{
		AliasName:   jsii.String("live"),
		Version:     fn.CurrentVersion(),
		Description: jsii.String("The published version CloudFront streams from"),
	})
}
