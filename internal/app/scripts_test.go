package app

import (
	"context"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/logtest"
	"github.com/machinedash/sse/internal/redistest"
)

// TestLoadScriptsWarnsOnlyWhenRedisFails: loading the scripts at start-up
// is quiet when Redis answers; a Redis that does not costs one warning and
// not the start (the scripts still run through their EVAL fallback). What
// it loads is the registry's TestLoadScripts.
func TestLoadScriptsWarnsOnlyWhenRedisFails(t *testing.T) {
	t.Parallel()
	up, _ := redistest.Client(t)
	down := redis.NewClient(&redis.Options{Addr: redistest.DeadAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	for _, tc := range []struct {
		name  string
		rdb   *redis.Client
		warns int
	}{{"redis up", up, 0}, {"redis down", down, 1}} {
		var log logtest.Log
		a, err := New(config.Config{Keys: config.DefaultKeys()}, tc.rdb, NewLogger(&log, slog.LevelInfo), nil)
		if err != nil {
			t.Fatal(err)
		}
		a.LoadScripts(context.Background())
		if got := len(log.Lines("redis scripts not loaded")); got != tc.warns {
			t.Errorf("%s: %d warnings, want %d:\n%s", tc.name, got, tc.warns, log.String())
		}
	}
}
