package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
)

// TestFlushIntervalBatchesABurst: with Timing.FlushInterval, the first
// event after a quiet spell is written at once, the events that follow
// within the interval wait and go with one write when it ends, and the
// stream's last write takes along what is still held or queued.
func TestFlushIntervalBatchesABurst(t *testing.T) {
	t.Parallel()
	const interval = 50 * time.Millisecond
	hub, rdb, ch := spcHub(t)
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := hub.Subscribe(ctx, "", pubsub.Filter{Devices: []string{"C01"}, Purpose: purpose.Data}, pubsub.QueueLimits{Capacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	h := New(Deps{Hub: hub, Clock: clock, Timing: Timing{FlushInterval: interval}})
	s, w := sinkSession(h, purpose.Data, sub)
	ended := make(chan string, 1)
	go func() { ended <- s.loop(ctx) }()
	if err := clock.BlockUntilContext(ctx, 2); err != nil { // heartbeat, rotation
		t.Fatal(err)
	}

	sent := 0
	publish := func() {
		t.Helper()
		sent++
		if err := rdb.Publish(ctx, ch, fmt.Sprintf(`{"deviceId":"C01","data":{"n":%d}}`, sent)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// until waits (bounded) for cond: the loop runs on real goroutines.
	until := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("%s: not within the test's deadline (events %d, writes %d)", what, w.written(), w.writes.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	writes := func() int64 { return w.writes.Load() }

	publish()
	until("the first event, at once", func() bool { return w.written() == 1 })
	if writes() != 1 {
		t.Fatalf("%d writes for the first event, want 1", writes())
	}

	// Within the interval: held, with a timer for its end.
	publish()
	if err := clock.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	publish()
	until("the third event queued", func() bool { return hub.Stats().Deliveries == 3 })
	if got := w.written(); got != 1 {
		t.Fatalf("%d events written within the interval, want 1 (the others held)", got)
	}
	clock.Advance(interval)
	until("the held events, at the interval's end", func() bool { return w.written() == 3 })
	if writes() != 2 {
		t.Fatalf("%d writes for three events, want 2 (the held ones together)", writes())
	}

	// After a quiet spell, the next event goes at once again.
	clock.Advance(interval)
	publish()
	until("an event after a quiet spell, at once", func() bool { return w.written() == 4 })
	if writes() != 3 {
		t.Fatalf("%d writes, want 3", writes())
	}

	// Held when the stream ends, framed or still queued (the hold wakes
	// nothing): the last write takes both along.
	publish()
	if err := clock.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	publish()
	until("the sixth event queued", func() bool { return hub.Stats().Deliveries == 6 })
	h.Drain()
	if reason := <-ended; reason != endDraining {
		t.Fatalf("ended %q, want %q", reason, endDraining)
	}
	if got := w.written(); got != 7 { // 6 events and the last system event
		t.Fatalf("%d events written by the end, want 7", got)
	}
	if writes() != 4 {
		t.Fatalf("%d writes, want 4 (the held event with the last one)", writes())
	}
}

// TestFlushIntervalRotationTakesTheQueue: at the rotation, what the hold
// left in the queue (it woke nothing) goes with the last event.
func TestFlushIntervalRotationTakesTheQueue(t *testing.T) {
	t.Parallel()
	hub, rdb, ch := spcHub(t)
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := hub.Subscribe(ctx, "", pubsub.Filter{Devices: []string{"C01"}, Purpose: purpose.Data}, pubsub.QueueLimits{Capacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	h := New(Deps{Hub: hub, Clock: clock, Timing: Timing{FlushInterval: 2 * time.Hour, Heartbeat: 3 * time.Hour}})
	s, w := sinkSession(h, purpose.Data, sub) // rotates in an hour, before the interval ends
	s.flushedAt = clock.Now()                 // a write just went: the next events wait
	ended := make(chan string, 1)
	go func() { ended <- s.loop(ctx) }()
	if err := clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := rdb.Publish(ctx, ch, fmt.Sprintf(`{"deviceId":"C01","data":{"n":%d}}`, i)).Err(); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // framed and held, with its timer
			if err := clock.BlockUntilContext(ctx, 3); err != nil {
				t.Fatal(err)
			}
		}
	}
	for hub.Stats().Deliveries < 2 {
		if ctx.Err() != nil {
			t.Fatal("the second event never reached the queue")
		}
		time.Sleep(time.Millisecond)
	}
	if got := w.written(); got != 0 {
		t.Fatalf("%d events written before the rotation, want 0 (held)", got)
	}
	clock.Advance(time.Hour)
	if reason := <-ended; reason != endRotate {
		t.Fatalf("ended %q, want %q", reason, endRotate)
	}
	if got := w.written(); got != 3 { // both events and the last system event
		t.Fatalf("%d events written by the rotation, want 3", got)
	}
}
