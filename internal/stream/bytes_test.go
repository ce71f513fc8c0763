package stream_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
)

// TestByteLimitRotatesWithRetry: a stream that has written STREAM_MAX_BYTES
// ends like a timed rotation (retry, then system reconnect), so the
// browser reconnects before the response leaves the 6 MB at full speed.
func TestByteLimitRotatesWithRetry(t *testing.T) {
	t.Parallel()
	const limit, sent = 8 << 10, 40
	e := newEnv(t, func(c *config.Config) { c.StreamMaxBytes = limit })
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	payload := fmt.Sprintf(`{"deviceId":"C01","data":{"pad":%q}}`, strings.Repeat("x", 1000))
	for range sent {
		e.publish(e.keys.Channel(channel.SPC), payload)
	}
	n := 0
	for {
		ev := c.next()
		if ev.Name == "spc-update" {
			n++
			continue
		}
		if ev.Name != "system" || ev.json(t)["kind"] != "reconnect" {
			t.Fatalf("after %d spc events: %+v", n, ev)
		}
		break
	}
	c.ended()
	if n*len(payload) < limit-len(payload) || n >= sent {
		t.Fatalf("rotated after %d events of %d bytes, limit %d", n, len(payload), limit)
	}
	if r := c.lastRetry(); r < 1000 || r > 5000 {
		t.Fatalf("retry %d ms outside 1000..5000", r)
	}
	if !strings.Contains(e.logs.String(), `"reason":"byte-limit"`) {
		t.Fatalf("end reason not logged:\n%s", e.logs.String())
	}
	var m strings.Builder
	e.app.Metrics.WritePrometheus(&m)
	for _, want := range []string{
		`sse_streams_ended_total{purpose="data",reason="byte-limit"} 1` + "\n",
		fmt.Sprintf(`sse_deliveries_total{event="spc-update"} %d`+"\n", n),
	} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, m.String())
		}
	}
}
