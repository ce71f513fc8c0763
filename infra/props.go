package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

// Defaults of the stack. Each one is a prop (and a context key, see
// PropsFromContext) so a deployer changes it without editing code.
const (
	DefaultStreamMemoryMB            = 128 // a Go stream handler measured ~20-30 MB RSS
	DefaultStreamReservedConcurrency = 50
	DefaultHeartbeatInterval         = 25 * time.Second
	DefaultLogLevel                  = "info"
	DefaultLogRetentionDays          = 30
	DefaultAccessTokenUserClaim      = "sub"
	DefaultRedisNodeType             = "cache.t4g.micro"

	// Compute modes of the stream function (context streamCompute).
	ComputeInvocation       = "invocation"        // one classic invocation per stream
	ComputeManagedInstances = "managed-instances" // Lambda Managed Instances: many streams per process

	// Managed-instances defaults (compute.go). An environment of 2 GiB and
	// 1 vCPU holds 200 streams at about 35 MiB of RSS (docs/benchmarks.md).
	DefaultManagedStreamMemoryMB = 2048
	DefaultStreamMaxConcurrency  = 200
	DefaultMemoryGiBPerVCpu      = 2
	DefaultMaxVCpu               = 12 // three 2-vCPU instances, with room to double
	MaxStreamMaxConcurrency      = 1600

	// DefaultManagedStreamFlushInterval is STREAM_FLUSH_INTERVAL on managed
	// instances: 5 ms halves a busy stream's writes and cuts the CPU per
	// delivery by 11-20 %, for about +3 ms median latency (root README,
	// docs/benchmarks.md). CPU is what managed instances bill and scale on; the classic
	// mode is billed by duration, so there the default stays off.
	DefaultManagedStreamFlushInterval = 5 * time.Millisecond
	// MaxStreamFlushInterval is the stream function's own ceiling
	// (internal/config).
	MaxStreamFlushInterval = time.Second
	// StreamFlushOff as Props.StreamFlushInterval turns the flush interval
	// off even on managed instances: the zero value means "the default"
	// there, as everywhere in Props. Context: streamFlushInterval=0s.
	StreamFlushOff time.Duration = -1

	// OriginReadTimeout is CloudFront's wait between two bytes from a function
	// URL. It must stay well above the heartbeat interval, or an idle stream is
	// cut by CloudFront (60 s is within the default quota of 120 s).
	OriginReadTimeout = 60 * time.Second
	// ConcurrencyAlarmRatio is the share of the stream function's reserved
	// concurrency at which the "near the limit" alarm fires: past 100 % new
	// streams get 429, which ends a native EventSource for good.
	ConcurrencyAlarmRatio = 0.8
)

// Functions are the Lambda functions of the service, in the order the stack
// creates them; each one's code is <AssetRoot>/bin/<name>/bootstrap.
var Functions = []string{"stream", "ticket", "status", "health"}

// DefaultInstanceTypes are the Graviton (arm64) types the capacity provider
// may launch: general purpose and compute optimised, 2 vCPU each.
var DefaultInstanceTypes = []string{"m7g.large", "c7g.large", "m6g.large"}

// SimulatorFunction is the optional demo publisher (Props.Simulator).
const SimulatorFunction = "simulator"

// Props configure the stack. The zero value of every optional field means
// "the default above"; Validate reports every problem at once.
type Props struct {
	// AssetRoot is the directory that holds bin/<fn>/bootstrap (the repo root
	// after `make build`). Required.
	AssetRoot string
	// DashboardOrigins are the browser origins (scheme://host[:port]) that may
	// call the service cross-origin. Empty: no CORS at all.
	DashboardOrigins []string

	StreamMemoryMB            int           // default DefaultStreamMemoryMB
	StreamReservedConcurrency int           // default DefaultStreamReservedConcurrency
	HeartbeatInterval         time.Duration // default DefaultHeartbeatInterval
	LogLevel                  string        // default DefaultLogLevel
	LogRetentionDays          int           // default DefaultLogRetentionDays
	ConnectionLimitPolicy     string        // "" leaves the function default (evict-oldest)
	MaxStreamsPerIP           int           // 0 leaves the function default (5)

	// Access tokens of the existing app: at most one of AccessTokenSecretArn
	// (an existing secret holding the HS256 key) and AccessTokenPublicKey
	// (PEM). With neither, the stack creates a secret for the deployer to fill.
	AccessTokenSecretArn string
	AccessTokenPublicKey string
	AccessTokenUserClaim string // default DefaultAccessTokenUserClaim

	// StreamCompute is the compute mode of the stream function:
	// ComputeInvocation (default) or ComputeManagedInstances. Ticket,
	// status and health stay classic in both.
	StreamCompute string
	// Managed instances only (compute.go).
	InstanceTypes        []string // default DefaultInstanceTypes (arm64 only)
	MaxVCpu              int      // the capacity provider's ceiling; default DefaultMaxVCpu
	StreamMaxConcurrency int      // streams per execution environment; default DefaultStreamMaxConcurrency
	MemoryGiBPerVCpu     int      // 2, 4 or 8; default DefaultMemoryGiBPerVCpu

	// StreamFlushInterval is the stream function's STREAM_FLUSH_INTERVAL,
	// the least time between two writes of one stream (0..1s). 0: the
	// default, DefaultManagedStreamFlushInterval on managed instances and
	// off in the classic mode; StreamFlushOff: off in both. Set only when
	// above 0.
	StreamFlushInterval time.Duration

	// Simulator adds the demo publisher, run every minute by EventBridge.
	Simulator bool

	// AlarmTopicArn, if set, receives every alarm (an existing SNS topic).
	AlarmTopicArn string

	// WebACLArn attaches an existing AWS WAF web ACL (scope CLOUDFRONT,
	// us-east-1) to the distribution.
	WebACLArn string

	// DomainName and CertificateArn (ACM, us-east-1) give CloudFront a custom
	// domain, which is what lets it enforce TLSv1.2_2021 for viewers.
	DomainName     string
	CertificateArn string

	// New VPC + Redis variant (Existing == nil).
	RedisNodeType string // default DefaultRedisNodeType
	// RedisSingleNode drops the replica (no Multi-AZ failover) to halve the
	// Redis cost of a demo.
	RedisSingleNode bool
	// RedisClientSecurityGroupIDs are extra security groups (in the new VPC,
	// e.g. an ingest) allowed to reach Redis on its port.
	RedisClientSecurityGroupIDs []string

	// Existing, when set, deploys into an existing VPC next to an existing
	// Redis: no VPC and no Redis are created.
	Existing *Existing

	Ops Ops // alarms and edge (ops.go)
}

// Existing describes an existing VPC and Redis. Nothing here is looked up:
// synth stays offline and needs no AWS credentials.
type Existing struct {
	VpcID           string
	SubnetIDs       []string // private subnets the functions run in
	SecurityGroupID string   // attached to the functions; already allowed into Redis
	// RedisEndpoint is host:port of the primary endpoint of a Redis with
	// cluster mode disabled (pub/sub and the admission script need one
	// node; a cluster-mode configuration endpoint will not do).
	RedisEndpoint string
	// RedisUsername is an ElastiCache RBAC user (with RedisAuthSecretArn
	// holding its password); empty: the default user.
	RedisUsername  string
	RedisPlaintext bool // redis:// instead of rediss:// (not recommended)
	// RedisAuthSecretArn is the complete ARN of a secret holding the AUTH
	// token; empty if the Redis has no AUTH.
	RedisAuthSecretArn string
	// SecretsEndpoint creates a Secrets Manager interface endpoint in the
	// VPC. Leave it off when the subnets reach Secrets Manager already (NAT or
	// an existing endpoint): its private DNS name would take over the VPC.
	SecretsEndpoint bool
}

var (
	secretArnPattern = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$`)
	snsArnPattern    = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$`)
	wafArnPattern    = regexp.MustCompile(`^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/[A-Za-z0-9_-]+/[a-f0-9-]+$`)
	acmArnPattern    = regexp.MustCompile(`^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[A-Za-z0-9-]+$`)
	vpcIDPattern     = regexp.MustCompile(`^vpc-[0-9a-f]+$`)
	subnetIDPattern  = regexp.MustCompile(`^subnet-[0-9a-f]+$`)
	sgIDPattern      = regexp.MustCompile(`^sg-[0-9a-f]+$`)
	nodeTypePattern  = regexp.MustCompile(`^cache\.[a-z0-9]+\.[a-z0-9]+$`)
	domainPattern    = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$`)
	claimPattern     = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,128}$`)
	redisUserPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,119}$`)
)

// logRetention maps the retention periods CloudWatch Logs accepts (days) to
// the CDK enum.
var logRetention = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS,
	5: awslogs.RetentionDays_FIVE_DAYS, 7: awslogs.RetentionDays_ONE_WEEK,
	14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS,
	120: awslogs.RetentionDays_FOUR_MONTHS, 150: awslogs.RetentionDays_FIVE_MONTHS,
	180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS,
	731: awslogs.RetentionDays_TWO_YEARS, 1096: awslogs.RetentionDays_THREE_YEARS,
	1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS,
	3288: awslogs.RetentionDays_NINE_YEARS, 3653: awslogs.RetentionDays_TEN_YEARS,
}

// withDefaults returns p with every unset optional field set to its default.
func (p Props) withDefaults() Props {
	if p.StreamCompute == "" {
		p.StreamCompute = ComputeInvocation
	}
	if p.StreamCompute == ComputeManagedInstances {
		if p.StreamMemoryMB == 0 {
			p.StreamMemoryMB = DefaultManagedStreamMemoryMB
		}
		if len(p.InstanceTypes) == 0 {
			p.InstanceTypes = DefaultInstanceTypes
		}
		if p.MaxVCpu == 0 {
			p.MaxVCpu = DefaultMaxVCpu
		}
		if p.StreamMaxConcurrency == 0 {
			p.StreamMaxConcurrency = DefaultStreamMaxConcurrency
		}
		if p.MemoryGiBPerVCpu == 0 {
			p.MemoryGiBPerVCpu = DefaultMemoryGiBPerVCpu
		}
		if p.StreamFlushInterval == 0 {
			p.StreamFlushInterval = DefaultManagedStreamFlushInterval
		}
		if p.StreamReservedConcurrency == 0 {
			// No reserved concurrency on a capacity provider: the limit the
			// concurrency alarm watches is the provider's ceiling instead.
			p.StreamReservedConcurrency = p.managedStreamCeiling()
		}
	}
	if p.StreamMemoryMB == 0 {
		p.StreamMemoryMB = DefaultStreamMemoryMB
	}
	if p.StreamReservedConcurrency == 0 {
		p.StreamReservedConcurrency = DefaultStreamReservedConcurrency
	}
	if p.HeartbeatInterval == 0 {
		p.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if p.LogLevel == "" {
		p.LogLevel = DefaultLogLevel
	}
	if p.LogRetentionDays == 0 {
		p.LogRetentionDays = DefaultLogRetentionDays
	}
	if p.AccessTokenUserClaim == "" {
		p.AccessTokenUserClaim = DefaultAccessTokenUserClaim
	}
	if p.RedisNodeType == "" {
		p.RedisNodeType = DefaultRedisNodeType
	}
	if p.Ops.WafRateLimit == 0 {
		p.Ops.WafRateLimit = DefaultWafRateLimit
	}
	return p
}

// Validate reports every problem of p (after defaults) at once.
func (p Props) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	p.validateAssets(bad)
	p.validateFunctions(bad)
	errs = append(errs, p.validateCompute()...)
	p.validateService(bad)
	p.validateAccessToken(bad)
	p.validateEdge(bad)
	p.Ops.validate(p, bad)
	if p.Existing != nil {
		p.validateExisting(bad)
	} else {
		p.validateNewRedis(bad)
	}
	return errors.Join(errs...)
}

// validateAssets: every deployed function's bootstrap is under AssetRoot.
func (p Props) validateAssets(bad func(format string, args ...any)) {
	if p.AssetRoot == "" {
		bad("assetRoot: required (the directory holding bin/<fn>/bootstrap)")
		return
	}
	for _, fn := range p.functionNames() {
		path := filepath.Join(p.AssetRoot, "bin", fn, "bootstrap")
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			bad("assetRoot: %s is missing (run `make build`)", path)
		}
	}
}

// validateFunctions checks the CORS origins and the stream function's
// size and concurrency.
func (p Props) validateFunctions(bad func(format string, args ...any)) {
	for _, o := range p.DashboardOrigins {
		if err := validOrigin(o); err != nil {
			bad("dashboardOrigins: %q: %v", o, err)
		}
	}
	// Lambda memory is 128..10240 MB (managed instances: validateCompute).
	if p.StreamCompute != ComputeManagedInstances && (p.StreamMemoryMB < 128 || p.StreamMemoryMB > 10240) {
		bad("streamMemoryMb: %d is outside 128..10240", p.StreamMemoryMB)
	}
	if p.StreamReservedConcurrency < 1 {
		bad("streamReservedConcurrency: %d must be at least 1", p.StreamReservedConcurrency)
	}
}

// validateService checks the settings handed to the functions' environment:
// heartbeat, flush interval, logging and connection limits.
func (p Props) validateService(bad func(format string, args ...any)) {
	// CloudFront cuts an origin that sends nothing for OriginReadTimeout; two
	// heartbeats per timeout leave room for one late or lost write.
	if p.HeartbeatInterval < time.Second || p.HeartbeatInterval > OriginReadTimeout/2 {
		bad("heartbeatInterval: %s must be between 1s and %s (half the CloudFront origin read timeout)", p.HeartbeatInterval, OriginReadTimeout/2)
	}
	if f := p.StreamFlushInterval; f != StreamFlushOff && (f < 0 || f > MaxStreamFlushInterval) {
		bad("streamFlushInterval: %s must be between 0s (off) and %s", f, MaxStreamFlushInterval)
	}
	switch p.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel: %q is not one of debug, info, warn, error", p.LogLevel)
	}
	if _, ok := logRetention[p.LogRetentionDays]; !ok {
		bad("logRetentionDays: %d is not a CloudWatch Logs retention period", p.LogRetentionDays)
	}
	switch p.ConnectionLimitPolicy {
	case "", "evict-oldest", "reject":
	default:
		bad("connectionLimitPolicy: %q is not evict-oldest or reject", p.ConnectionLimitPolicy)
	}
	if p.MaxStreamsPerIP < 0 {
		bad("maxStreamsPerIp: %d must not be negative", p.MaxStreamsPerIP)
	}
}

// validateAccessToken checks how the ticket function verifies the main
// app's access tokens.
func (p Props) validateAccessToken(bad func(format string, args ...any)) {
	if p.AccessTokenSecretArn != "" && p.AccessTokenPublicKey != "" {
		bad("accessTokenSecretArn and accessTokenPublicKey: set at most one")
	}
	if p.AccessTokenSecretArn != "" && !secretArnPattern.MatchString(p.AccessTokenSecretArn) {
		bad("accessTokenSecretArn: %q is not a complete Secrets Manager ARN (with its 6-character suffix)", p.AccessTokenSecretArn)
	}
	if p.AccessTokenPublicKey != "" && !strings.Contains(p.AccessTokenPublicKey, "-----BEGIN PUBLIC KEY-----") {
		bad("accessTokenPublicKey: not a PEM public key (-----BEGIN PUBLIC KEY-----)")
	}
	if !claimPattern.MatchString(p.AccessTokenUserClaim) {
		bad("accessTokenUserClaim: %q is not a claim name", p.AccessTokenUserClaim)
	}
}

// validateEdge checks the alarm topic and the distribution's web ACL,
// domain name and certificate.
func (p Props) validateEdge(bad func(format string, args ...any)) {
	if p.AlarmTopicArn != "" && !snsArnPattern.MatchString(p.AlarmTopicArn) {
		bad("alarmTopicArn: %q is not an SNS topic ARN", p.AlarmTopicArn)
	}
	if p.WebACLArn != "" && !wafArnPattern.MatchString(p.WebACLArn) {
		bad("webAclArn: %q is not a global (CLOUDFRONT) WAFv2 web ACL ARN", p.WebACLArn)
	}
	if (p.DomainName == "") != (p.CertificateArn == "") {
		bad("domainName and certificateArn: set both or neither")
	}
	if p.DomainName != "" && !domainPattern.MatchString(p.DomainName) {
		bad("domainName: %q is not a lower-case DNS name", p.DomainName)
	}
	if p.CertificateArn != "" && !acmArnPattern.MatchString(p.CertificateArn) {
		bad("certificateArn: %q is not an ACM certificate ARN in us-east-1 (CloudFront needs us-east-1)", p.CertificateArn)
	}
}

// validateExisting checks the existing VPC and Redis p.Existing names;
// the new-Redis settings do not apply to them.
func (p Props) validateExisting(bad func(format string, args ...any)) {
	e := p.Existing
	if p.RedisSingleNode || p.RedisNodeType != DefaultRedisNodeType || len(p.RedisClientSecurityGroupIDs) > 0 {
		bad("redisNodeType, redisSingleNode, redisClientSecurityGroupIds: only for a new Redis, not with vpcId")
	}
	if !vpcIDPattern.MatchString(e.VpcID) {
		bad("vpcId: %q is not a VPC id", e.VpcID)
	}
	if len(e.SubnetIDs) == 0 {
		bad("subnetIds: required with vpcId (the private subnets the functions run in)")
	}
	for _, s := range e.SubnetIDs {
		if !subnetIDPattern.MatchString(s) {
			bad("subnetIds: %q is not a subnet id", s)
		}
	}
	if !sgIDPattern.MatchString(e.SecurityGroupID) {
		bad("securityGroupId: %q is not a security group id", e.SecurityGroupID)
	}
	if host, port, err := net.SplitHostPort(e.RedisEndpoint); err != nil || host == "" || !validPort(port) {
		bad("redisEndpoint: %q is not host:port", e.RedisEndpoint)
	}
	if e.RedisUsername != "" && !redisUserPattern.MatchString(e.RedisUsername) {
		bad("redisUsername: %q is not an ElastiCache user name", e.RedisUsername)
	}
	if e.RedisAuthSecretArn != "" && !secretArnPattern.MatchString(e.RedisAuthSecretArn) {
		bad("redisAuthSecretArn: %q is not a complete Secrets Manager ARN (with its 6-character suffix)", e.RedisAuthSecretArn)
	}
}

// validateNewRedis checks the settings of the Redis the stack creates.
func (p Props) validateNewRedis(bad func(format string, args ...any)) {
	if !nodeTypePattern.MatchString(p.RedisNodeType) {
		bad("redisNodeType: %q is not a cache node type", p.RedisNodeType)
	}
	for _, id := range p.RedisClientSecurityGroupIDs {
		if !sgIDPattern.MatchString(id) {
			bad("redisClientSecurityGroupIds: %q is not a security group id", id)
		}
	}
}

// functionNames are the functions this configuration deploys.
func (p Props) functionNames() []string {
	if p.Simulator {
		return append(append([]string(nil), Functions...), SimulatorFunction)
	}
	return Functions
}

// validOrigin accepts a browser origin: https://host[:port], or http:// for
// localhost only. "*" is refused: CORS here allows credentials.
func validOrigin(o string) error {
	if o == "*" {
		return errors.New("a wildcard cannot be used with credentials: list the dashboard origins")
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("not scheme://host[:port]")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1"):
	default:
		return errors.New("must be https (http only for localhost)")
	}
	if u.Port() != "" && !validPort(u.Port()) {
		return errors.New("bad port")
	}
	return nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// ContextKeys are the CDK context keys PropsFromContext reads (-c key=value
// or cdk.json "context"). Lists are comma-separated.
var ContextKeys = []string{
	"assetRoot", "dashboardOrigins", "simulator",
	"streamMemoryMb", "streamReservedConcurrency", "heartbeatInterval", "streamFlushInterval",
	"logLevel", "logRetentionDays", "connectionLimitPolicy", "maxStreamsPerIp",
	"accessTokenSecretArn", "accessTokenPublicKey", "accessTokenUserClaim",
	"alarmTopicArn", "webAclArn", "domainName", "certificateArn",
	"redisNodeType", "redisSingleNode", "redisClientSecurityGroupIds",
	"vpcId", "subnetIds", "securityGroupId", "redisEndpoint", "redisPlaintext",
	"redisAuthSecretArn", "secretsEndpoint",
	"streamCompute", "instanceTypes", "maxVCpu", "streamMaxConcurrency", "memoryPerVCpu",
}

// PropsFromContext builds Props from CDK context values. get returns nil for
// an unset key; values are strings from -c, or JSON values from cdk.json.
// Unknown keys are not an error (CDK keeps its own keys in context too).
func PropsFromContext(get func(key string) any) (Props, error) {
	c := ctxReader{get: get}
	p := Props{
		AssetRoot:                   c.str("assetRoot"),
		DashboardOrigins:            c.list("dashboardOrigins"),
		Simulator:                   c.boolean("simulator"),
		StreamMemoryMB:              c.integer("streamMemoryMb"),
		StreamReservedConcurrency:   c.integer("streamReservedConcurrency"),
		HeartbeatInterval:           c.duration("heartbeatInterval"),
		StreamFlushInterval:         c.flushInterval("streamFlushInterval"),
		LogLevel:                    c.str("logLevel"),
		LogRetentionDays:            c.integer("logRetentionDays"),
		ConnectionLimitPolicy:       c.str("connectionLimitPolicy"),
		MaxStreamsPerIP:             c.integer("maxStreamsPerIp"),
		AccessTokenSecretArn:        c.str("accessTokenSecretArn"),
		AccessTokenPublicKey:        c.str("accessTokenPublicKey"),
		AccessTokenUserClaim:        c.str("accessTokenUserClaim"),
		AlarmTopicArn:               c.str("alarmTopicArn"),
		WebACLArn:                   c.str("webAclArn"),
		DomainName:                  c.str("domainName"),
		CertificateArn:              c.str("certificateArn"),
		RedisNodeType:               c.str("redisNodeType"),
		RedisSingleNode:             c.boolean("redisSingleNode"),
		RedisClientSecurityGroupIDs: c.list("redisClientSecurityGroupIds"),
		StreamCompute:               c.str("streamCompute"),
		InstanceTypes:               c.list("instanceTypes"),
		MaxVCpu:                     c.integer("maxVCpu"),
		StreamMaxConcurrency:        c.integer("streamMaxConcurrency"),
		MemoryGiBPerVCpu:            c.integer("memoryPerVCpu"),
	}
	existingKeys := []string{"vpcId", "subnetIds", "securityGroupId", "redisEndpoint", "redisPlaintext", "redisAuthSecretArn", "secretsEndpoint"}
	for _, k := range existingKeys {
		if get(k) != nil {
			p.Existing = &Existing{
				VpcID:              c.str("vpcId"),
				SubnetIDs:          c.list("subnetIds"),
				SecurityGroupID:    c.str("securityGroupId"),
				RedisEndpoint:      c.str("redisEndpoint"),
				RedisUsername:      c.str("redisUsername"),
				RedisPlaintext:     c.boolean("redisPlaintext"),
				RedisAuthSecretArn: c.str("redisAuthSecretArn"),
				SecretsEndpoint:    c.boolean("secretsEndpoint"),
			}
			break
		}
	}
	p.Ops = opsFromContext(&c)
	return p, errors.Join(c.errs...)
}

// ctxReader converts context values and collects every conversion error.
type ctxReader struct {
	get  func(string) any
	errs []error
}

func (c *ctxReader) str(k string) string {
	switch v := c.get(k).(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	default:
		c.errs = append(c.errs, fmt.Errorf("%s: want a string, got %v", k, v))
		return ""
	}
}

func (c *ctxReader) list(k string) []string {
	var out []string
	switch v := c.get(k).(type) {
	case nil:
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				c.errs = append(c.errs, fmt.Errorf("%s: want strings, got %v", k, e))
				continue
			}
			out = append(out, strings.TrimSpace(s))
		}
	default:
		c.errs = append(c.errs, fmt.Errorf("%s: want a comma-separated string or a list, got %v", k, v))
	}
	return out
}

func (c *ctxReader) boolean(k string) bool {
	switch v := c.get(k).(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %q is not true or false", k, v))
		}
		return b
	default:
		c.errs = append(c.errs, fmt.Errorf("%s: want true or false, got %v", k, v))
		return false
	}
}

func (c *ctxReader) integer(k string) int {
	switch v := c.get(k).(type) {
	case nil:
		return 0
	case float64:
		if v != float64(int(v)) {
			c.errs = append(c.errs, fmt.Errorf("%s: %v is not an integer", k, v))
		}
		return int(v)
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %q is not an integer", k, v))
		}
		return n
	default:
		c.errs = append(c.errs, fmt.Errorf("%s: want an integer, got %v", k, v))
		return 0
	}
}

func (c *ctxReader) duration(k string) time.Duration {
	s := c.str(k)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s: %q is not a duration like 25s", k, s))
	}
	return d
}

// flushInterval reads a duration where an explicit 0 differs from unset:
// unset leaves the compute mode's default, 0 ("0s") is StreamFlushOff.
func (c *ctxReader) flushInterval(k string) time.Duration {
	d := c.duration(k)
	s, _ := c.get(k).(string)
	switch {
	case d < 0:
		c.errs = append(c.errs, fmt.Errorf("%s: %q is negative (0s turns it off)", k, s))
		return 0
	case d == 0 && strings.TrimSpace(s) != "":
		return StreamFlushOff
	}
	return d
}
