package main

import (
	"regexp"
	"time"
)

// Ops are the operations settings: who the alarms reach, and the edge's
// optional protections. They live apart from Props' other fields so that
// the compute settings and these can change independently.
type Ops struct {
	// AlarmEmail subscribes this address to the alarm topic the stack
	// creates (not with AlarmTopicArn: that topic's subscriptions are its
	// owner's). AWS sends a confirmation mail first.
	AlarmEmail string
	// WAF adds the MachineSseWaf stack (us-east-1) with a web ACL: a
	// rate-based rule per IP (WafRateLimit requests in 5 minutes) and the
	// AWS managed common rule set. Its WebAclArn output goes to webAclArn.
	WAF          bool
	WafRateLimit int // default DefaultWafRateLimit
	// DistributionID (the main stack's DistributionId output) adds the
	// MachineSseEdge stack (us-east-1): access logs and the 5xx alarm.
	DistributionID string
}

// opsContextKeys are the context keys added with Ops (and the existing
// Redis's RBAC user name, read with the other Existing keys).
var opsContextKeys = []string{"alarmEmail", "redisUsername", "waf", "wafRateLimit", "distributionId"}

func init() { ContextKeys = append(ContextKeys, opsContextKeys...) }

// SimulatorTimeout bounds a simulator run below the one-minute schedule
// (its default SIMULATOR_DURATION is 50 s), so runs never overlap.
const SimulatorTimeout = 55 * time.Second

var (
	emailPattern        = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$`)
	distributionPattern = regexp.MustCompile(`^E[A-Z0-9]{8,20}$`)
)

// opsFromContext reads Ops.
func opsFromContext(c *ctxReader) Ops {
	return Ops{
		AlarmEmail: c.str("alarmEmail"), WAF: c.boolean("waf"), WafRateLimit: c.integer("wafRateLimit"),
		DistributionID: c.str("distributionId"),
	}
}

// validate adds the problems of o.
func (o Ops) validate(p Props, bad func(format string, args ...any)) {
	if o.AlarmEmail != "" && !emailPattern.MatchString(o.AlarmEmail) {
		bad("alarmEmail: %q is not an e-mail address", o.AlarmEmail)
	}
	// AWS WAF takes 10 to 2,000,000,000 requests per evaluation window.
	if o.WafRateLimit < 10 || o.WafRateLimit > 2_000_000_000 {
		bad("wafRateLimit: %d is outside 10..2000000000 requests per 5 minutes", o.WafRateLimit)
	}
	if o.DistributionID != "" && !distributionPattern.MatchString(o.DistributionID) {
		bad("distributionId: %q is not a CloudFront distribution id (the DistributionId output)", o.DistributionID)
	}
	if o.AlarmEmail != "" && p.AlarmTopicArn != "" {
		bad("alarmEmail and alarmTopicArn: subscribe the address to your own topic instead")
	}
}
