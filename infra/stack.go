package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticache"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// StackID is the construct id of the stack; `cdk synth` writes
// cdk.out/<StackID>.template.json.
const StackID = "MachineSse"

// Environment variable names the functions read (a contract with
// internal/config; see DESIGN section 5 and LAMBDA-NOTES).
const (
	EnvRedisURL              = "REDIS_URL"
	EnvRedisAuthSecretArn    = "REDIS_AUTH_SECRET_ARN"
	EnvAccessTokenSecretArn  = "ACCESS_TOKEN_SECRET_ARN"
	EnvAccessTokenPublicKey  = "ACCESS_TOKEN_PUBLIC_KEY"
	EnvAccessTokenUserClaim  = "ACCESS_TOKEN_USER_CLAIM"
	EnvStreamTicketSecretArn = "STREAM_TICKET_SECRET_ARN"
	EnvOriginVerifySecretArn = "ORIGIN_VERIFY_SECRET_ARN"
	EnvTrustedClientIPHeader = "TRUSTED_CLIENT_IP_HEADER"
	EnvCORSAllowedOrigins    = "CORS_ALLOWED_ORIGINS"
	EnvHeartbeatInterval     = "HEARTBEAT_INTERVAL"
	EnvStreamFlushInterval   = "STREAM_FLUSH_INTERVAL"
	EnvLogLevel              = "LOG_LEVEL"
	EnvConnectionLimitPolicy = "CONNECTION_LIMIT_POLICY"
	EnvMaxStreamsPerIP       = "MAX_STREAMS_PER_IP"
)

const (
	// OriginVerifyHeader carries the origin secret from CloudFront to every
	// function; a request without it is answered 403 by the function.
	// CloudFront overwrites a viewer header of the same name, so a viewer
	// cannot supply it.
	OriginVerifyHeader = "X-Origin-Verify"
	// ClientIPHeader is the CloudFront header with the viewer's address, the
	// only client address the functions trust (for the per-IP limit).
	ClientIPHeader = "CloudFront-Viewer-Address"
	// RedisPort is the port of the Redis the stack creates.
	RedisPort = 6379
)

// stack holds what the parts of the stack share while it is built.
type stack struct {
	st    awscdk.Stack
	props Props

	// network
	vpc        awsec2.IVpc
	vpcID      *string
	subnets    *awsec2.SubnetSelection
	subnetIDs  []*string
	subnetList []awsec2.ISubnet // the same subnets
	functionSG awsec2.ISecurityGroup

	// redis
	redisSG         awsec2.ISecurityGroup              // nil: existing Redis
	redisGroup      awselasticache.CfnReplicationGroup // nil: existing Redis
	redisURL        *string
	redisAuthSecret awssecretsmanager.ISecret // nil: Redis without AUTH

	// secrets
	streamTicketSecret awssecretsmanager.ISecret
	originVerifySecret awssecretsmanager.ISecret
	accessTokenSecret  awssecretsmanager.ISecret // nil with a public key

	functions map[string]*function
}

// NewStack validates props and adds the SSE service stack to scope. It is
// environment-agnostic and looks nothing up, so synth needs no AWS account.
func NewStack(scope constructs.Construct, id string, props Props) (awscdk.Stack, error) {
	props = props.withDefaults()
	if err := props.Validate(); err != nil {
		return nil, fmt.Errorf("infra: invalid configuration:\n%w", err)
	}
	s := &stack{
		st: awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{
			Description: jsii.String("Serverless SSE for the machine dashboard: Lambda function URLs (response streaming) behind CloudFront, ElastiCache in a VPC."),
		}),
		props:     props,
		functions: map[string]*function{},
	}
	s.addSecrets()
	if props.Existing != nil {
		s.addExistingNetwork()
	} else {
		s.addNetwork()
		s.addRedis()
	}
	for _, name := range props.functionNames() {
		s.addFunction(name)
	}
	if props.Simulator {
		s.addSimulatorSchedule()
	}
	dist := s.addDistribution()
	s.addAlarms()
	s.addDashboard(dist)
	s.addOutputs(dist)
	return s.st, nil
}

// addSecrets creates the generated secrets and imports the given ones. The
// functions read each one once at init through its *_SECRET_ARN variable.
func (s *stack) addSecrets() {
	s.streamTicketSecret = s.generatedSecret("StreamTicketSecret",
		"HS256 key that signs and verifies SSE stream tickets", 64,
		"The functions read the key once at init and verify with that one key: an automatic rotation would "+
			"invalidate every outstanding ticket and resume cursor at an unpredictable moment. It is rotated "+
			"by hand (README, Secrets), at a time the operator chooses.")
	s.originVerifySecret = s.generatedSecret("OriginVerifySecret",
		"Value CloudFront sends as "+OriginVerifyHeader+"; the functions reject requests without it", 48,
		"CloudFront's origin header and the functions must change together; a rotation in Secrets Manager alone "+
			"changes neither CloudFront (it resolves the value at deploy) nor running functions, so every request "+
			"would get 403. It is rotated by hand with a deploy (README, Secrets).")
	switch {
	case s.props.AccessTokenPublicKey != "":
		// The public key is not a secret: it goes in as plain text.
	case s.props.AccessTokenSecretArn != "":
		s.accessTokenSecret = awssecretsmanager.Secret_FromSecretCompleteArn(s.st, jsii.String("AccessTokenSecret"),
			jsii.String(s.props.AccessTokenSecretArn))
	default:
		// A random placeholder: no access token verifies until the deployer
		// puts the existing app's HS256 secret in (README, "Deploy").
		s.accessTokenSecret = s.generatedSecret("AccessTokenSecret",
			"HS256 secret of the existing app's access tokens: replace this value with the app's secret", 64,
			"Holds the existing app's token-signing secret: that app owns its rotation; a rotation here would "+
				"only break token verification.")
	}
}

// generatedSecret is a random alphanumeric secret (no punctuation, so it is
// valid as an HTTP header value and as an ElastiCache AUTH token).
// rotationReason says why it has no automatic rotation (cdk-nag SMG4).
func (s *stack) generatedSecret(id, description string, length int, rotationReason string) awssecretsmanager.ISecret {
	secret := awssecretsmanager.NewSecret(s.st, jsii.String(id), &awssecretsmanager.SecretProps{
		Description: jsii.String(description),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			ExcludePunctuation: jsii.Bool(true),
			IncludeSpace:       jsii.Bool(false),
			PasswordLength:     jsii.Number(float64(length)),
		},
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	suppress(secret, "AwsSolutions-SMG4", rotationReason)
	return secret
}
