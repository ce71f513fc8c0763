// Package config reads the service's configuration from the environment.
//
// Load is the only place that reads configuration: it takes a getenv
// function, applies the named defaults of DESIGN section 5 and reports every
// problem at once. Secrets may be given inline (X_SECRET) or as a Secrets
// Manager ARN (X_SECRET_ARN), which Resolve reads once at start-up. A
// Config's String never shows a secret.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/machinedash/sse/internal/ticket"
)

// Defaults, named so that docs and tests can refer to them.
const (
	DefaultUserClaim           = "sub"
	DefaultHeartbeatInterval   = 25 * time.Second
	DefaultRealtimeMinInterval = time.Second
	DefaultMaxDevicesPerStream = 10
	DefaultMaxAlertStreams     = 1
	DefaultMaxDataStreams      = 1
	DefaultMaxStreamsPerIP     = 5
	DefaultRotationWindow      = 60 * time.Second
	// DefaultMaxTicketsPerMinute allows a user a page load (two tickets)
	// every few seconds, for several tabs, and stops a loop of them.
	DefaultMaxTicketsPerMinute = 30
	// DefaultStreamMaxBytes keeps a stream well inside the 6 MB that a
	// streamed function URL response sends at full speed (then 2 MB/s).
	DefaultStreamMaxBytes = 4 << 20
	// DefaultStreamFlushInterval: see STREAM_FLUSH_INTERVAL in the README.
	DefaultStreamFlushInterval = 0
	MinStreamMaxDuration       = 5 * time.Second // STREAM_MAX_DURATION (and -max-stream) at least
	MaxStreamMaxDuration       = 24 * time.Hour
	PolicyEvictOldest          = "evict-oldest"
	PolicyReject               = "reject"
	// MaxConcurrencyLimit is the platform's largest per-environment
	// concurrency of Lambda Managed Instances.
	MaxConcurrencyLimit = 1600
)

// Config is the whole configuration of every function. Fields not needed by
// a function are simply unused there.
type Config struct {
	RedisURL  string // REDIS_URL; "" only in the local server (embedded Redis)
	RedisAuth Secret // REDIS_AUTH_SECRET(_ARN): AUTH password, overrides the URL's

	AccessTokenSecret    Secret // ACCESS_TOKEN_SECRET(_ARN): HS256
	AccessTokenPublicKey string // ACCESS_TOKEN_PUBLIC_KEY: PEM, RS256/ES256
	AccessTokenUserClaim string // ACCESS_TOKEN_USER_CLAIM
	StreamTicketSecret   Secret // STREAM_TICKET_SECRET(_ARN)
	OriginVerifySecret   Secret // ORIGIN_VERIFY_SECRET(_ARN): required X-Origin-Verify header when set

	TrustedClientIPHeader string   // TRUSTED_CLIENT_IP_HEADER: client IP header set by a trusted proxy
	CORSAllowedOrigins    []string // CORS_ALLOWED_ORIGINS, comma-separated; "*" is refused (credentials)

	HeartbeatInterval     time.Duration // HEARTBEAT_INTERVAL
	RealtimeMinInterval   time.Duration // REALTIME_MIN_INTERVAL
	MaxDevicesPerStream   int           // MAX_DEVICES_PER_STREAM
	MaxAlertStreams       int           // MAX_ALERT_STREAMS_PER_USER
	MaxDataStreams        int           // MAX_DATA_STREAMS_PER_USER
	MaxStreamsPerIP       int           // MAX_STREAMS_PER_IP
	ConnectionLimitPolicy string        // CONNECTION_LIMIT_POLICY
	StreamMaxDuration     time.Duration // STREAM_MAX_DURATION; 0 = up to the invocation deadline
	RotationWindow        time.Duration // STREAM_ROTATION_WINDOW: jitter window before the end
	MaxTicketsPerMinute   int           // MAX_TICKETS_PER_MINUTE: tickets issued per user per minute
	StreamMaxBytes        int           // STREAM_MAX_BYTES: rotate after writing this much
	StreamFlushInterval   time.Duration // STREAM_FLUSH_INTERVAL: least time between two writes of a stream

	LogLevel slog.Level // LOG_LEVEL: debug, info, warn, error
	Keys     Keys

	// MaxConcurrency is AWS_LAMBDA_MAX_CONCURRENCY, which Lambda Managed
	// Instances sets: how many invocations one process serves at once
	// (aws-lambda-go runs that many runtime loops). 1 when unset.
	MaxConcurrency int
}

// Secret is a configured secret: its value, or the ARN to read it from.
type Secret struct {
	Value string
	ARN   string
}

// String never reveals the value.
func (s Secret) String() string {
	switch {
	case s.Value != "":
		return "[set]"
	case s.ARN != "":
		return "[arn]"
	}
	return "[unset]"
}

// Set reports whether the secret has a value or an ARN.
func (s Secret) Set() bool { return s.Value != "" || s.ARN != "" }

// Load reads the configuration through getenv and reports every problem at
// once, joined.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		RedisURL:              p.str("REDIS_URL", ""),
		RedisAuth:             p.secret("REDIS_AUTH_SECRET"),
		AccessTokenSecret:     p.secret("ACCESS_TOKEN_SECRET"),
		AccessTokenPublicKey:  p.str("ACCESS_TOKEN_PUBLIC_KEY", ""),
		AccessTokenUserClaim:  p.str("ACCESS_TOKEN_USER_CLAIM", DefaultUserClaim),
		StreamTicketSecret:    p.secret("STREAM_TICKET_SECRET"),
		OriginVerifySecret:    p.secret("ORIGIN_VERIFY_SECRET"),
		TrustedClientIPHeader: p.str("TRUSTED_CLIENT_IP_HEADER", ""),
		CORSAllowedOrigins:    p.origins("CORS_ALLOWED_ORIGINS"),
		HeartbeatInterval:     p.duration("HEARTBEAT_INTERVAL", DefaultHeartbeatInterval, time.Second, 5*time.Minute),
		RealtimeMinInterval:   p.duration("REALTIME_MIN_INTERVAL", DefaultRealtimeMinInterval, 0, time.Hour),
		MaxDevicesPerStream:   p.integer("MAX_DEVICES_PER_STREAM", DefaultMaxDevicesPerStream, 1, 1000),
		MaxAlertStreams:       p.integer("MAX_ALERT_STREAMS_PER_USER", DefaultMaxAlertStreams, 1, 1000),
		MaxDataStreams:        p.integer("MAX_DATA_STREAMS_PER_USER", DefaultMaxDataStreams, 1, 1000),
		MaxStreamsPerIP:       p.integer("MAX_STREAMS_PER_IP", DefaultMaxStreamsPerIP, 1, 100000),
		ConnectionLimitPolicy: p.oneOf("CONNECTION_LIMIT_POLICY", PolicyEvictOldest, PolicyEvictOldest, PolicyReject),
		StreamMaxDuration:     p.duration("STREAM_MAX_DURATION", 0, MinStreamMaxDuration, MaxStreamMaxDuration),
		RotationWindow:        p.duration("STREAM_ROTATION_WINDOW", DefaultRotationWindow, 0, 10*time.Minute),
		MaxTicketsPerMinute:   p.integer("MAX_TICKETS_PER_MINUTE", DefaultMaxTicketsPerMinute, 1, 100000),
		StreamMaxBytes:        p.integer("STREAM_MAX_BYTES", DefaultStreamMaxBytes, 64<<10, 200<<20),
		StreamFlushInterval:   p.duration("STREAM_FLUSH_INTERVAL", DefaultStreamFlushInterval, 0, time.Second),
		LogLevel:              p.level("LOG_LEVEL"),
		Keys:                  p.keys(),
		MaxConcurrency:        p.integer("AWS_LAMBDA_MAX_CONCURRENCY", 1, 1, MaxConcurrencyLimit),
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.fail("REDIS_URL: want redis://host:port or rediss://host:port")
		}
	}
	if c.AccessTokenSecret.Set() && c.AccessTokenPublicKey != "" {
		p.fail("ACCESS_TOKEN_SECRET and ACCESS_TOKEN_PUBLIC_KEY: set one, not both")
	}
	if c.AccessTokenUserClaim == "" {
		p.fail("ACCESS_TOKEN_USER_CLAIM: must not be empty")
	}
	// An inline secret is checked here, with everything else; one read by
	// ARN is checked by Resolve once it has its value.
	if err := checkTicketSecret(c.StreamTicketSecret.Value); err != nil {
		p.errs = append(p.errs, err)
	}
	return c, errors.Join(p.errs...)
}

// Names returns every environment name Load reads, in the order it reads
// them: Load is the one list, so docs and help texts are checked against
// this.
func Names() []string {
	var names []string
	_, _ = Load(func(k string) string {
		names = append(names, k)
		return ""
	})
	return names
}

// Need names what a function requires beyond what Load checks for all.
type Need int

const (
	NeedRedis        Need = 1 << iota // REDIS_URL
	NeedAccessToken                   // ACCESS_TOKEN_SECRET or ACCESS_TOKEN_PUBLIC_KEY
	NeedTicketSecret                  // STREAM_TICKET_SECRET
)

// Require reports, at once, every required setting that is missing.
func (c Config) Require(n Need) error {
	var errs []error
	if n&NeedRedis != 0 && c.RedisURL == "" {
		errs = append(errs, errors.New("REDIS_URL: required"))
	}
	if n&NeedAccessToken != 0 && !c.AccessTokenSecret.Set() && c.AccessTokenPublicKey == "" {
		errs = append(errs, errors.New("ACCESS_TOKEN_SECRET, ACCESS_TOKEN_SECRET_ARN or ACCESS_TOKEN_PUBLIC_KEY: required"))
	}
	if n&NeedTicketSecret != 0 && !c.StreamTicketSecret.Set() {
		errs = append(errs, errors.New("STREAM_TICKET_SECRET or STREAM_TICKET_SECRET_ARN: required"))
	}
	return errors.Join(errs...)
}

// SecretGetter reads a secret's string value by ARN (Secrets Manager's
// GetSecretValue). It is called once per secret at start-up.
type SecretGetter interface {
	GetSecret(ctx context.Context, arn string) (string, error)
}

// Resolve replaces every secret given as an ARN by its value, and checks
// the lengths of those that have rules. All problems are reported at once;
// the error names the setting, never the value.
func (c *Config) Resolve(ctx context.Context, g SecretGetter) error {
	var errs []error
	for _, s := range []struct {
		name string
		sec  *Secret
	}{
		{"REDIS_AUTH_SECRET_ARN", &c.RedisAuth},
		{"ACCESS_TOKEN_SECRET_ARN", &c.AccessTokenSecret},
		{"STREAM_TICKET_SECRET_ARN", &c.StreamTicketSecret},
		{"ORIGIN_VERIFY_SECRET_ARN", &c.OriginVerifySecret},
	} {
		if s.sec.Value != "" || s.sec.ARN == "" {
			continue
		}
		if g == nil {
			errs = append(errs, fmt.Errorf("%s: no Secrets Manager client", s.name))
			continue
		}
		v, err := g.GetSecret(ctx, s.sec.ARN)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		case v == "":
			errs = append(errs, fmt.Errorf("%s: secret is empty", s.name))
		default:
			s.sec.Value = v
		}
	}
	if err := checkTicketSecret(c.StreamTicketSecret.Value); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkTicketSecret is the length rule of STREAM_TICKET_SECRET ("" is
// Require's business).
func checkTicketSecret(v string) error {
	if v != "" && len(v) < ticket.MinSecretLen {
		return fmt.Errorf("STREAM_TICKET_SECRET: must be at least %d bytes", ticket.MinSecretLen)
	}
	return nil
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) secret(name string) Secret {
	s := Secret{Value: p.getenv(name), ARN: strings.TrimSpace(p.getenv(name + "_ARN"))}
	if s.Value != "" && s.ARN != "" {
		p.fail("%s and %s_ARN: set one, not both", name, name)
	}
	if s.ARN != "" && !strings.HasPrefix(s.ARN, "arn:") {
		p.fail("%s_ARN: not an ARN", name)
	}
	return s
}

// Duration reads one duration setting by the rules of Load (a Go duration
// or bare seconds, within min..max; unset gives def), for the functions
// whose own settings are not part of Config (the simulator).
func Duration(getenv func(string) string, name string, def, min, max time.Duration) (time.Duration, error) {
	p := parser{getenv: getenv}
	d := p.duration(name, def, min, max)
	return d, errors.Join(p.errs...)
}

func (p *parser) duration(name string, def, min, max time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		// A bare number means seconds, as operators tend to write it.
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			p.fail("%s: %q is not a duration (e.g. 25s, 1m)", name, v)
			return def
		}
		d = time.Duration(n) * time.Second
	}
	if d < min || d > max {
		p.fail("%s: %s is outside %s..%s", name, d, min, max)
		return def
	}
	return d
}

func (p *parser) integer(name string, def, min, max int) int {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		p.fail("%s: %q must be an integer from %d to %d", name, v, min, max)
		return def
	}
	return n
}

func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail("%s: %q must be one of %s", name, v, strings.Join(allowed, ", "))
	return def
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return slog.LevelInfo
	}
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail("%s: %q must be debug, info, warn or error", name, v)
		return slog.LevelInfo
	}
	return l
}

func (p *parser) origins(name string) []string {
	var out []string
	for _, o := range strings.Split(p.getenv(name), ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		if o == "*" {
			p.fail("%s: \"*\" cannot be used with credentials; list the dashboard origins", name)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			p.fail("%s: %q is not an origin like https://dash.example.com", name, o)
			continue
		}
		out = append(out, o)
	}
	return out
}
