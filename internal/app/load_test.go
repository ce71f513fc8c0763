package app

import (
	"context"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/config"
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
