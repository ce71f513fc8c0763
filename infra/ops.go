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
}

// opsContextKeys are the context keys added with Ops (and the existing
// Redis's RBAC user name, read with the other Existing keys).
var opsContextKeys = []string{"alarmEmail", "redisUsername"}

func init() { ContextKeys = append(ContextKeys, opsContextKeys...) }

// SimulatorTimeout bounds a simulator run below the one-minute schedule
// (its default SIMULATOR_DURATION is 50 s), so runs never overlap.
const SimulatorTimeout = 55 * time.Second

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$`)

// opsFromContext reads Ops.
func opsFromContext(c *ctxReader) Ops {
	return Ops{AlarmEmail: c.str("alarmEmail")}
}

// validate adds the problems of o.
func (o Ops) validate(p Props, bad func(format string, args ...any)) {
	if o.AlarmEmail != "" && !emailPattern.MatchString(o.AlarmEmail) {
		bad("alarmEmail: %q is not an e-mail address", o.AlarmEmail)
	}
	if o.AlarmEmail != "" && p.AlarmTopicArn != "" {
		bad("alarmEmail and alarmTopicArn: subscribe the address to your own topic instead")
	}
}
