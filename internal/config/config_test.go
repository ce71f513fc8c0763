package config

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeartbeatInterval != 25*time.Second || c.RealtimeMinInterval != time.Second ||
		c.MaxDevicesPerStream != 10 || c.MaxAlertStreams != 1 || c.MaxDataStreams != 1 ||
		c.MaxStreamsPerIP != 5 || c.ConnectionLimitPolicy != "evict-oldest" ||
		c.StreamMaxDuration != 0 || c.AccessTokenUserClaim != "sub" || c.MaxConcurrency != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	if !reflect.DeepEqual(c.Keys, DefaultKeys()) {
		t.Fatalf("keys: %+v", c.Keys)
	}
	if got := c.Keys.UserDevices("7"); got != "sse:user:7:devices" {
		t.Fatal(got)
	}
	if got := c.Keys.Status("C02"); got != "machine:C02:status" {
		t.Fatal(got)
	}
	if got := c.Keys.AlertHistory("C02"); got != "machine:C02:alerts" {
		t.Fatal(got)
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"REDIS_URL":                  "rediss://cache:6379",
		"ACCESS_TOKEN_SECRET_ARN":    "arn:aws:secretsmanager:eu-west-1:1:secret:a",
		"ACCESS_TOKEN_USER_CLAIM":    "userId",
		"STREAM_TICKET_SECRET":       strings.Repeat("s", 32),
		"CORS_ALLOWED_ORIGINS":       "https://dash.example.com, http://localhost:5173/",
		"HEARTBEAT_INTERVAL":         "10s",
		"REALTIME_MIN_INTERVAL":      "250ms",
		"MAX_DEVICES_PER_STREAM":     "3",
		"MAX_ALERT_STREAMS_PER_USER": "2",
		"MAX_DATA_STREAMS_PER_USER":  "4",
		"MAX_STREAMS_PER_IP":         "9",
		"CONNECTION_LIMIT_POLICY":    "reject",
		"STREAM_MAX_DURATION":        "90",
		"LOG_LEVEL":                  "debug",
		"REDIS_CHANNEL_ALERTS":       "x:alerts",
		"REDIS_USER_DEVICES_KEY":     "owners:{userId}",
		"AWS_LAMBDA_MAX_CONCURRENCY": "200",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "rediss://cache:6379" || c.AccessTokenSecret.ARN == "" || c.AccessTokenUserClaim != "userId" ||
		c.HeartbeatInterval != 10*time.Second || c.RealtimeMinInterval != 250*time.Millisecond ||
		c.MaxDevicesPerStream != 3 || c.MaxAlertStreams != 2 || c.MaxDataStreams != 4 || c.MaxStreamsPerIP != 9 ||
		c.ConnectionLimitPolicy != "reject" || c.StreamMaxDuration != 90*time.Second || c.LogLevel.String() != "DEBUG" ||
		c.Keys.Channel(channel.Alert) != "x:alerts" || c.Keys.UserDevices("1") != "owners:1" || c.MaxConcurrency != 200 {
		t.Fatalf("%+v", c)
	}
	if fmt.Sprint(c.CORSAllowedOrigins) != "[https://dash.example.com http://localhost:5173]" {
		t.Fatal(c.CORSAllowedOrigins)
	}
	if !c.NeedsSecretsManager() {
		t.Fatal("ARN given: needs Secrets Manager")
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{
		"REDIS_URL":                  "http://x",
		"ACCESS_TOKEN_SECRET":        "a",
		"ACCESS_TOKEN_PUBLIC_KEY":    "b",
		"STREAM_TICKET_SECRET":       "x",
		"STREAM_TICKET_SECRET_ARN":   "arn:x",
		"HEARTBEAT_INTERVAL":         "soon",
		"MAX_DEVICES_PER_STREAM":     "0",
		"CONNECTION_LIMIT_POLICY":    "random",
		"CORS_ALLOWED_ORIGINS":       "*,ftp://x",
		"LOG_LEVEL":                  "loud",
		"REDIS_STATUS_KEY":           "machine:status",
		"MAX_DATA_STREAMS_PER_USER":  "two",
		"AWS_LAMBDA_MAX_CONCURRENCY": "1601",
	}))
	if err == nil {
		t.Fatal("want error")
	}
	for _, name := range []string{"REDIS_URL", "ACCESS_TOKEN_SECRET and ACCESS_TOKEN_PUBLIC_KEY",
		"STREAM_TICKET_SECRET and STREAM_TICKET_SECRET_ARN", "HEARTBEAT_INTERVAL", "MAX_DEVICES_PER_STREAM",
		"CONNECTION_LIMIT_POLICY", `"*"`, "ftp://x", "LOG_LEVEL", "REDIS_STATUS_KEY", "MAX_DATA_STREAMS_PER_USER",
		"AWS_LAMBDA_MAX_CONCURRENCY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), `"a"`) {
		t.Error("error shows a secret value")
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	c, _ := Load(env(nil))
	err := c.Require(NeedRedis | NeedAccessToken | NeedTicketSecret)
	for _, name := range []string{"REDIS_URL", "ACCESS_TOKEN_SECRET", "STREAM_TICKET_SECRET"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("missing %s not reported: %v", name, err)
		}
	}
	c, _ = Load(env(map[string]string{"REDIS_URL": "redis://x:1", "ACCESS_TOKEN_PUBLIC_KEY": "pem", "STREAM_TICKET_SECRET_ARN": "arn:x"}))
	if err := c.Require(NeedRedis | NeedAccessToken | NeedTicketSecret); err != nil {
		t.Fatal(err)
	}
}

type fakeSM struct {
	values map[string]string
	calls  []string
}

func (f *fakeSM) GetSecret(_ context.Context, arn string) (string, error) {
	f.calls = append(f.calls, arn)
	v, ok := f.values[arn]
	if !ok {
		return "", errors.New("ResourceNotFoundException")
	}
	return v, nil
}

func TestResolveFromSecretsManager(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 40)
	c, err := Load(env(map[string]string{
		"ACCESS_TOKEN_SECRET_ARN":  "arn:aws:sm:1",
		"STREAM_TICKET_SECRET_ARN": "arn:aws:sm:2",
		"REDIS_AUTH_SECRET":        "inline",
	}))
	if err != nil {
		t.Fatal(err)
	}
	sm := &fakeSM{values: map[string]string{"arn:aws:sm:1": "hs-secret", "arn:aws:sm:2": long}}
	if err := c.Resolve(context.Background(), sm); err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenSecret.Value != "hs-secret" || c.StreamTicketSecret.Value != long || c.RedisAuth.Value != "inline" {
		t.Fatalf("%+v", c)
	}
	if len(sm.calls) != 2 {
		t.Fatalf("calls %v: each ARN is read once, inline values not at all", sm.calls)
	}
	if s := fmt.Sprintf("%v %v", c.AccessTokenSecret, c.StreamTicketSecret); strings.Contains(s, "hs-secret") || strings.Contains(s, long) {
		t.Fatal("Secret prints its value")
	}
}

func TestResolveReportsAll(t *testing.T) {
	t.Parallel()
	c, _ := Load(env(map[string]string{
		"ACCESS_TOKEN_SECRET_ARN":  "arn:missing",
		"STREAM_TICKET_SECRET_ARN": "arn:short",
	}))
	err := c.Resolve(context.Background(), &fakeSM{values: map[string]string{"arn:short": "tiny"}})
	if err == nil || !strings.Contains(err.Error(), "ACCESS_TOKEN_SECRET_ARN") || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "tiny") {
		t.Fatal("error shows the secret")
	}
}

func TestKeysEnvRoundTrip(t *testing.T) {
	t.Parallel()
	want := DefaultKeys().WithPrefix("t:abc:")
	env := want.Env()
	if len(env) != 9 {
		t.Fatalf("%d settings", len(env))
	}
	c, err := Load(func(k string) string { return env[k] })
	if err != nil || !reflect.DeepEqual(c.Keys, want) {
		t.Fatalf("%+v %v", c.Keys, err)
	}
}

// TestLoadReportsSecretLengthWithTheRest: a short inline ticket secret is
// reported together with the other problems, not after they are fixed.
func TestLoadReportsSecretLengthWithTheRest(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"HEARTBEAT_INTERVAL": "abc", "STREAM_TICKET_SECRET": "short"}))
	for _, name := range []string{"HEARTBEAT_INTERVAL", "STREAM_TICKET_SECRET: must be at least"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not report %s: %v", name, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "short") {
		t.Error("error shows the secret")
	}
}
