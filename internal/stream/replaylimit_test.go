package stream_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
)

// TestReplayIsBoundedPerDevice: README's replay limit. A resume replays at
// most the newest 100 alerts of each device's history (the history's own
// bound), oldest first, even when a publisher left more in the list; what
// is older was missed for good.
func TestReplayIsBoundedPerDevice(t *testing.T) {
	t.Parallel()
	const limit, stored = 100, 150
	e := newEnv(t, nil)
	e.own("1", "C01", "C02")
	path := "/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts))
	c := e.open(path)
	last := c.expect("system", "")
	c.resp.Body.Close()
	c.ended()

	// While away: 150 alerts per device, pushed without the LTRIM a
	// publisher should do, interleaved in time across the two devices.
	ctx := context.Background()
	for i := 1; i <= stored; i++ {
		for j, d := range []string{"C01", "C02"} {
			at := t0.Add(time.Duration(2*i+j) * time.Millisecond)
			p := fmt.Sprintf(`{"deviceId":%q,"alert":{"n":%d},"timestamp":%q}`, d, i, at.Format("2006-01-02T15:04:05.000Z"))
			if err := e.rdb.LPush(ctx, e.keys.AlertHistory(d), p).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clock.Advance(time.Second)
	r := e.open(path, "Last-Event-ID", last.ID)
	r.expect("system", "")
	// The newest 100 of each, oldest first: n = 51..150, each on C01 then C02.
	for i := stored - limit + 1; i <= stored; i++ {
		for _, d := range []string{"C01", "C02"} {
			ev := r.expect("machine-alert", d)
			if n := ev.json(t)["alert"].(map[string]any)["n"]; n != float64(i) {
				t.Fatalf("replayed alert %v of %s, want %d", n, d, i)
			}
		}
	}
	// Then live, with nothing more from history in between.
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C01","alert":{"n":"live"},"timestamp":"2026-01-27T12:00:02.000Z"}`)
	if n := r.expect("machine-alert", "C01").json(t)["alert"].(map[string]any)["n"]; n != "live" {
		t.Fatalf("after the replay got alert %v, want the live one", n)
	}
	e.wantMetrics(`sse_replayed_alerts_total 200`)
}
