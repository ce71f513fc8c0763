package pubsub

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/sse"
)

// A reset ends the subscriptions of the connection it drops, never one made
// on the connection after it: here a stream subscribes on the new
// connection in the window between the reset detaching the old one and
// ending its subscriptions (the hook), and must keep receiving.
func TestResetNeverEndsASubscriptionOfTheNextConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old := f.sub(t, "old", Filter{Devices: []string{"A"}})
	var fresh *Subscription
	f.hub.afterDetach = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := f.hub.Subscribe(ctx, "fresh", Filter{Devices: []string{"A"}}, QueueLimits{Capacity: 8})
		if err != nil {
			t.Errorf("subscribe on the new connection: %v", err)
			return
		}
		t.Cleanup(s.Close)
		fresh = s
	}
	f.hub.connMu.Lock()
	ps := f.hub.ps
	f.hub.connMu.Unlock()
	f.hub.reset(ps, errors.New("test reset"))
	if fresh == nil {
		t.FailNow()
	}
	select {
	case <-old.Done():
		if old.End() != Lost {
			t.Fatalf("old subscription ended with %v, want Lost", old.End())
		}
	default:
		t.Fatal("the reset did not end the subscription of its connection")
	}
	select {
	case <-fresh.Done():
		t.Fatalf("the reset of the old connection ended a subscription of the new one (%v)", fresh.End())
	default:
	}
	f.pub("spc", `{"deviceId":"A","data":"after"}`)
	if got := next(t, fresh, 1); !strings.Contains(string(got[0].Data), "after") {
		t.Fatal(drained(got))
	}
	if st := f.hub.Stats(); st.Resets != 1 {
		t.Fatalf("resets %d, want 1", st.Resets)
	}
}

// Evict and CloseStream reach the named subscription through Redis (as
// from another process) and say which it was; other streams are untouched,
// and so is an unaddressable one whatever the notice names.
func TestEvictAndCloseStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.sub(t, "stream-a", Filter{Devices: []string{"A"}})
	b := f.sub(t, "stream-b", Filter{Devices: []string{"A"}})
	anon := f.sub(t, "", Filter{Devices: []string{"A"}})
	ctx := context.Background()
	if err := f.hub.Evict(ctx, "stream-a"); err != nil {
		t.Fatal(err)
	}
	if err := f.hub.CloseStream(ctx, "stream-b"); err != nil {
		t.Fatal(err)
	}
	if err := f.hub.Evict(ctx, anon.key); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    *Subscription
		want End
	}{{a, Evicted}, {b, ClosedByClient}} {
		select {
		case <-tc.s.Done():
			if tc.s.End() != tc.want {
				t.Fatalf("%s ended with %v, want %v", tc.s.stream, tc.s.End(), tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not ended", tc.s.stream)
		}
	}
	// The notices arrive in order on one connection: anon's came last.
	f.pub("spc", `{"deviceId":"A","data":"after"}`)
	next(t, anon, 1)
	select {
	case <-anon.Done():
		t.Fatal("a notice ended a stream without id")
	default:
	}
}

// A message's frame is the SSE event of its kind and data, minus the id,
// and its Data is the frame's data field: what a stream writes after its
// own id line is exactly what sse.AppendEvent would have written.
func TestParseFramesOnce(t *testing.T) {
	t.Parallel()
	for _, k := range []*channel.Kind{channel.Realtime, channel.SPC, channel.Alert} {
		m, err := Parse(k, []byte(`{"deviceId":"C02", "data":{"T1":220}}`), t0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := sse.AppendEvent(nil, sse.Event{Name: k.Event, Data: m.Data})
		if err != nil || !bytes.Equal(m.Frame, want) {
			t.Fatalf("%s: frame %q, want %q (%v)", k.Event, m.Frame, want, err)
		}
		if !bytes.HasSuffix(m.Frame, append(bytes.Clone(m.Data), "\n\n"...)) || cap(m.Data) != len(m.Data) {
			t.Fatalf("Data %q is not the frame's data field (cap %d)", m.Data, cap(m.Data))
		}
	}
}
