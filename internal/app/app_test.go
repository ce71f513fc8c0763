package app

import (
	"testing"

	"github.com/machinedash/sse/internal/config"
)

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
