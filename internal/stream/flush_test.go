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

// flushStream is a data stream of device C01 on a real hub, with a fake
// clock, writing to a sinkWriter, its loop running.
type flushStream struct {
	t     *testing.T
	ctx   context.Context
	clock *clockwork.FakeClock
	hub   *pubsub.Hub
	h     *Handler
	w     *sinkWriter
	ended chan string // the loop's reason
	sent  int
	pub   func(payload string) error
}

// newFlushStream starts the loop with timing; prepare adjusts the session
// first. It returns once the loop waits on its heartbeat and rotation.
func newFlushStream(t *testing.T, timing Timing, prepare func(*session)) *flushStream {
	t.Helper()
	hub, rdb, ch := spcHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	sub, err := hub.Subscribe(ctx, "", pubsub.Filter{Devices: []string{"C01"}, Purpose: purpose.Data}, pubsub.QueueLimits{Capacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	f := &flushStream{t: t, ctx: ctx, clock: clockwork.NewFakeClock(), hub: hub, ended: make(chan string, 1),
		pub: func(p string) error { return rdb.Publish(ctx, ch, p).Err() }}
	f.h = New(Deps{Hub: hub, Clock: f.clock, Timing: timing})
	s, w := sinkSession(f.h, purpose.Data, sub)
	f.w = w
	if prepare != nil {
		prepare(s)
	}
	go func() { f.ended <- s.loop(ctx) }()
	f.timers(2) // heartbeat, rotation
	return f
}

// publish sends the next update of C01.
func (f *flushStream) publish() {
	f.t.Helper()
	f.sent++
	if err := f.pub(fmt.Sprintf(`{"deviceId":"C01","data":{"n":%d}}`, f.sent)); err != nil {
		f.t.Fatal(err)
	}
}

// timers waits until the fake clock has n timers (3: a held event's timer
// too).
func (f *flushStream) timers(n int) {
	f.t.Helper()
	if err := f.clock.BlockUntilContext(f.ctx, n); err != nil {
		f.t.Fatal(err)
	}
}

// until waits (bounded) for cond: the loop runs on real goroutines.
func (f *flushStream) until(what string, cond func() bool) {
	f.t.Helper()
	for !cond() {
		if f.ctx.Err() != nil {
			f.t.Fatalf("%s: not within the test's deadline (events %d, writes %d)", what, f.w.written(), f.w.writes.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// queued waits until the hub has queued n messages for the stream.
func (f *flushStream) queued(n int64) {
	f.t.Helper()
	f.until(fmt.Sprintf("%d events queued", n), func() bool { return f.hub.Stats().Deliveries == n })
}

// end waits for the loop's end and checks its reason.
func (f *flushStream) end(want string) {
	f.t.Helper()
	if reason := <-f.ended; reason != want {
		f.t.Fatalf("ended %q, want %q", reason, want)
	}
}

// TestFlushIntervalBatchesABurst: with Timing.FlushInterval, the first
// event after a quiet spell is written at once, the events that follow
// within the interval wait and go with one write when it ends, and the
// stream's last write takes along what is still held or queued.
func TestFlushIntervalBatchesABurst(t *testing.T) {
	t.Parallel()
	const interval = 50 * time.Millisecond
	f := newFlushStream(t, Timing{FlushInterval: interval}, nil)
	w := f.w
	writes := func() int64 { return w.writes.Load() }

	f.publish()
	f.until("the first event, at once", func() bool { return w.written() == 1 })
	if writes() != 1 {
		t.Fatalf("%d writes for the first event, want 1", writes())
	}

	// Within the interval: held, with a timer for its end.
	f.publish()
	f.timers(3)
	f.publish()
	f.queued(3)
	if got := w.written(); got != 1 {
		t.Fatalf("%d events written within the interval, want 1 (the others held)", got)
	}
	f.clock.Advance(interval)
	f.until("the held events, at the interval's end", func() bool { return w.written() == 3 })
	if writes() != 2 {
		t.Fatalf("%d writes for three events, want 2 (the held ones together)", writes())
	}

	// After a quiet spell, the next event goes at once again.
	f.clock.Advance(interval)
	f.publish()
	f.until("an event after a quiet spell, at once", func() bool { return w.written() == 4 })
	if writes() != 3 {
		t.Fatalf("%d writes, want 3", writes())
	}

	// Held when the stream ends, framed or still queued (the hold wakes
	// nothing): the last write takes both along.
	f.publish()
	f.timers(3)
	f.publish()
	f.queued(6)
	f.h.Drain()
	f.end(endDraining)
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
	// The stream rotates in an hour (sinkSession), before the interval
	// ends; a write just went, so the next events wait.
	f := newFlushStream(t, Timing{FlushInterval: 2 * time.Hour, Heartbeat: 3 * time.Hour},
		func(s *session) { s.flushedAt = s.h.d.Clock.Now() })
	f.publish()
	f.timers(3) // framed and held, with its timer
	f.publish()
	f.queued(2)
	if got := f.w.written(); got != 0 {
		t.Fatalf("%d events written before the rotation, want 0 (held)", got)
	}
	f.clock.Advance(time.Hour)
	f.end(endRotate)
	if got := f.w.written(); got != 3 { // both events and the last system event
		t.Fatalf("%d events written by the rotation, want 3", got)
	}
}
