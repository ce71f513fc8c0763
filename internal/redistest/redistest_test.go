package redistest

import (
	"context"
	"os/exec"
	"testing"
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
