// Package redistest gives tests a real Redis: the one at REDIS_URL if set,
// otherwise a redis-server of its own on a free port, started once per test
// binary. Each test gets a unique key prefix and removes only the keys under
// it, so tests never flush or touch data they did not create.
//
// Without any Redis, tests skip, unless REQUIRE_REDIS=1, which fails them.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	once    sync.Once
	baseURL string
	initErr error
)

// URL returns a redis:// URL of a real server, or skips (fails with
// REQUIRE_REDIS=1) the test when there is none.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { baseURL, initErr = find() })
	if initErr != nil {
		if os.Getenv("REQUIRE_REDIS") == "1" {
			t.Fatalf("redistest: REQUIRE_REDIS=1 but no Redis: %v", initErr)
		}
		t.Skipf("redistest: no Redis (%v); set REDIS_URL or install redis-server", initErr)
	}
	return baseURL
}

// Client returns a client of its own for the test and a unique key prefix
// ("t:<random>:"). At cleanup it deletes every key under the prefix.
func Client(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c := redis.NewClient(opt)
	prefix := Prefix()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		// A cleanup that fails leaves keys behind for later tests: say so.
		if err := iter.Err(); err != nil {
			t.Errorf("redistest: cleanup of %s*: %v", prefix, err)
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("redistest: cleanup of %s*: %v", prefix, err)
			}
		}
		_ = c.Close()
	})
	return c, prefix
}

// DeadAddr returns a loopback host:port where nothing listens and, while
// the test runs, nothing can (on Linux the port is held by a socket that
// never listens), so a connect is refused at once: a Redis that is down.
func DeadAddr(t testing.TB) string {
	t.Helper()
	addr, release, err := reserveDead()
	if err != nil {
		t.Fatalf("redistest: reserve a dead port: %v", err)
	}
	t.Cleanup(release)
	return addr
}

// Prefix returns a fresh unique key prefix "t:<hex>:".
func Prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t:" + hex.EncodeToString(b[:]) + ":"
}

func find() (string, error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u, ping(u)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("REDIS_URL unset and no redis-server on PATH")
	}
	return start(bin)
}

func ping(u string) error {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// start runs a private redis-server on a free loopback port. It dies with
// the test binary (parent-death signal), so nothing is left running. The
// port is free when picked but may be taken before redis-server binds it,
// so a server that exits at start is tried again on another port.
func start(bin string) (string, error) {
	var err error
	for range 5 {
		var u string
		var retry bool
		if u, retry, err = startOnce(bin); err == nil || !retry {
			return u, err
		}
	}
	return "", err
}

func startOnce(bin string) (u string, retry bool, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", false, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return "", false, err
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	cmd.SysProcAttr = deathSignal()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", false, err
	}
	if err := cmd.Start(); err != nil {
		return "", false, err
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				signalled = true
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
		return fmt.Sprintf("redis://127.0.0.1:%d/0", port), false, nil
	case <-exited:
		return "", true, fmt.Errorf("redis-server exited at start on port %d", port)
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return "", false, fmt.Errorf("redis-server did not start")
	}
}
