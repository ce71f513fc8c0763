package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
)

// TestByteLimitHoldsWithinABatch: a stream whose queue holds far more than
// its byte budget when it wakes (a slow wake-up on a busy machine) writes no
// more than the budget plus the event that crosses it, then rotates. Checked
// only after each batch, the budget let a whole queue through
// (TestByteLimitRotatesWithRetry saw all 40 events under load).
func TestByteLimitHoldsWithinABatch(t *testing.T) {
	t.Parallel()
	const limit, sent = 8 << 10, 40
	hub, rdb, ch := spcHub(t)
	clock := clockwork.NewFakeClock()
	ctx := context.Background()
	sub, err := hub.Subscribe(ctx, "", pubsub.Filter{Devices: []string{"C01"}, Purpose: purpose.Data}, pubsub.QueueLimits{Capacity: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	payload := fmt.Sprintf(`{"deviceId":"C01","data":{"pad":%q}}`, strings.Repeat("x", 1000))
	pipe := rdb.Pipeline()
	for range sent {
		pipe.Publish(ctx, ch, payload)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// The whole burst is queued before the stream wakes.
	deadline := time.Now().Add(10 * time.Second)
	for hub.Stats().Deliveries < sent {
		if time.Now().After(deadline) {
			t.Fatalf("hub queued %d of %d", hub.Stats().Deliveries, sent)
		}
		time.Sleep(time.Millisecond)
	}
	s, w := sinkSession(New(Deps{Hub: hub, Clock: clock, Timing: Timing{MaxBytes: limit}}), purpose.Data, sub)
	_, _, reason, ok := s.send(clock.Now())
	if ok || reason != endBytes {
		t.Fatalf("send: ok %v, reason %q; want the byte-limit end", ok, reason)
	}
	// The events written: the deliveries plus the final system event.
	n := w.written() - 1
	if max := limit/len(payload) + 1; n < 1 || n > max {
		t.Fatalf("%d of %d events of %d bytes written with a %d-byte budget, want 1..%d", n, sent, len(payload), limit, max)
	}
	if s.written > limit+int64(2*len(payload)) {
		t.Fatalf("%d bytes written, budget %d", s.written, limit)
	}
}
