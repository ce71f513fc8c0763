package pubsub

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
)

// Benchmarks of the in-process part of a delivery, without Redis: parse
// once, look the device up, offer to each interested queue, and the
// stream side's Drain. docs/benchmarks.md has the numbers and what they
// leave out; the whole path over Redis and HTTP is BenchmarkFanout in
// internal/stream.

// realtimePayload is what the simulator publishes on the realtime channel
// for one machine: eight tags and the publisher's timestamp (~190 bytes).
func realtimePayload(dev string, cycn int) string {
	return fmt.Sprintf(`{"deviceId":%q,"data":{"devId":%q,"Data":{"CYCN":%d,"MT":45.1,"OPM":3,"OT":52.3,"T1":220.1,"T2":215.4,"T3":210.2,"T4":205.7}},"timestamp":"2026-01-27T12:34:56.789Z"}`, dev, dev, cycn)
}

// addActive registers a subscription the way Subscribe does once its
// barrier came back, without Redis: indexed and active.
func (h *Hub) addActive(stream string, f Filter, lim QueueLimits) *Subscription {
	s := h.newSubscription(stream, f, lim)
	h.mu.Lock()
	h.add(s)
	h.mu.Unlock()
	s.active.Store(true)
	close(s.ready)
	return s
}

func BenchmarkParse(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		name    string
		kind    *channel.Kind
		payload string
	}{
		{"realtime", channel.Realtime, realtimePayload("C042", 123456)},
		// No timestamp: Parse appends one.
		{"spc-add-timestamp", channel.SPC, `{"deviceId":"C042","data":{"devId":"C042","Data":{"CYCN":123456,"CYCT":31.52,"ECUSH":5.01,"EIPM":1412.7,"EIPSE":0.41,"EPLST":9.46,"ETS":3.12}}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := []byte(tc.payload)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(tc.kind, p, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoute routes pre-built channel messages through a hub holding
// 1,000 data subscriptions over 100 devices (10 per device), then drains
// the 10 queues that received each one, as their stream loops would. One
// op is one channel message, so 10 deliveries.
func BenchmarkRoute(b *testing.B) {
	const (
		devices   = 100
		perDevice = 10
	)
	for _, tc := range []struct {
		name    string
		kind    *channel.Kind
		channel string
	}{
		// Realtime with no throttle goes through the per-device slot;
		// SPC through the FIFO. Both are data kinds.
		{"realtime", channel.Realtime, "rt"},
		{"spc", channel.SPC, "spc"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := NewHub(nil, Channels{Kinds: map[string]*channel.Kind{"rt": channel.Realtime, "spc": channel.SPC}, Control: "ctl"},
				slog.New(slog.DiscardHandler), time.Now)
			queues := make([][]*Subscription, devices)
			payloads := make([]string, devices)
			for d := range devices {
				dev := fmt.Sprintf("C%03d", d)
				payloads[d] = realtimePayload(dev, 1000+d)
				for i := range perDevice {
					s := h.addActive(fmt.Sprintf("s%d-%d", d, i), Filter{Devices: []string{dev}}, QueueLimits{Capacity: 256})
					queues[d] = append(queues[d], s)
				}
			}
			if n := len(h.routes); n != devices {
				b.Fatalf("index holds %d devices", n)
			}
			buf := make([]*Message, 0, 16)
			delivered := 0
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				d := i % devices
				i++
				h.route(tc.channel, payloads[d])
				for _, q := range queues[d] {
					var overflowed bool
					buf, _, overflowed = q.Drain(time.Now(), buf[:0])
					if overflowed {
						b.Fatal("queue overflowed")
					}
					delivered += len(buf)
				}
				clear(buf)
			}
			want := i * perDevice
			if st := h.Stats(); delivered != want || st.Deliveries != int64(want) || st.Malformed != 0 {
				b.Fatalf("delivered %d (hub counted %d, %d malformed), want %d", delivered, st.Deliveries, st.Malformed, want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivery")
		})
	}
}
