package stream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/ticket"
)

func TestRotationEndsWithRetry(t *testing.T) {
	t.Parallel()
	const life = 60 * time.Second
	e := newEnv(t, func(c *config.Config) {
		c.StreamMaxDuration = life
		c.HeartbeatInterval = time.Hour // only the rotation timer runs
	})
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	e.waitTimers(2)
	e.clock.Advance(life)
	if ev := c.next(); ev.Name != "system" || ev.json(t)["kind"] != "reconnect" || !idPattern.MatchString(ev.ID) {
		t.Fatalf("last event %+v", ev)
	}
	c.ended()
	if r := c.lastRetry(); r < 1000 || r > 5000 {
		t.Fatalf("rotation retry %d ms outside 1000..5000", r)
	}
}

func TestResumeWithExpiredTicketTakesOverItsOwnLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.ConnectionLimitPolicy = config.PolicyReject })
	e.own("1", "C01")
	tk, _, err := e.app.Tickets.Issue(t.Context(), "1", purpose.Data, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.Issued(tk)
	path := "/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(tk)
	old := e.open(path)
	last := old.expect("system", "")
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":1}`)
	last = old.expect("realtime-update", "C01")

	// The ticket expires while the stream is open; its lease is renewed
	// by the heartbeat on the way (wait for it, so the renewal cannot race
	// the takeover below).
	e.waitTimers(2)
	e.clock.Advance(61 * time.Second)
	if hb := old.nextRaw(); hb.json(t)["kind"] != "heartbeat" {
		t.Fatalf("%+v", hb)
	}
	if resp := e.get(path); resp.StatusCode != 401 {
		t.Fatalf("expired ticket without cursor: %d", resp.StatusCode)
	}
	// The browser reconnects with the same URL and its Last-Event-ID while
	// the old invocation still runs (Lambda never learns the client left):
	// under reject, it is still admitted, because it takes over its own lease.
	fresh := e.open(path, "Last-Event-ID", last.ID)
	fresh.expect("system", "")
	// The orphaned old stream is ended at once, not left running (billed)
	// until its next heartbeat.
	if ev := old.next(); ev.json(t)["kind"] != "superseded" {
		t.Fatalf("old stream got %+v", ev)
	}
	old.ended()
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":2}`)
	fresh.expect("realtime-update", "C01")
	counts, _, _ := e.app.Registry.List(t.Context(), "1", e.clock.Now())
	if counts.Data != 1 {
		t.Fatalf("%+v leases after takeover", counts)
	}
}

func TestResumeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01", "C02")
	e.own("2", "C01")
	issue := func(user string) string {
		tk, _, err := e.app.Tickets.Issue(t.Context(), user, purpose.Data, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		e.Issued(tk)
		return tk
	}
	mine, theirs := issue("1"), issue("2")
	// Another ticket of the same user, unused: a cursor belongs to the
	// ticket it was issued under, not to its user.
	mineToo := issue("1")
	a := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(mine))
	myID := a.expect("system", "").ID
	b := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(theirs))
	theirID := b.expect("system", "").ID
	e.waitTimers(4)
	e.clock.Advance(61 * time.Second) // both tickets expired

	forged := "AAAAAAAAAAAAAAAAAAAAAA" + myID[22:]
	lease := strings.Split(myID, ".")[0]
	for _, tc := range []struct{ name, path, id string }{
		{"forged cursor", "deviceId=C01&ticket=" + url.QueryEscape(mine), forged},
		{"not a cursor", "deviceId=C01&ticket=" + url.QueryEscape(mine), "12345"},
		{"another user's cursor", "deviceId=C01&ticket=" + url.QueryEscape(mine), theirID},
		{"cursor for other devices", "deviceIds=C01,C02&ticket=" + url.QueryEscape(mine), myID},
		{"other ticket's cursor", "deviceId=C01&ticket=" + url.QueryEscape(theirs), myID},
		{"same user, other ticket's cursor", "deviceId=C01&ticket=" + url.QueryEscape(mineToo), myID},
	} {
		resp := e.get("/sse/stream?"+tc.path, "Last-Event-ID", tc.id)
		if got := body(t, resp); resp.StatusCode != 401 || !strings.Contains(got, "Invalid or expired stream ticket") {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, got)
		}
	}
	// An expired cursor: its lease record is gone after the resume window.
	if err := e.rdb.Del(t.Context(), e.keys.Lease(lease)).Err(); err != nil {
		t.Fatal(err)
	}
	if resp := e.get("/sse/stream?deviceId=C01&ticket="+url.QueryEscape(mine), "Last-Event-ID", myID); resp.StatusCode != 401 {
		t.Errorf("expired cursor: %d", resp.StatusCode)
	}
	// A revoked ticket: the cursor is fine, the ticket is not.
	claims, err := e.app.Tickets.Parse(theirs) // expired: its claims come with ErrExpired
	if !errors.Is(err, ticket.ErrExpired) {
		t.Fatal(err)
	}
	if err := e.app.Tickets.Revoke(t.Context(), claims.ID); err != nil {
		t.Fatal(err)
	}
	if resp := e.get("/sse/stream?deviceId=C01&ticket="+url.QueryEscape(theirs), "Last-Event-ID", theirID); resp.StatusCode != 401 {
		t.Errorf("revoked: %d", resp.StatusCode)
	}
}

func (e *env) alert(device string, at time.Time, msg string, live bool) string {
	e.t.Helper()
	p := fmt.Sprintf(`{"deviceId":%q,"alert":{"message":%q},"timestamp":%q}`, device, msg, at.UTC().Format("2006-01-02T15:04:05.000Z"))
	ctx := context.Background()
	if err := e.rdb.LPush(ctx, e.keys.AlertHistory(device), p).Err(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.rdb.LTrim(ctx, e.keys.AlertHistory(device), 0, 99).Err(); err != nil {
		e.t.Fatal(err)
	}
	if live {
		e.publish(e.keys.Channel(channel.Alert), p)
	}
	return p
}

func TestAlertReplayOnResumeWithoutLossOrDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01", "C02")
	e.alert("C01", t0.Add(-time.Hour), "ancient", false) // before the stream: never replayed
	tk := e.ticket("1", purpose.Alerts)
	path := "/sse/alerts?ticket=" + url.QueryEscape(tk)
	c := e.open(path)
	c.expect("system", "")
	e.alert("C01", t0.Add(1*time.Second), "a1", true)
	last := c.expect("machine-alert", "C01")
	c.resp.Body.Close() // the network drops
	c.ended()

	// While away: three alerts on two devices, one without a timestamp
	// (cannot be placed, not replayed), one of a device the user does not
	// own stored in a list it does own (ignored).
	e.alert("C02", t0.Add(3*time.Second), "b3", true)
	e.alert("C01", t0.Add(2*time.Second), "b2", true)
	e.alert("C01", t0.Add(4*time.Second), "b4", true)
	if err := e.rdb.LPush(t.Context(), e.keys.AlertHistory("C01"), `{"deviceId":"C01","alert":{"message":"nots"}}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.LPush(t.Context(), e.keys.AlertHistory("C02"), `{"deviceId":"X9","alert":{"message":"x"},"timestamp":"2026-01-27T12:00:05.000Z"}`).Err(); err != nil {
		t.Fatal(err)
	}
	// One lands in history just before the reconnect and is published just
	// after it: it must come once.
	dup := e.alert("C02", t0.Add(5*time.Second), "b5", false)

	e.clock.Advance(10 * time.Second)
	r := e.open(path, "Last-Event-ID", last.ID)
	r.expect("system", "")
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, r.expect("machine-alert", "").json(t)["alert"].(map[string]any)["message"].(string))
	}
	if strings.Join(got, ",") != "b2,b3,b4,b5" {
		t.Fatalf("replayed %v, want b2,b3,b4,b5 in order", got)
	}
	e.publish(e.keys.Channel(channel.Alert), dup) // the live copy of b5
	e.alert("C01", t0.Add(12*time.Second), "c1", true)
	if m := r.expect("machine-alert", "C01").json(t)["alert"].(map[string]any)["message"]; m != "c1" {
		t.Fatalf("after replay got %v (b5 twice?)", m)
	}
}

func TestResumeFromTheFirstEventAlone(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/sse/alerts?", "/sse/stream?deviceId=C01&"} {
		e := newEnv(t, nil)
		e.own("1", "C01")
		tk, _, err := e.app.Tickets.Issue(t.Context(), "1", purpose.Any, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		e.Issued(tk)
		url := path + "ticket=" + url.QueryEscape(tk)
		c := e.open(url)
		first := c.expect("system", "")
		if cur := strings.Split(first.ID, "."); len(cur) != 3 || strings.HasPrefix(cur[1], "-") {
			t.Fatalf("%s: first id %q", path, first.ID)
		}
		c.resp.Body.Close()
		c.ended()
		e.clock.Advance(2 * time.Minute) // the ticket has expired
		e.alert("C01", e.clock.Now(), "while away", true)
		r := e.open(url, "Last-Event-ID", first.ID)
		r.expect("system", "")
		if path == "/sse/alerts?" {
			if m := r.expect("machine-alert", "C01").json(t)["alert"].(map[string]any)["message"]; m != "while away" {
				t.Fatal(m)
			}
		}
	}
}

func TestRealtimeIsThrottledAndKeepsTheLastValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.RealtimeMinInterval = time.Second; c.HeartbeatInterval = time.Hour })
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":0}`)
	c.expect("realtime-update", "C01")
	for i := 1; i <= 20; i++ {
		e.publish(e.keys.Channel(channel.Realtime), fmt.Sprintf(`{"deviceId":"C01","data":%d}`, i))
		e.publish(e.keys.Channel(channel.SPC), fmt.Sprintf(`{"deviceId":"C01","data":%d}`, i))
	}
	// spc is never coalesced: all 20 arrive at once, no realtime among them.
	for i := 1; i <= 20; i++ {
		ev := c.expect("spc-update", "C01")
		if ev.json(t)["data"] != float64(i) {
			t.Fatalf("spc %d: %s", i, ev.Data)
		}
	}
	e.waitTimers(3) // heartbeat, rotation, throttle
	e.clock.Advance(time.Second)
	if ev := c.expect("realtime-update", "C01"); ev.json(t)["data"] != 20.0 {
		t.Fatalf("after the interval got %s, want the last value 20", ev.Data)
	}
}

func TestSoftRefusalWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	cfg, _ := config.Load(func(string) string { return "" })
	cfg.StreamTicketSecret.Value = strings.Repeat("t", 32)
	down := redis.NewClient(&redis.Options{Addr: redistest.DeadAddr(t), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	a, err := app.New(cfg, down, slog.New(slog.NewTextHandler(io.Discard, nil)), clockwork.NewFakeClockAt(t0))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Hub.Close()
	srv := httptest.NewServer(a.Mux())
	defer srv.Close()
	// A well-signed ticket, issued while Redis was up; now its record
	// cannot be checked.
	up, _ := redistest.Client(t)
	issuer, _ := ticket.New([]byte(cfg.StreamTicketSecret.Value), up, "", func() time.Time { return t0 })
	tk, _, err := issuer.Issue(t.Context(), "1", purpose.Any, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(srv.URL + "/sse/alerts?ticket=" + url.QueryEscape(tk))
	if err != nil {
		t.Fatal(err)
	}
	got := body(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
		!strings.Contains(got, "event: system\ndata: {\"kind\":\"unavailable\"") {
		t.Fatalf("%d %q", resp.StatusCode, got)
	}
	var retry int
	fmt.Sscanf(got[strings.Index(got, "retry: "):], "retry: %d", &retry)
	if retry < 5000 || retry > 15000 {
		t.Fatalf("retry %d", retry)
	}
}

func TestRedisLostMidStreamEndsSoftly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	// Kill this instance's pub/sub connection, and only it.
	killed := 0
	for _, line := range strings.Split(e.rdb.ClientList(t.Context()).Val(), "\n") {
		if strings.Contains(line, " name="+e.name+" ") && !strings.Contains(line, " sub=0 ") {
			var cid int64
			fmt.Sscanf(line, "id=%d", &cid)
			if e.rdb.ClientKillByFilter(t.Context(), "ID", fmt.Sprint(cid)).Err() == nil {
				killed++
			}
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d subscriber connections, want 1", killed)
	}
	ev := c.next()
	if ev.json(t)["kind"] != "unavailable" {
		t.Fatalf("%+v", ev)
	}
	c.ended()
	if r := c.lastRetry(); r < 5000 || r > 15000 {
		t.Fatalf("retry %d", r)
	}
}

func TestDrainEndsOpenStreamsAndRefusesNewOnes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	c.expect("system", "")
	e.app.Streams.Drain()
	if ev := c.next(); ev.json(t)["kind"] != "unavailable" {
		t.Fatalf("%+v", ev)
	}
	c.ended()
	resp := e.get("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	if got := body(t, resp); resp.StatusCode != 200 || !strings.Contains(got, `"kind":"unavailable"`) {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
}
