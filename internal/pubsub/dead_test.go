package pubsub

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/redistest"
)

// deadClient returns a client for a loopback port nobody listens on.
func deadClient(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: redistest.DeadAddr(t), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}
