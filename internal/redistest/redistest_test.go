package redistest

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestClientPrefixCleanup(t *testing.T) {
	var prefix string
	t.Run("inner", func(t *testing.T) {
		c, p := Client(t)
		prefix = p
		if err := c.Set(context.Background(), p+"a", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	// The inner test's cleanup deleted its key; a fresh client sees none.
	c, _ := Client(t)
	if n := c.Exists(context.Background(), prefix+"a").Val(); n != 0 {
		t.Fatalf("key under %q survived cleanup", prefix)
	}
}

func TestPrivateServer(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server")
	}
	u, err := start(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(u); err != nil {
		t.Fatal(err)
	}
}

// TestDeadAddr: a connect to it is refused, and no listener can take its
// port while the test runs (so a test that needs a Redis that is down
// cannot meet a server that started there meanwhile).
func TestDeadAddr(t *testing.T) {
	addr := DeadAddr(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the port is only held on Linux")
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("listen on %s succeeded: the port is not held", addr)
	}
}
