package stream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
)

// TestFailedFirstWriteIsAnEndNotARefusal: once admission has written 200, a
// client that does not take the first events has a stream that ended
// (write-failed), not a soft refusal, which would feed the refusal alarm.
func TestFailedFirstWriteIsAnEndNotARefusal(t *testing.T) {
	t.Parallel()
	u := newUnit(t, 0)
	tk := u.ticket("1", "C01")
	w := &funcWriter{header: http.Header{}, write: func() error { return errors.New("connection reset") }}
	select {
	case <-u.serve(w, tk):
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
	var m strings.Builder
	u.h.d.Metrics.WritePrometheus(&m)
	if !strings.Contains(m.String(), `sse_streams_ended_total{purpose="alerts",reason="write-failed"} 1`) {
		t.Errorf("not counted as a write-failed end:\n%s", m.String())
	}
	if strings.Contains(m.String(), `sse_refusals_total{`) {
		t.Errorf("counted as a refusal:\n%s", m.String())
	}
	if counts, _, err := u.reg.List(t.Context(), "1", u.clock.Now()); err != nil || counts.Alerts != 0 {
		t.Fatalf("lease not released: %+v %v", counts, err)
	}
}

// cmdLog records the names of the commands a client sends.
type cmdLog struct {
	mu    sync.Mutex
	names []string
}

func (l *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (l *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.mu.Lock()
		l.names = append(l.names, cmd.Name())
		l.mu.Unlock()
		return next(ctx, cmd)
	}
}

// TestMalformedReportAfterTheReleaseAndNotLost: the malformed count goes to
// Redis after the lease release (the deadline margin has no room for it
// before), and a report that fails gives its count back to the hub.
func TestMalformedReportAfterTheReleaseAndNotLost(t *testing.T) {
	t.Parallel()
	u := newUnit(t, 0)
	tk := u.ticket("1", "C01")
	// Not an integer: INCRBY fails, as it would with Redis unreachable.
	if err := u.rdb.Set(t.Context(), u.keys.MalformedCount(), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cmds := &cmdLog{}
	u.rdb.AddHook(cmds)
	w := &funcWriter{header: http.Header{}, write: func() error { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.h.Alerts().ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/sse/alerts?ticket="+url.QueryEscape(tk), nil))
	}()
	bounded := time.After(5 * time.Second)
	for u.h.Open() == 0 {
		select {
		case <-bounded:
			t.Fatal("the stream did not open")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := u.rdb.Publish(t.Context(), u.keys.Channel(channel.Alert), `not json`).Err(); err != nil {
		t.Fatal(err)
	}
	for u.hub.Stats().Malformed == 0 {
		select {
		case <-bounded:
			t.Fatal("the malformed message was not counted")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-bounded:
		t.Fatal("the stream did not end")
	}
	cmds.mu.Lock()
	names := slices.Clone(cmds.names)
	cmds.mu.Unlock()
	incr := slices.Index(names, "incrby")
	release := -1
	for i, n := range names {
		if n == "evalsha" || n == "eval" {
			release = i // the last script is the release
		}
	}
	if incr < 0 || release < 0 || incr < release {
		t.Fatalf("commands %v: want the release (evalsha) before incrby", names)
	}
	if n := u.hub.TakeMalformed(); n != 1 {
		t.Fatalf("after the failed report the hub has %d unreported, want 1", n)
	}
}
