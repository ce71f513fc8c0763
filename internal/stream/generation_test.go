package stream_test

import (
	"net/url"
	"testing"

	"github.com/machinedash/sse/internal/purpose"
)

// The main app's one command, INCR sse:gen:<userId>, ends every stream of
// the user at its next lease renewal and makes every earlier ticket and
// cursor of the user useless; other users and later tickets are untouched.
func TestUserRevocationGenerationEndsStreamsTicketsAndCursors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	e.own("2", "D01")
	alertsTk := e.ticket("1", purpose.Alerts)
	dataTk := e.ticket("1", purpose.Data)
	alertsPath := "/sse/alerts?ticket=" + url.QueryEscape(alertsTk)
	dataPath := "/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(dataTk)
	alerts := e.open(alertsPath)
	alertsFirst := alerts.expect("system", "")
	data := e.open(dataPath)
	dataFirst := data.expect("system", "")
	other := e.open("/sse/stream?deviceId=D01&ticket=" + url.QueryEscape(e.ticket("2", purpose.Data)))
	other.expect("system", "")

	if err := e.rdb.Incr(t.Context(), e.keys.UserGeneration("1")).Err(); err != nil {
		t.Fatal(err)
	}
	e.waitTimers(6) // three streams, each on its heartbeat and rotation timers
	e.clock.Advance(e.app.Config.HeartbeatInterval)
	for _, c := range []*client{alerts, data} {
		if ev := c.next(); ev.Name != "system" || ev.json(t)["kind"] != "revoked" {
			t.Fatalf("got %s %s, want revoked", ev.Name, ev.Data)
		}
		c.ended()
	}
	if ev := other.nextRaw(); ev.json(t)["kind"] != "heartbeat" {
		t.Fatalf("user 2's stream got %s", ev.Data)
	}

	for _, tc := range []struct{ path, cursor string }{
		{alertsPath, alertsFirst.ID}, // the browser's own reconnect
		{dataPath, dataFirst.ID},
		{dataPath, ""}, // the old ticket, fresh
	} {
		resp := e.get(tc.path, "Last-Event-ID", tc.cursor)
		if got := body(t, resp); resp.StatusCode != 401 {
			t.Fatalf("after revocation: %d %s", resp.StatusCode, got)
		}
	}
	// The status endpoint refuses the old tickets too.
	resp := e.get("/sse/status?ticket=" + url.QueryEscape(dataTk))
	if got := body(t, resp); resp.StatusCode != 401 {
		t.Fatalf("status after revocation: %d %s", resp.StatusCode, got)
	}
	// A ticket issued after the revocation works.
	e.open("/sse/stream?deviceId=C01&ticket="+url.QueryEscape(e.ticket("1", purpose.Data))).expect("system", "")
}

// After INCR sse:gen:<userId> the user's old tickets cannot close their own
// streams either (POST /sse/close answers 401, as connect does);
// the stream is left to its next renewal, which ends it as revoked.
func TestRevokedGenerationCannotCloseItsStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	tk := e.ticket("1", purpose.Alerts)
	c := e.open("/sse/alerts?ticket=" + url.QueryEscape(tk))
	id := c.expect("system", "").ID
	if err := e.rdb.Incr(t.Context(), e.keys.UserGeneration("1")).Err(); err != nil {
		t.Fatal(err)
	}
	if got := e.closeStream(tk, id); got != 401 {
		t.Fatalf("close with a ticket of an older generation: %d, want 401", got)
	}
	// A ticket whose record was deleted is revoked the same way.
	deleted := e.ticket("1", purpose.Alerts)
	claims, err := e.app.Tickets.Parse(deleted)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.app.Tickets.Revoke(t.Context(), claims.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.closeStream(deleted, id); got != 401 {
		t.Fatalf("close with a deleted ticket: %d, want 401", got)
	}
	lines := e.logLines("close refused")
	if len(lines) != 2 {
		t.Fatalf("%d refusal lines for 2 refused closes:\n%s", len(lines), e.logs.String())
	}
	for _, m := range lines {
		if m["status"] != 401.0 || m["reason"] != "revoked ticket" || m["user"] != "1" {
			t.Errorf("refusal line %v, want 401 revoked ticket of user 1", m)
		}
	}
	counts, _, err := e.app.Registry.List(t.Context(), "1", e.clock.Now())
	if err != nil || counts.Alerts != 1 {
		t.Fatalf("the refused close freed the lease: %+v %v", counts, err)
	}
}
