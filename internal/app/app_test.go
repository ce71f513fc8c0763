package app

import (
	"testing"

	"github.com/machinedash/sse/internal/config"
)

// TestPoolSize: a classic environment keeps today's pool of 10; a process
// serving many invocations at once gets one more connection per 8 of them,
// up to 64.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{1: 10, 8: 10, 9: 11, 200: 34, 433: 64, 1000: 64, 1600: 64} {
		if got := PoolSize(n); got != want {
			t.Errorf("PoolSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestNewRedisTakesTheURLUserAndTheSecretPassword: an ElastiCache RBAC user
// comes in REDIS_URL (rediss://user@host:port, as infra's redisUsername
// writes it) and its password from REDIS_AUTH_SECRET, which wins over one
// in the URL.
func TestNewRedisTakesTheURLUserAndTheSecretPassword(t *testing.T) {
	t.Parallel()
	cfg := config.Config{RedisURL: "rediss://sse-app:url-pass@redis.example:6380"}
	cfg.RedisAuth.Value = "secret-pass"
	rdb, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	o := rdb.Options()
	if o.Username != "sse-app" || o.Password != "secret-pass" || o.Addr != "redis.example:6380" || o.TLSConfig == nil {
		t.Fatalf("user %q password %q addr %q tls %v", o.Username, o.Password, o.Addr, o.TLSConfig != nil)
	}
}
