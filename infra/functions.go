package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// fnSpec is what differs between the functions.
type fnSpec struct {
	description string
	memoryMB    int
	timeout     time.Duration
	// public: served through CloudFront by a function URL (every public
	// function checks the origin secret).
	public      bool
	invokeMode  awslambda.InvokeMode
	method      awslambda.HttpMethod
	corsHeaders []string // request headers the browser may send cross-origin
	reserved    int      // reserved concurrency; 0 = unreserved pool
}

// function is one deployed function and what other parts need of it.
type function struct {
	name string
	fn   awslambda.Function
	url  awslambda.FunctionUrl // nil for the simulator
}

// specs returns the function specs for the (defaulted) props.
func (p Props) specs() map[string]fnSpec {
	return map[string]fnSpec{
		"stream": {
			description: "SSE streams: GET /sse/stream and /sse/alerts (one invocation per connection)",
			memoryMB:    p.StreamMemoryMB,
			// The platform maximum. The handler ends the stream itself a
			// jittered few seconds before this deadline; the browser
			// reconnects with Last-Event-ID.
			timeout:     15 * time.Minute,
			public:      true,
			invokeMode:  awslambda.InvokeMode_RESPONSE_STREAM,
			method:      awslambda.HttpMethod_GET,
			corsHeaders: []string{"Last-Event-ID"},
			// So a flood of streams can never take the concurrency that
			// ticket, status and health need (they use the unreserved pool).
			reserved: p.StreamReservedConcurrency,
		},
		"ticket": {
			description: "POST /sse/stream-ticket: exchanges an access token for a stream ticket",
			memoryMB:    128, timeout: 10 * time.Second, public: true,
			invokeMode:  awslambda.InvokeMode_BUFFERED,
			method:      awslambda.HttpMethod_POST,
			corsHeaders: []string{"Authorization", "Content-Type"},
		},
		"status": {
			description: "GET /sse/status: connection status of the ticket's user",
			memoryMB:    128, timeout: 10 * time.Second, public: true,
			invokeMode: awslambda.InvokeMode_BUFFERED,
			method:     awslambda.HttpMethod_GET,
		},
		"health": {
			description: "GET /health: service and Redis health",
			memoryMB:    128, timeout: 10 * time.Second, public: true,
			invokeMode: awslambda.InvokeMode_BUFFERED,
			method:     awslambda.HttpMethod_GET,
		},
		SimulatorFunction: {
			description: "Demo telemetry publisher: publishes for about 50 s per scheduled run",
			memoryMB:    128,
			// Runs are a minute apart and publish for 50 s (cut short 2 s
			// before this deadline): every run is over before the next
			// one fires, which the single reserved execution needs.
			timeout: SimulatorTimeout,
			// One publisher at a time, even when two runs overlap briefly.
			reserved: 1,
		},
	}
}

// environment returns the variables of one function. Each function gets the
// secrets it uses and no others (least privilege: its role can read exactly
// these).
func (s *stack) environment(name string, spec fnSpec) (map[string]*string, []awssecretsmanager.ISecret) {
	env := map[string]*string{
		EnvRedisURL: s.redisURL,
		EnvLogLevel: jsii.String(s.props.LogLevel),
	}
	var secrets []awssecretsmanager.ISecret
	secret := func(key string, sec awssecretsmanager.ISecret) {
		env[key] = sec.SecretArn()
		secrets = append(secrets, sec)
	}
	if s.redisAuthSecret != nil {
		secret(EnvRedisAuthSecretArn, s.redisAuthSecret)
	}
	if spec.public {
		secret(EnvOriginVerifySecretArn, s.originVerifySecret)
		env[EnvTrustedClientIPHeader] = jsii.String(ClientIPHeader)
		if len(s.props.DashboardOrigins) > 0 {
			env[EnvCORSAllowedOrigins] = jsii.String(strings.Join(s.props.DashboardOrigins, ","))
		}
	}
	switch name {
	case "stream", "status":
		secret(EnvStreamTicketSecretArn, s.streamTicketSecret)
		if s.props.ConnectionLimitPolicy != "" {
			env[EnvConnectionLimitPolicy] = jsii.String(s.props.ConnectionLimitPolicy)
		}
		if s.props.MaxStreamsPerIP != 0 {
			env[EnvMaxStreamsPerIP] = jsii.String(strconv.Itoa(s.props.MaxStreamsPerIP))
		}
		if name == "stream" {
			env[EnvHeartbeatInterval] = jsii.String(s.props.HeartbeatInterval.String())
			// Only when on, so a stack with it off keeps its template
			// (and the function its configuration) unchanged.
			if s.props.StreamFlushInterval > 0 {
				env[EnvStreamFlushInterval] = jsii.String(s.props.StreamFlushInterval.String())
			}
		}
	case "ticket":
		secret(EnvStreamTicketSecretArn, s.streamTicketSecret)
		if s.accessTokenSecret != nil {
			secret(EnvAccessTokenSecretArn, s.accessTokenSecret)
		} else {
			env[EnvAccessTokenPublicKey] = jsii.String(s.props.AccessTokenPublicKey)
		}
		env[EnvAccessTokenUserClaim] = jsii.String(s.props.AccessTokenUserClaim)
	}
	return env, secrets
}

// addFunction creates one function with its own role, log group and (for
// public functions) function URL.
func (s *stack) addFunction(name string) {
	spec := s.props.specs()[name]
	id := strings.ToUpper(name[:1]) + name[1:]
	scope := constructs.NewConstruct(s.st, jsii.String(id))
	env, secrets := s.environment(name, spec)

	logs := awslogs.NewLogGroup(scope, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     logRetention[s.props.LogRetentionDays],
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// On managed instances the instances sit in the VPC, not the function.
	managed := name == "stream" && s.props.managed()
	role := s.functionRole(scope, name, logs, secrets, !managed)

	var reserved *float64
	if spec.reserved > 0 && !managed {
		reserved = jsii.Number(float64(spec.reserved))
	}
	props := &awslambda.FunctionProps{
		Description:                  jsii.String(spec.description),
		Runtime:                      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:                 awslambda.Architecture_ARM_64(),
		Handler:                      jsii.String("bootstrap"),
		Code:                         awslambda.Code_FromAsset(jsii.String(filepath.Join(s.props.AssetRoot, "bin", name)), nil),
		MemorySize:                   jsii.Number(float64(spec.memoryMB)),
		Timeout:                      awscdk.Duration_Seconds(jsii.Number(spec.timeout.Seconds())),
		Environment:                  &env,
		Role:                         role,
		LogGroup:                     logs,
		Vpc:                          s.vpc,
		VpcSubnets:                   s.subnets,
		SecurityGroups:               &[]awsec2.ISecurityGroup{s.functionSG},
		ReservedConcurrentExecutions: reserved,
	}
	if managed {
		props.Vpc, props.VpcSubnets, props.SecurityGroups = nil, nil, nil
	}
	if !spec.public {
		// Scheduled (asynchronous) runs: a failed or late run is not
		// retried; the next one starts a minute later anyway.
		props.RetryAttempts = jsii.Number(0)
		props.MaxEventAge = awscdk.Duration_Seconds(jsii.Number(60))
	}
	// Lambda cannot take a capacity provider off a function: a mode switch
	// must replace the function, so each mode has its own construct id
	// (CloudFront follows the new function URL in the same deploy).
	fnID := "Function"
	if managed {
		fnID = "ManagedFunction"
	}
	fn := awslambda.NewFunction(scope, jsii.String(fnID), props)

	f := &function{name: name, fn: fn}
	var target awslambda.IFunction = fn
	if managed {
		target = s.onCapacityProvider(scope, fn)
	}
	if spec.public {
		f.url = target.AddFunctionUrl(&awslambda.FunctionUrlOptions{
			// AWS_IAM (origin access control) for GET-only functions,
			// NONE plus the origin secret for the POST one (edge.go).
			AuthType:   urlAuth(name),
			InvokeMode: spec.invokeMode,
			Cors:       s.cors(spec),
		})
	}
	s.functions[name] = f
}

// cors is the function URL CORS configuration: the dashboard origins only,
// credentials allowed. The function URL answers preflights itself and its
// headers replace any the function sets (one source of truth). Without
// dashboard origins there is no CORS at all.
func (s *stack) cors(spec fnSpec) *awslambda.FunctionUrlCorsOptions {
	if len(s.props.DashboardOrigins) == 0 {
		return nil
	}
	c := &awslambda.FunctionUrlCorsOptions{
		AllowedOrigins:   jsii.Strings(s.props.DashboardOrigins...),
		AllowedMethods:   &[]awslambda.HttpMethod{spec.method},
		AllowCredentials: jsii.Bool(true),
		MaxAge:           awscdk.Duration_Hours(jsii.Number(1)),
	}
	if len(spec.corsHeaders) > 0 {
		c.AllowedHeaders = jsii.Strings(spec.corsHeaders...)
	}
	return c
}

// functionRole is a role for one function: write its own log group, manage
// its VPC network interfaces (when it runs in the VPC), read its own
// secrets. No managed policies.
func (s *stack) functionRole(scope constructs.Construct, name string, logs awslogs.LogGroup, secrets []awssecretsmanager.ISecret, inVPC bool) awsiam.Role {
	policies := map[string]awsiam.PolicyDocument{
		"logs": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
			Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
					Resources: jsii.Strings(*logs.LogGroupArn()),
				}),
			},
		}),
	}
	if inVPC {
		// Inline in the role itself, so the permissions exist before the
		// function is created (Lambda checks them for a VPC function).
		policies["vpc-network-interfaces"] = awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
			Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Actions: jsii.Strings(
						"ec2:CreateNetworkInterface",
						"ec2:DescribeNetworkInterfaces",
						"ec2:DescribeSubnets",
						"ec2:DeleteNetworkInterface",
						"ec2:AssignPrivateIpAddresses",
						"ec2:UnassignPrivateIpAddresses",
					),
					Resources: jsii.Strings("*"),
				}),
			},
		})
	}
	role := awsiam.NewRole(scope, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:      awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description:    jsii.String("Execution role of the SSE " + name + " function"),
		InlinePolicies: &policies,
	})
	for _, sec := range secrets {
		sec.GrantRead(role, nil)
	}
	if !inVPC {
		return role
	}
	suppress(role, "AwsSolutions-IAM5",
		"The network-interface actions Lambda needs to run a function in a VPC (the set of the AWS managed "+
			"AWSLambdaVPCAccessExecutionRole, without its logs permissions on every log group). The ec2:Describe "+
			"actions support no resource-level permissions, and Lambda manages the interfaces itself. See "+
			"https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions",
		"Resource::*")
	return role
}

// addSimulatorSchedule runs the demo simulator every minute.
func (s *stack) addSimulatorSchedule() {
	f := s.functions[SimulatorFunction]
	awsevents.NewRule(s.st, jsii.String("SimulatorSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Runs the SSE demo simulator every minute"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(1))),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(f.fn, &awseventstargets.LambdaFunctionProps{
				RetryAttempts: jsii.Number(0),
				MaxEventAge:   awscdk.Duration_Seconds(jsii.Number(60)),
			}),
		},
	})
}
