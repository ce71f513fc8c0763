package app

import (
	"context"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/redistest"
)

// TestLoadReportsEveryProblemAtOnce: invalid values, a short secret and a
// missing setting come in one error, so one fix-and-retry round is enough.
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HEARTBEAT_INTERVAL": "abc", "STREAM_TICKET_SECRET": "short"}
	_, err := Load(context.Background(), func(k string) string { return env[k] }, config.NeedRedis|config.NeedTicketSecret)
	if err == nil {
		t.Fatal("Load accepted an invalid configuration")
	}
	for _, want := range []string{"HEARTBEAT_INTERVAL", "STREAM_TICKET_SECRET: must be at least", "REDIS_URL: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestLoadBuildsTheAccessVerifierWhenAsked: Load builds the access-token verifier only for a
// main that asks for AccessTokens (the ticket function, the local server), and then refuses a
// key that is not one.
func TestLoadBuildsTheAccessVerifierWhenAsked(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"REDIS_URL": redistest.URL(t), "STREAM_TICKET_SECRET": strings.Repeat("k", 40), "ACCESS_TOKEN_SECRET": "access-token-secret",
	}
	getenv := func(k string) string { return env[k] }
	need := config.NeedRedis | config.NeedTicketSecret | config.NeedAccessToken
	a, err := Load(context.Background(), getenv, need)
	if err != nil || a.Access != nil {
		t.Fatalf("without AccessTokens: %v, %v; want no verifier", a, err)
	}
	t.Cleanup(func() { _ = a.Redis.Close() })
	b, err := Load(context.Background(), getenv, need, AccessTokens)
	if err != nil || b.Access == nil {
		t.Fatalf("with AccessTokens: %v, %v", b, err)
	}
	t.Cleanup(func() { _ = b.Redis.Close() })
	delete(env, "ACCESS_TOKEN_SECRET")
	env["ACCESS_TOKEN_PUBLIC_KEY"] = "not a PEM key"
	if _, err := Load(context.Background(), getenv, need, AccessTokens); err == nil || !strings.Contains(err.Error(), "ACCESS_TOKEN_PUBLIC_KEY") {
		t.Fatalf("a bad public key: %v", err)
	}
}
