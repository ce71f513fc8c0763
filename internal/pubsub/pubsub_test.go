package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
)

var t0 = time.Date(2026, 1, 27, 12, 34, 56, 789e6, time.UTC)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{"keeps timestamp", `{"deviceId":"C02", "data":{"T1":220},"timestamp":"2026-01-01T00:00:00.000Z"}`,
			`{"deviceId":"C02","data":{"T1":220},"timestamp":"2026-01-01T00:00:00.000Z"}`, nil},
		{"adds timestamp", "{\n\"deviceId\":\"C02\",\"alert\":{\"m\":\"x\\ny\"}}",
			`{"deviceId":"C02","alert":{"m":"x\ny"},"timestamp":"2026-01-27T12:34:56.789Z"}`, nil},
		{"null timestamp", `{"deviceId":"C02","timestamp":null}`,
			`{"deviceId":"C02","timestamp":null,"timestamp":"2026-01-27T12:34:56.789Z"}`, nil},
		{"not json", `nope`, "", ErrMalformed},
		{"array", `[1]`, "", ErrMalformed},
		{"no device", `{"data":1}`, "", ErrMalformed},
		{"numeric device", `{"deviceId":2}`, "", ErrMalformed},
		{"bad device", `{"deviceId":"a\nb"}`, "", ErrMalformed},
		{"trailing", `{"deviceId":"a"} x`, "", ErrMalformed},
		{"too large", `{"deviceId":"a","x":"` + strings.Repeat("x", MaxPayload) + `"}`, "", ErrTooLarge},
	} {
		m, err := Parse(channel.Alert, []byte(tc.in), t0)
		if err != tc.err {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && string(m.Data) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, m.Data, tc.want)
		}
		if err == nil && strings.ContainsAny(string(m.Data), "\r\n") {
			t.Errorf("%s: payload is not one line", tc.name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"deviceId":"C02","data":{"T1":220}}`))
	f.Add([]byte(`{"deviceId":"C02","timestamp":"x"}`))
	f.Add([]byte(`{"deviceId":"C04","DeviceId":"C01"}`))
	f.Add([]byte(`{"device\u0049d":"C04","deviceid":"C01"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Parse(channel.Realtime, in, t0)
		if err != nil {
			return
		}
		if strings.ContainsAny(string(m.Data), "\r\n") || !json.Valid(m.Data) {
			t.Fatalf("payload %q is not one line of JSON", m.Data)
		}
		// A map keeps names exactly, as a browser's JSON.parse does.
		var back map[string]any
		if json.Unmarshal(m.Data, &back) != nil || back["deviceId"] != m.Device {
			t.Fatalf("device %q lost in %s", m.Device, m.Data)
		}
	})
}

func msg(k *channel.Kind, dev string, n int) *Message {
	return &Message{Kind: k, Device: dev, Data: []byte(fmt.Sprint(n))}
}

func drained(ms []*Message) string {
	var b []string
	for _, m := range ms {
		b = append(b, m.Device+"="+string(m.Data))
	}
	return strings.Join(b, " ")
}

func TestQueueCoalescesRealtimeAndKeepsTheLast(t *testing.T) {
	t.Parallel()
	q := newQueue(4, time.Second)
	for i := 1; i <= 100; i++ {
		q.Offer(msg(channel.Realtime, "A", i))
	}
	got, next, over := q.Drain(t0, nil)
	if drained(got) != "A=100" || !next.IsZero() || over {
		t.Fatalf("first drain %q %v %v", drained(got), next, over)
	}
	// Within the interval the newest value is held, and its due time given.
	q.Offer(msg(channel.Realtime, "A", 101))
	q.Offer(msg(channel.Realtime, "A", 102))
	got, next, _ = q.Drain(t0.Add(300*time.Millisecond), nil)
	if len(got) != 0 || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("held: %q next %v", drained(got), next)
	}
	got, _, _ = q.Drain(t0.Add(time.Second), nil)
	if drained(got) != "A=102" {
		t.Fatalf("last of burst: %q", drained(got))
	}
	if c := q.Stats().Coalesced; c != 100 {
		t.Fatalf("coalesced %d, want 100", c)
	}
}

func TestQueueNeverCoalescesOtherKinds(t *testing.T) {
	t.Parallel()
	q := newQueue(10, time.Second)
	for i := 1; i <= 3; i++ {
		q.Offer(msg(channel.SPC, "A", i))
		q.Offer(msg(channel.Alert, "A", 10+i))
	}
	got, _, over := q.Drain(t0, nil)
	if drained(got) != "A=1 A=11 A=2 A=12 A=3 A=13" || over {
		t.Fatalf("%q", drained(got))
	}
}

func TestQueueOverflowIsBoundedAndReported(t *testing.T) {
	t.Parallel()
	q := newQueue(8, 0)
	for i := 0; i < 10000; i++ {
		q.Offer(msg(channel.Alert, "A", i))
		q.Offer(msg(channel.Realtime, fmt.Sprint("D", i%3), i))
	}
	got, _, over := q.Drain(t0, nil)
	if !over {
		t.Fatal("overflow not reported")
	}
	// 8 alerts, plus one realtime per device (3): the buffer stayed bounded.
	if len(got) != 11 {
		t.Fatalf("drained %d", len(got))
	}
	if d := q.Stats().Dropped; d == 0 {
		t.Fatal("drops not counted")
	}
}

// ---- hub against real Redis ----

type fixture struct {
	hub    *Hub
	pub    func(ch, payload string)
	prefix string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	ch := Channels{Kinds: map[string]*channel.Kind{
		prefix + "rt":     channel.Realtime,
		prefix + "spc":    channel.SPC,
		prefix + "alerts": channel.Alert,
		prefix + "alarms": channel.Alarm,
	}, Control: prefix + "control"}
	h := NewHub(rdb, ch, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return t0 })
	t.Cleanup(h.Close)
	return fixture{hub: h, prefix: prefix, pub: func(c, p string) {
		t.Helper()
		if err := rdb.Publish(context.Background(), prefix+c, p).Err(); err != nil {
			t.Fatal(err)
		}
	}}
}

func (f fixture) sub(t *testing.T, id string, filt Filter) *Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := f.hub.Subscribe(ctx, id, filt, QueueLimits{Capacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// next waits (bounded) for the queue to hold n messages and returns them.
func next(t *testing.T, s *Subscription, n int) []*Message {
	t.Helper()
	var out []*Message
	deadline := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case <-s.Ready():
			out, _, _ = s.Drain(t0.Add(time.Hour), out)
		case <-deadline:
			t.Fatalf("got %d messages, want %d: %s", len(out), n, drained(out))
		}
	}
	return out
}

func TestHubRoutesByDeviceAndPurpose(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dataA := f.sub(t, "", Filter{Devices: []string{"A"}})
	dataAB := f.sub(t, "", Filter{Devices: []string{"A", "B"}})
	alertsB := f.sub(t, "", Filter{Devices: []string{"B"}, Purpose: purpose.Alerts})

	f.pub("rt", `{"deviceId":"B","data":1}`)
	f.pub("alerts", `{"deviceId":"A","alert":2}`) // nobody wants A's alerts
	f.pub("spc", `{"deviceId":"A","data":3}`)
	f.pub("alarms", `{"deviceId":"B","alarm":4}`)
	f.pub("alerts", `not json`)
	f.pub("alerts", `{"deviceId":"B","alert":5}`)

	// Order between a drain's FIFO and coalesced realtime values is free.
	if got := next(t, dataAB, 2); !(got[0].Kind == channel.SPC && got[1].Kind == channel.Realtime || got[0].Kind == channel.Realtime && got[1].Kind == channel.SPC) {
		t.Fatalf("dataAB: %v %v", got[0].Kind.Name, got[1].Kind.Name)
	}
	if got := next(t, dataA, 1); got[0].Kind != channel.SPC {
		t.Fatalf("dataA: %s", drained(got))
	}
	got := next(t, alertsB, 2)
	if got[0].Kind != channel.Alarm || got[1].Kind != channel.Alert || !strings.Contains(string(got[1].Data), `"alert":5`) {
		t.Fatalf("alertsB: %s", drained(got))
	}
	// Nothing else arrived anywhere.
	for _, s := range []*Subscription{dataA, dataAB, alertsB} {
		if rest, _, _ := s.Drain(t0.Add(time.Hour), nil); len(rest) != 0 {
			t.Fatalf("extra: %s", drained(rest))
		}
	}
	st := f.hub.Stats()
	if st.Malformed != 1 || st.Received != 6 || st.Deliveries != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHubNeverDeliversWhatCameBeforeSubscribe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	early := f.sub(t, "", Filter{Devices: []string{"A"}})
	f.pub("spc", `{"deviceId":"A","data":"before"}`)
	late := f.sub(t, "", Filter{Devices: []string{"A"}})
	f.pub("spc", `{"deviceId":"A","data":"after"}`)
	if got := next(t, early, 2); len(got) != 2 {
		t.Fatal(drained(got))
	}
	got := next(t, late, 1)
	if !strings.Contains(string(got[0].Data), "after") {
		t.Fatalf("late subscriber got %s", got[0].Data)
	}
}

func TestHubOneSubscriptionForManyStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	subs := make([]*Subscription, 20)
	for i := range subs {
		subs[i] = f.sub(t, fmt.Sprint("s", i), Filter{Devices: []string{fmt.Sprint("D", i%4)}})
	}
	rdb, _ := redistest.Client(t)
	n, err := rdb.PubSubNumSub(context.Background(), f.prefix+"rt").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n[f.prefix+"rt"] != 1 {
		t.Fatalf("%d Redis subscribers for 20 streams, want 1", n[f.prefix+"rt"])
	}
}

func TestHubEvictByControlChannel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.sub(t, "stream-a", Filter{Devices: []string{"A"}})
	b := f.sub(t, "stream-b", Filter{Devices: []string{"A"}})
	f.pub("control", "evict stream-a")
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not evicted")
	}
	select {
	case <-b.Done():
		t.Fatal("wrong stream evicted")
	default:
	}
}

func TestHubSetDevices(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.sub(t, "", Filter{Devices: []string{"A"}, Purpose: purpose.Alerts})
	s.SetDevices([]string{"B"})
	f.pub("alerts", `{"deviceId":"A","alert":1}`)
	f.pub("alerts", `{"deviceId":"B","alert":2}`)
	if got := next(t, s, 1); got[0].Device != "B" {
		t.Fatal(drained(got))
	}
}

func TestSubscribeUnavailable(t *testing.T) {
	t.Parallel()
	// A hub pointed at a closed port cannot confirm a subscription.
	h := NewHub(deadClient(t), Channels{Kinds: map[string]*channel.Kind{"x": channel.Realtime}}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := h.Subscribe(ctx, "", Filter{Devices: []string{"A"}}, QueueLimits{Capacity: 1}); err != ErrUnavailable {
		t.Fatalf("err %v", err)
	}
}

// TestQueueHold: a held queue takes messages without signalling Ready;
// Release signals it, and Drain finds them. Wake and the end still signal.
func TestQueueHold(t *testing.T) {
	t.Parallel()
	q := newQueue(8, 0)
	s := &Subscription{queue: q, done: make(chan struct{})}
	ready := func() bool {
		select {
		case <-q.Ready():
			return true
		default:
			return false
		}
	}
	s.Hold()
	q.Offer(msg(channel.SPC, "A", 1))
	q.Offer(msg(channel.SPC, "A", 2))
	if ready() {
		t.Fatal("a held queue signalled Ready for a message")
	}
	s.Wake()
	if !ready() {
		t.Fatal("Wake did not signal a held queue")
	}
	s.Release()
	if !ready() {
		t.Fatal("Release did not signal Ready")
	}
	if got, _, _ := q.Drain(t0, nil); drained(got) != "A=1 A=2" {
		t.Fatalf("drained %q after the hold", drained(got))
	}
	q.Offer(msg(channel.SPC, "A", 3))
	if !ready() {
		t.Fatal("a released queue did not signal Ready for a message")
	}
	s.Hold()
	s.end(Lost)
	if !ready() {
		t.Fatal("the end did not signal a held queue")
	}
}
