package pubsub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
)

// A connect whose caller gives up at any point of the barrier (its client
// hung up) must cost only that connect: the shared subscription stays, the
// open subscriptions are not told it was lost and keep receiving.
func TestCancelledConnectsNeverResetTheSharedSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a1 := f.sub(t, "a1", Filter{Devices: []string{"A"}})
	a2 := f.sub(t, "a2", Filter{Devices: []string{"A"}, Purpose: purpose.Alerts})

	var wg sync.WaitGroup
	gave := make(chan error, 300)
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			switch i % 3 {
			case 0: // gone before the ping is written
				cancel()
			case 1: // gone while the ping is in flight
				time.AfterFunc(time.Duration(rand.N(1000))*time.Microsecond, cancel)
			default: // gone a moment later, often after the answer
				time.AfterFunc(time.Duration(rand.N(4000))*time.Microsecond, cancel)
			}
			s, err := f.hub.Subscribe(ctx, fmt.Sprint("b", i), Filter{Devices: []string{"B"}}, QueueLimits{Capacity: 4})
			if err == nil {
				s.Close()
			} else {
				gave <- err
			}
			cancel()
		}()
	}
	wg.Wait()
	close(gave)
	n := 0
	for err := range gave {
		n++
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("cancelled connect: %v", err)
		}
	}
	if n == 0 {
		t.Fatal("no connect was cancelled during its barrier: the test proves nothing")
	}
	for _, s := range []*Subscription{a1, a2} {
		select {
		case <-s.Done():
			t.Fatalf("%s lost its subscription after %d cancelled connects", s.stream, n)
		default:
		}
	}
	f.pub("spc", `{"deviceId":"A","data":"after"}`)
	f.pub("alerts", `{"deviceId":"A","alert":"after"}`)
	next(t, a1, 1)
	next(t, a2, 1)
	if st := f.hub.Stats(); st.Resets != 0 {
		t.Fatalf("%d resets after %d cancelled connects", st.Resets, n)
	}
}

// A barrier that Redis never answers still resets the subscription, also
// when the caller that sent it has gone: a frozen connection is found.
func TestUnansweredBarrierResetsEvenWithoutItsCaller(t *testing.T) {
	t.Parallel()
	p := newFreezer(t, redistest.URL(t))
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	h := NewHub(rdb, Channels{Kinds: map[string]*channel.Kind{redistest.Prefix() + "rt": channel.Realtime}}, slog.New(slog.DiscardHandler), nil)
	h.barrierTimeout = 300 * time.Millisecond
	t.Cleanup(h.Close)
	a, err := h.Subscribe(t.Context(), "a", Filter{Devices: []string{"A"}}, QueueLimits{Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	p.freeze()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := h.Subscribe(ctx, "b", Filter{Devices: []string{"B"}}, QueueLimits{Capacity: 4}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a frozen connection was not reset")
	}
	if st := h.Stats(); st.Resets != 1 {
		t.Fatalf("resets %d, want 1", st.Resets)
	}
}

// freezer is a TCP proxy in front of a real Redis that can stop passing
// the server's answers on, as a frozen or partitioned connection would.
type freezer struct {
	l      net.Listener
	frozen atomic.Bool
}

func newFreezer(t *testing.T, redisURL string) *freezer {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezer{l: l}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", opt.Addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, up)
			mu.Unlock()
			conns.Add(2)
			stop := func() { c.Close(); up.Close() }
			go func() { defer conns.Done(); defer stop(); _, _ = io.Copy(up, c) }()
			go func() {
				defer conns.Done()
				defer stop()
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if err != nil {
						return
					}
					if p.frozen.Load() {
						continue // swallowed: the client never hears back
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *freezer) addr() string { return p.l.Addr().String() }
func (p *freezer) freeze()      { p.frozen.Store(true) }
