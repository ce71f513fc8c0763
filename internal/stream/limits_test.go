package stream_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/registry"
)

func TestFiftyConcurrentConnectsAdmitExactlyOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) {
		c.ConnectionLimitPolicy = config.PolicyReject
		c.MaxStreamsPerIP = 100
	})
	e.own("1", "C01")
	tk := url.QueryEscape(e.ticket("1", purpose.Data))
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp := e.get("/sse/stream?deviceId=C01&ticket=" + tk)
			codes <- resp.StatusCode
			if resp.StatusCode == 429 {
				resp.Body.Close()
			} else {
				t.Cleanup(func() { resp.Body.Close() })
			}
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] != 1 || n[429] != 49 {
		t.Fatalf("codes %v, want exactly one 200 and 49 429", n)
	}
}

func TestEvictOldestSupersedesAndTheOldTabStaysOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // evict-oldest is the default
	e.own("1", "C01")
	tabA := e.ticket("1", purpose.Data)
	old := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(tabA))
	hello := old.expect("system", "")

	e.clock.Advance(time.Second)
	tabB := e.ticket("1", purpose.Data)
	fresh := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(tabB))
	fresh.expect("system", "")

	// The old stream is told within the control channel's latency and ends.
	ev := old.next()
	if ev.Name != "system" || ev.json(t)["kind"] != "superseded" {
		t.Fatalf("old stream got %+v", ev)
	}
	old.ended()

	// Its browser reconnects by itself: same URL, its Last-Event-ID. 204
	// ends a native EventSource for good, so no ping-pong between tabs.
	resp := e.get("/sse/stream?deviceId=C01&ticket="+url.QueryEscape(tabA), "Last-Event-ID", hello.ID)
	if resp.StatusCode != 204 {
		t.Fatalf("superseded reconnect: %d %s", resp.StatusCode, body(t, resp))
	}
	resp.Body.Close()

	// The new one still holds the slot and still receives.
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":1}`)
	fresh.expect("realtime-update", "C01")
	counts, conns, err := e.app.Registry.List(t.Context(), "1", e.clock.Now())
	if err != nil || counts.Data != 1 || len(conns) != 1 {
		t.Fatalf("registry %+v %v %v", counts, conns, err)
	}
}

func TestDeadProcessLeaseExpiresByItself(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.ConnectionLimitPolicy = config.PolicyReject })
	e.own("1", "C01")
	tk := e.ticket("1", purpose.Data)
	claims, err := e.app.Tickets.Parse(tk)
	if err != nil {
		t.Fatal(err)
	}
	// A stream admitted by a process that then died: it never renews nor
	// releases.
	_, err = e.app.Registry.Connect(t.Context(), registry.Request{
		ID: "deadbeefdeadbeefdeadbe", UserID: "1", Purpose: purpose.Data, Devices: []string{"C01"}, IP: "10.0.0.9",
		TicketKey: e.app.Tickets.Key(claims.ID), TicketID: claims.ID, ConnectedAt: e.clock.Now(),
	}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp := e.get("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(tk))
	if resp.StatusCode != 429 {
		t.Fatalf("slot held: want 429, got %d", resp.StatusCode)
	}
	resp.Body.Close()
	ttl := app.LeaseTTL(e.app.Config.HeartbeatInterval)
	if ttl > 2*e.app.Config.HeartbeatInterval+5*time.Second {
		t.Fatalf("lease TTL %v is more than about two heartbeats", ttl)
	}
	e.clock.Advance(ttl + time.Millisecond)
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(tk))
	c.expect("system", "")
}

func TestPerIPLimitIsAlways429(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{config.PolicyEvictOldest, config.PolicyReject} {
		e := newEnv(t, func(c *config.Config) { c.MaxStreamsPerIP = 2; c.ConnectionLimitPolicy = policy })
		for _, u := range []string{"1", "2", "3"} {
			e.own(u, "D"+u)
		}
		e.open("/sse/stream?deviceId=D1&ticket="+url.QueryEscape(e.ticket("1", purpose.Data))).expect("system", "")
		e.open("/sse/stream?deviceId=D2&ticket="+url.QueryEscape(e.ticket("2", purpose.Data))).expect("system", "")
		resp := e.get("/sse/stream?deviceId=D3&ticket=" + url.QueryEscape(e.ticket("3", purpose.Data)))
		got := body(t, resp)
		if resp.StatusCode != 429 || !strings.Contains(got, `"message":"Too many streams from this address"`) || !strings.Contains(got, `"currentConnections"`) {
			t.Fatalf("%s: %d %s", policy, resp.StatusCode, got)
		}
	}
}

func TestStatusSeesStreamsOfSeparateInstances(t *testing.T) {
	t.Parallel()
	a := newEnv(t, func(c *config.Config) { c.MaxDataStreams = 2 })
	// A second, independent instance on the same Redis (as another Lambda
	// invocation would be): shares nothing but the keys.
	b := newEnv(t, func(c *config.Config) { c.Keys = a.keys; c.MaxDataStreams = 2 })
	a.own("1", "C01", "C02")
	a.open("/sse/alerts?ticket="+url.QueryEscape(a.ticket("1", purpose.Alerts))).expect("system", "")
	a.clock.Advance(10 * time.Second)
	b.clock.Advance(10 * time.Second)
	b.open("/sse/stream?deviceId=C01&ticket="+url.QueryEscape(b.ticket("1", purpose.Data))).expect("system", "")
	b.open("/sse/stream?deviceId=C02&ticket="+url.QueryEscape(b.ticket("1", purpose.Data))).expect("system", "")
	a.clock.Advance(5 * time.Second)

	resp := a.get("/sse/status?ticket=" + url.QueryEscape(a.ticket("1", purpose.Any)))
	var st struct {
		Connections registry.Counts
		Active      []registry.Conn `json:"activeConnections"`
	}
	got := body(t, resp)
	if err := json.Unmarshal([]byte(got), &st); err != nil {
		t.Fatal(err, got)
	}
	if st.Connections != (registry.Counts{Alerts: 1, Data: 2, Total: 3}) || len(st.Active) != 3 {
		t.Fatalf("%s", got)
	}
	// Oldest first; uptime from each stream's own connect time.
	if st.Active[0].Purpose != "alerts" || st.Active[0].Uptime != 15 || st.Active[1].Uptime != 5 || st.Active[2].Uptime != 5 {
		t.Fatalf("%s", got)
	}
}

func TestOwnershipChangesReachOpenStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	alerts := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	alerts.expect("system", "")
	dataPath := "/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data))
	data := e.open(dataPath)
	first := data.expect("system", "")

	// The main app gives the user C02 and takes C01 away.
	if err := e.rdb.SAdd(t.Context(), e.keys.UserDevices("1"), "C02").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.SRem(t.Context(), e.keys.UserDevices("1"), "C01").Err(); err != nil {
		t.Fatal(err)
	}
	e.waitTimers(4)
	e.clock.Advance(e.app.Config.HeartbeatInterval)

	// The data stream for the lost device ends, and says why.
	ev := data.next()
	if ev.json(t)["kind"] != "forbidden" {
		t.Fatalf("data stream got %+v", ev)
	}
	data.ended()
	// Its browser's reconnect (same URL, its cursor) gets 403, which ends
	// a native EventSource for good.
	resp := e.get(dataPath, "Last-Event-ID", first.ID)
	if got := strings.TrimSpace(body(t, resp)); resp.StatusCode != 403 || got != `{"error":"Forbidden","message":"Access denied to one or more devices","statusCode":403}` {
		t.Fatalf("reconnect of the data stream whose device was removed: %d %s", resp.StatusCode, got)
	}
	// The alerts stream follows the set from its next heartbeat on.
	alerts.nextRaw() // heartbeat
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C01","alert":"old"}`)
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C02","alert":"new"}`)
	if ev := alerts.expect("machine-alert", "C02"); !strings.Contains(ev.Data, "new") {
		t.Fatal(ev.Data)
	}
}

func TestRevokedTicketEndsItsStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	tk := e.ticket("1", purpose.Any)
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(tk))
	first := c.expect("system", "")
	claims, err := e.app.Tickets.Parse(tk)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.app.Tickets.Revoke(t.Context(), claims.ID); err != nil {
		t.Fatal(err)
	}
	e.waitTimers(2)
	e.clock.Advance(e.app.Config.HeartbeatInterval)
	if ev := c.next(); ev.json(t)["kind"] != "revoked" {
		t.Fatalf("%+v", ev)
	}
	c.ended()
	resp := e.get("/sse/stream?deviceId=C01&ticket="+url.QueryEscape(tk), "Last-Event-ID", first.ID)
	if resp.StatusCode != 401 {
		t.Fatalf("reconnect after revoke: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
