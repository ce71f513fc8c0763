package stream_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/ssetest"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func TestDataStreamStatusThenLiveEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01", "C02")
	if err := e.rdb.Set(t.Context(), e.keys.Status("C01"), `{"devId":"C01","Data":{"T1":220}}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	tk := e.ticket("1", purpose.Data)

	c := e.open("/sse/stream?ticket=" + url.QueryEscape(tk) + "&deviceIds=C01,C02")
	for _, h := range [][2]string{{"Cache-Control", "no-cache"}, {"Connection", "keep-alive"}, {"X-Accel-Buffering", "no"}} {
		if got := c.resp.Header.Get(h[0]); got != h[1] {
			t.Errorf("header %s = %q", h[0], got)
		}
	}
	first := c.next()
	if first.Name != "system" || first.json(t)["kind"] != "connected" || !idPattern.MatchString(first.ID) {
		t.Fatalf("first event %+v", first)
	}
	if c.lastRetry() < 1000 || c.lastRetry() > 5000 {
		t.Fatalf("initial retry %d ms", c.lastRetry())
	}
	st := c.expect("machine-status", "C01").json(t)
	if st["source"] != "cache" || st["data"].(map[string]any)["devId"] != "C01" || st["timestamp"] != "2026-01-27T12:00:00.000Z" {
		t.Fatalf("status payload %v", st)
	}
	// C02 has no cached status: no event for it.
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C02","data":{"devId":"C02","Data":{"T1":221}},"timestamp":"2026-01-27T12:34:56.789Z"}`)
	ev := c.expect("realtime-update", "C02")
	if ev.Data != `{"deviceId":"C02","data":{"devId":"C02","Data":{"T1":221}},"timestamp":"2026-01-27T12:34:56.789Z"}` {
		t.Fatalf("payload %s", ev.Data)
	}
	if !idPattern.MatchString(ev.ID) || ev.ID == first.ID {
		t.Fatalf("id %q", ev.ID)
	}
	e.publish(e.keys.Channel(channel.SPC), `{"deviceId":"C01","data":{"Data":{"CYCN":8810}}}`)
	spc := c.expect("spc-update", "C01").json(t)
	if spc["timestamp"] != "2026-01-27T12:00:00.000Z" {
		t.Fatalf("timestamp not added: %v", spc)
	}
	e.publish(e.keys.Channel(channel.SPCSeries), `{"deviceId":"C01","data":[1,2]}`)
	c.expect("spc-series-update", "C01")
}

func TestIncludeStatusFalse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	if err := e.rdb.Set(t.Context(), e.keys.Status("C01"), `{"x":1}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := e.open("/sse/stream?includeStatus=false&deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Any)))
	c.expect("system", "")
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":1}`)
	c.expect("realtime-update", "C01")
}

func TestFilteringBetweenDevicesAndUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	e.own("2", "C02")
	one := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	two := e.open("/sse/stream?deviceId=C02&ticket=" + url.QueryEscape(e.ticket("2", purpose.Data)))
	alerts1 := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	for _, c := range []*client{one, two, alerts1} {
		c.expect("system", "")
	}
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C02","data":"for two"}`)
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C02","alert":"two's alert"}`)
	e.publish(e.keys.Channel(channel.Alert), `not json at all`)
	e.publish(e.keys.Channel(channel.Alert), `{"alert":"no device"}`)
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":"for one"}`)
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C01","alert":{"alertType":"warning","message":"hot"}}`)
	e.publish(e.keys.Channel(channel.Alarm), `{"deviceId":"C01","alarm":{"code":7,"active":true}}`)

	// Each stream's next event is its own: nothing of the other user's, no
	// malformed message, and the stream lived through them.
	if ev := one.expect("realtime-update", "C01"); !strings.Contains(ev.Data, "for one") {
		t.Fatal(ev.Data)
	}
	if ev := two.expect("realtime-update", "C02"); !strings.Contains(ev.Data, "for two") {
		t.Fatal(ev.Data)
	}
	if ev := alerts1.expect("machine-alert", "C01"); !strings.Contains(ev.Data, `"message":"hot"`) {
		t.Fatal(ev.Data)
	}
	alerts1.expect("alarm-update", "C01")
	if st := e.app.Hub.Stats(); st.Malformed != 2 {
		t.Fatalf("malformed counted %d, want 2", st.Malformed)
	}
}

func TestHeartbeatWithInjectedTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.HeartbeatInterval = 25 * time.Second })
	e.own("1", "C01")
	c := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Any)))
	c.nextRaw() // connected
	for i := 0; i < 3; i++ {
		e.waitTimers(2) // heartbeat + rotation
		e.clock.Advance(25 * time.Second)
		hb := c.nextRaw()
		m := hb.json(t)
		if hb.Name != "system" || m["kind"] != "heartbeat" || !idPattern.MatchString(hb.ID) {
			t.Fatalf("heartbeat %d: %+v", i, hb)
		}
		want := t0.Add(time.Duration(i+1) * 25 * time.Second).Format("2006-01-02T15:04:05.000Z")
		if m["ts"] != want {
			t.Fatalf("heartbeat ts %v, want %s", m["ts"], want)
		}
	}
}

func TestErrorsHaveTheSeedsBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.MaxDevicesPerStream = 3 })
	e.own("1", "C01", "C02", "C03", "C04")
	data := url.QueryEscape(e.ticket("1", purpose.Data))
	alerts := url.QueryEscape(e.ticket("1", purpose.Alerts))
	revoked, claims, err := e.app.Tickets.Issue(t.Context(), "1", purpose.Any, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.Issued(revoked)
	if err := e.app.Tickets.Revoke(t.Context(), claims.ID); err != nil {
		t.Fatal(err)
	}

	const (
		auth      = `{"error":"Unauthorized","message":"Stream authentication required","statusCode":401}`
		invalid   = `{"error":"Unauthorized","message":"Invalid or expired stream ticket","statusCode":401}`
		purpose   = `{"error":"Unauthorized","message":"Stream ticket is not valid for this stream","statusCode":401}`
		forbidden = `{"error":"Forbidden","message":"Access denied to one or more devices","statusCode":403}`
	)
	for _, tc := range []struct {
		name, path string
		code       int
		body       string
	}{
		{"no ticket", "/sse/stream?deviceId=C01", 401, auth},
		{"no ticket alerts", "/sse/alerts", 401, auth},
		{"garbage ticket", "/sse/stream?deviceId=C01&ticket=abc", 401, invalid},
		{"revoked ticket", "/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(revoked), 401, invalid},
		{"alerts ticket on data", "/sse/stream?deviceId=C01&ticket=" + alerts, 401, purpose},
		{"data ticket on alerts", "/sse/alerts?ticket=" + data, 401, purpose},
		{"no device", "/sse/stream?ticket=" + data, 400, `{"error":"Bad Request","message":"deviceId or deviceIds is required","statusCode":400}`},
		{"both params", "/sse/stream?deviceId=C01&deviceIds=C02&ticket=" + data, 400, `{"error":"Bad Request","message":"Use deviceId or deviceIds, not both","statusCode":400}`},
		{"too many", "/sse/stream?deviceIds=C01,C02,C03,C04&ticket=" + data, 400, `{"error":"Bad Request","message":"Too many devices: at most 3 per stream","statusCode":400}`},
		{"bad id", "/sse/stream?deviceId=" + url.QueryEscape("C0\n1") + "&ticket=" + data, 400, `{"error":"Bad Request","message":"Invalid device id","statusCode":400}`},
		{"bad includeStatus", "/sse/stream?deviceId=C01&includeStatus=maybe&ticket=" + data, 400, `{"error":"Bad Request","message":"includeStatus must be true or false","statusCode":400}`},
		{"foreign device", "/sse/stream?deviceIds=C01,X9&ticket=" + data, 403, forbidden},
		{"unknown path", "/sse/nope", 404, `{"error":"Not Found","message":"Not found","statusCode":404}`},
	} {
		resp := e.get(tc.path)
		got := strings.TrimSpace(body(t, resp))
		if resp.StatusCode != tc.code || got != tc.body || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, got)
		}
		for _, tk := range e.Secrets() {
			if strings.Contains(got, tk) {
				t.Errorf("%s: body contains a ticket", tc.name)
			}
		}
	}
	resp, _ := e.srv.Client().Post(e.srv.URL+"/sse/stream?deviceId=C01&ticket="+data, "text/plain", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestRejectPolicyTooManyRequestsBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.ConnectionLimitPolicy = config.PolicyReject })
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	a := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	a.expect("system", "")
	resp := e.get("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	got := strings.TrimSpace(body(t, resp))
	want := `{"currentConnections":{"alerts":1,"data":1,"total":2},"error":"Too Many Requests","limits":{"alerts":1,"data":1},"message":"Data stream connection limit exceeded","statusCode":429}`
	if resp.StatusCode != 429 || got != want {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	resp = e.get("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Any)))
	if got := body(t, resp); resp.StatusCode != 429 || !strings.Contains(got, `"message":"Alerts stream connection limit exceeded"`) {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
}

// TestFlushIntervalThroughTheService: STREAM_FLUSH_INTERVAL reaches the
// streams (config -> app -> Timing). After the first events, the next
// updates wait for the interval's end, then arrive all, in order.
func TestFlushIntervalThroughTheService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.StreamFlushInterval = time.Minute })
	e.own("1", "C01", "C02")
	c := e.open("/sse/stream?includeStatus=false&deviceIds=C01,C02&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	ch := e.keys.Channel(channel.Realtime)
	e.publish(ch, `{"deviceId":"C01","data":1}`) // the first after a quiet spell: at once
	c.expect("realtime-update", "C01")
	e.publish(ch, `{"deviceId":"C02","data":2}`)
	e.waitTimers(3) // heartbeat, rotation and the held events' timer
	e.publish(ch, `{"deviceId":"C01","data":3}`)
	// Queued (held: it wakes nothing) before the interval ends.
	for deadline := time.Now().Add(ssetest.Wait); e.app.Hub.Stats().Deliveries < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries queued, want 3", e.app.Hub.Stats().Deliveries)
		}
	}
	e.clock.Advance(time.Minute)
	if ev := c.expect("realtime-update", "C02"); !strings.Contains(ev.Data, `"data":2`) {
		t.Fatalf("held first: %s", ev.Data)
	}
	if ev := c.expect("realtime-update", "C01"); !strings.Contains(ev.Data, `"data":3`) {
		t.Fatalf("held second: %s", ev.Data)
	}
}
