package pubsub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An eviction notice that comes before its stream joined (a newer connect
// evicted it between its admission and its Subscribe) still ends it:
// Subscribe returns it ended as Evicted, so the connect answers as
// superseded without reading its lease back. A close notice, another id
// and a stream that joined before its notice are as before.
func TestEvictedBeforeJoining(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := f.sub(t, "other", Filter{Devices: []string{"A"}}) // the shared connection is up
	ctx := context.Background()
	for _, err := range []error{f.hub.Evict(ctx, "late"), f.hub.CloseStream(ctx, "closed-late")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A barrier after the notices: once it is answered, the hub has read them.
	f.sub(t, "", Filter{})

	late := f.sub(t, "late", Filter{Devices: []string{"A"}})
	select {
	case <-late.Done():
		if late.End() != Evicted {
			t.Fatalf("late ended with %v, want Evicted", late.End())
		}
	default:
		t.Fatal("a stream evicted before it joined was returned live")
	}
	for _, s := range []*Subscription{f.sub(t, "closed-late", Filter{}), f.sub(t, "fresh", Filter{}), other} {
		select {
		case <-s.Done():
			t.Fatalf("%s ended (%v)", s.stream, s.End())
		default:
		}
	}
}

func TestEvictionsBounded(t *testing.T) {
	t.Parallel()
	e := evictions{at: make(map[string]time.Time)}
	at := time.Unix(1_800_000_000, 0)
	for i := range evictedMax + 1 {
		e.add(fmt.Sprint("id", i), at)
	}
	if e.has("id0", at) || !e.has("id1", at) || !e.has(fmt.Sprint("id", evictedMax), at) {
		t.Fatal("the oldest notice is not the one forgotten past evictedMax")
	}
	if len(e.at) != evictedMax || len(e.order) != evictedMax {
		t.Fatalf("%d/%d remembered, want %d", len(e.at), len(e.order), evictedMax)
	}
	if e.has("id1", at.Add(evictedFor+time.Millisecond)) {
		t.Fatal("a notice older than evictedFor still counts")
	}
	e.add("new", at.Add(evictedFor+time.Second))
	if len(e.at) != 1 || !e.has("new", at.Add(evictedFor+time.Second)) {
		t.Fatalf("expired notices not dropped: %d left", len(e.at))
	}
}

// A burst of concurrent Subscribes shares barrier pings: the ones added
// while a ping is in flight are confirmed by the next, which the reader
// writes when the answer comes. Every one of them is confirmed (a message
// published after they returned reaches all), none sees what came before.
func TestBurstOfSubscribesSharesBarrierPings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.sub(t, "", Filter{}) // the shared connection is up
	f.pub("spc", `{"deviceId":"A","data":"before"}`)
	const n = 50
	before := f.hub.barrierPings.Load()
	subs := make([]*Subscription, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range subs {
		go func() {
			<-start
			s, err := f.hub.Subscribe(context.Background(), fmt.Sprint("s", i), Filter{Devices: []string{"A"}}, QueueLimits{Capacity: 8})
			subs[i] = s
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		t.Cleanup(s.Close)
	}
	if pings := f.hub.barrierPings.Load() - before; pings >= n {
		t.Fatalf("%d barrier pings for %d concurrent Subscribes, want fewer", pings, n)
	} else {
		t.Logf("%d barrier pings for %d concurrent Subscribes", pings, n)
	}
	f.pub("spc", `{"deviceId":"A","data":"after"}`)
	for _, s := range subs {
		if got := next(t, s, 1); !strings.Contains(string(got[0].Data), "after") {
			t.Fatalf("%s got %s", s.stream, got[0].Data)
		}
	}
}
