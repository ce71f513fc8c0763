package pubsub

import (
	"net"

	"github.com/redis/go-redis/v9"
)

// deadClient returns a client for a loopback port nobody listens on.
func deadClient() *redis.Client {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	_ = l.Close()
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
}
