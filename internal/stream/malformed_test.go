package stream_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
)

// Malformed channel messages are reported: in the stream end log (what the
// process dropped while the stream was open) and, summed over processes,
// in /health.
func TestMalformedMessagesAreReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	e.publish(e.keys.Channel(channel.Realtime), `not json`)
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","DeviceId":"C02","deviceId":"C03"}`)
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":1}`)
	c.expect("realtime-update", "C01")
	c.resp.Body.Close()
	c.ended()

	// The end is logged after the client left; wait (bounded) for it.
	var end map[string]any
	for range 100 {
		if ends := e.logLines("stream end"); len(ends) > 0 {
			end = ends[0]
			break
		}
		time.Sleep(20 * time.Millisecond) // bounded: 100 tries
	}
	if end == nil || end["malformed"] != 2.0 {
		t.Fatalf("stream end %v", end)
	}
	var health map[string]any
	for range 100 {
		resp := e.get("/health")
		_ = json.Unmarshal([]byte(body(t, resp)), &health)
		if health["malformedMessages"] == 2.0 {
			return
		}
		time.Sleep(20 * time.Millisecond) // bounded: 100 tries
	}
	t.Fatalf("health %v", health)
}
