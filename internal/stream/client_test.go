package stream_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
)

// Server features the browser client (/sse/client.js) relies on.

// message is the alert's message text.
func message(t *testing.T, ev event) string {
	t.Helper()
	a, _ := ev.json(t)["alert"].(map[string]any)
	m, _ := a["message"].(string)
	return m
}

func TestLastEventIDQueryParameterResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	tk, _, err := e.app.Tickets.Issue(t.Context(), "1", purpose.Alerts, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.Issued(tk)
	path := "/sse/alerts?ticket=" + url.QueryEscape(tk)
	c := e.open(path)
	last := c.expect("system", "")
	c.resp.Body.Close()
	c.ended()
	e.clock.Advance(2 * time.Minute) // the ticket expired: only a valid cursor admits
	e.alert("C01", e.clock.Now(), "while away", true)

	forged := "AAAAAAAAAAAAAAAAAAAAAA" + last.ID[22:]
	// The header wins over the query parameter when both are sent.
	if resp := e.get(path+"&lastEventId="+url.QueryEscape(last.ID), "Last-Event-ID", forged); resp.StatusCode != 401 {
		t.Fatalf("forged header with a valid query cursor: %d, want 401", resp.StatusCode)
	}
	r := e.open(path + "&lastEventId=" + url.QueryEscape(last.ID))
	r.expect("system", "")
	if m := message(t, r.expect("machine-alert", "C01")); m != "while away" {
		t.Fatalf("replayed %q", m)
	}
}

func TestFreshTicketWithExpiredCursorGivesTheReplayPosition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01", "C02")
	e.own("2", "C09")
	c := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	c.expect("system", "")
	e.alert("C01", t0.Add(time.Second), "seen", true)
	last := c.expect("machine-alert", "C01")
	c.resp.Body.Close()
	c.ended()
	// Another user's stream, ended but still on record.
	o := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("2", purpose.Alerts)))
	theirs := o.expect("system", "").ID
	o.resp.Body.Close()
	o.ended()

	// Away for longer than the resume window: the lease record is gone,
	// and the old ticket would not do any more.
	e.alert("C02", t0.Add(2*time.Second), "missed 1", false)
	e.alert("C09", t0.Add(3*time.Second), "not mine", false)
	e.alert("C01", t0.Add(4*time.Second), "missed 2", false)
	if err := e.rdb.Del(t.Context(), e.keys.Lease(strings.Split(last.ID, ".")[0])).Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)

	fresh := e.ticket("1", purpose.Alerts)
	r := e.open("/sse/alerts?ticket="+url.QueryEscape(fresh), "Last-Event-ID", last.ID)
	r.expect("system", "")
	if got := message(t, r.expect("machine-alert", "C02")) + "," + message(t, r.expect("machine-alert", "C01")); got != "missed 1,missed 2" {
		t.Fatalf("replayed %s, want missed 1,missed 2", got)
	}
	e.alert("C01", e.clock.Now(), "live", true)
	if m := message(t, r.expect("machine-alert", "C01")); m != "live" {
		t.Fatalf("after replay %q (a second copy?)", m)
	}
	r.resp.Body.Close()
	r.ended()

	// Another user's cursor gives no position: a fresh start, no replay.
	f := e.open("/sse/alerts?ticket="+url.QueryEscape(e.ticket("1", purpose.Alerts)), "Last-Event-ID", theirs)
	f.expect("system", "")
	e.alert("C01", e.clock.Now().Add(time.Second), "next", true)
	if m := message(t, f.expect("machine-alert", "C01")); m != "next" {
		t.Fatalf("a foreign cursor replayed %q", m)
	}
}

func TestHistorySendsTheNewestAlertsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01", "C02")
	var newest string
	for i, d := range []string{"C01", "C02", "C01", "C01", "C02", "C01"} {
		newest = e.alert(d, t0.Add(-time.Duration(10-i)*time.Second), "h"+string(rune('0'+i)), false)
	}
	if err := e.rdb.LPush(t.Context(), e.keys.AlertHistory("C01"), `{"deviceId":"C01","alert":{"message":"no time"}}`).Err(); err != nil {
		t.Fatal(err)
	}
	e.own("2", "C09")
	e.alert("C09", t0, "not mine", false)

	for _, bad := range []string{"101", "-1", "x", "+3", "1.5"} {
		resp := e.get("/sse/alerts?history=" + bad + "&ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
		if got := body(t, resp); resp.StatusCode != 400 || !strings.Contains(got, "history must be an integer from 0 to 100") {
			t.Errorf("history=%s: %d %s", bad, resp.StatusCode, got)
		}
	}
	c := e.open("/sse/alerts?history=4&ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	c.expect("system", "")
	var got []string
	for range 4 {
		got = append(got, message(t, c.expect("machine-alert", "")))
	}
	if strings.Join(got, ",") != "h2,h3,h4,h5" {
		t.Fatalf("history %v, want h2,h3,h4,h5 (newest four, oldest first)", got)
	}
	e.publish(e.keys.Channel(channel.Alert), newest) // its live copy arrives late: not twice
	e.alert("C02", t0.Add(time.Second), "live", true)
	if m := message(t, c.expect("machine-alert", "C02")); m != "live" {
		t.Fatalf("after history %q", m)
	}
	c.resp.Body.Close()
	c.ended()

	// history=0 (the default) sends none.
	z := e.open("/sse/alerts?history=0&ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	z.expect("system", "")
	e.alert("C02", t0.Add(2*time.Second), "first", true)
	if m := message(t, z.expect("machine-alert", "C02")); m != "first" {
		t.Fatalf("history=0 sent %q", m)
	}
}

func (e *env) closeStream(tk, id string) int {
	e.t.Helper()
	path := "/sse/close"
	if tk != "" {
		path += "?ticket=" + url.QueryEscape(tk)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(id))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestCloseEndpointEndsOnlyTheNamedStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	e.own("2", "C01")
	mine, theirs := e.ticket("1", purpose.Alerts), e.ticket("2", purpose.Alerts)
	a := e.open("/sse/alerts?ticket=" + url.QueryEscape(mine))
	myID := a.expect("system", "").ID
	b := e.open("/sse/alerts?ticket=" + url.QueryEscape(theirs))
	theirID := b.expect("system", "").ID

	refused := []struct {
		name, ticket, id string
		want             int
		reason, user     string // of its "close refused" line
	}{
		{"no ticket", "", myID, 401, "no ticket", ""},
		{"not a ticket", "x.y.z", myID, 401, "invalid ticket", ""},
		{"not an id", mine, "hello", 400, "body not a stream id", "1"},
		{"forged id", mine, "AAAAAAAAAAAAAAAAAAAAAA" + myID[22:], 404, "no such live stream", "1"},
		{"another user's stream", mine, theirID, 404, "no such live stream", "1"},
		{"my stream, another user's ticket", theirs, myID, 404, "no such live stream", "2"},
		{"another ticket of mine", e.ticket("1", purpose.Alerts), myID, 404, "no such live stream", "1"},
	}
	for _, tc := range refused {
		if got := e.closeStream(tc.ticket, tc.id); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// Each refusal leaves one line at info, as a refused connect does.
	lines := e.logLines("close refused")
	if len(lines) != len(refused) {
		t.Fatalf("%d refusal lines for %d refusals:\n%s", len(lines), len(refused), e.logs.String())
	}
	for i, m := range lines {
		tc := refused[i]
		if user, _ := m["user"].(string); m["level"] != "INFO" || m["status"] != float64(tc.want) || m["reason"] != tc.reason || m["ip"] != "127.0.0.1" || user != tc.user {
			t.Errorf("%s: line %v, want %d %q user %q", tc.name, m, tc.want, tc.reason, tc.user)
		}
	}
	if resp := e.get("/sse/close"); resp.StatusCode != 405 {
		t.Errorf("GET /sse/close: %d", resp.StatusCode)
	}
	// Nothing was ended: both streams still get alerts.
	e.alert("C01", t0.Add(time.Second), "still here", true)
	a.expect("machine-alert", "C01")
	b.expect("machine-alert", "C01")

	if got := e.closeStream(mine, myID); got != 204 {
		t.Fatalf("close: %d, want 204", got)
	}
	// The stream ends at once (well within a second), with its lease freed.
	within, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if a.EndedCtx(within) != nil {
		t.Fatal("closed stream still open after 1s")
	}
	if !strings.Contains(e.logs.String(), `"reason":"closed"`) {
		t.Errorf("no stream end with reason closed in the logs")
	}
	counts, _, err := e.app.Registry.List(t.Context(), "1", e.clock.Now())
	if err != nil || counts.Total != 0 {
		t.Fatalf("user 1 still holds %+v (%v)", counts, err)
	}
	if got := e.closeStream(mine, myID); got != 404 {
		t.Errorf("second close: %d, want 404", got)
	}
	// The other user's stream lives on, and the closed one may resume.
	e.alert("C01", t0.Add(2*time.Second), "after", true)
	if m := message(t, b.expect("machine-alert", "C01")); m != "after" {
		t.Fatal(m)
	}
	r := e.open("/sse/alerts?ticket="+url.QueryEscape(mine), "Last-Event-ID", myID)
	r.expect("system", "")
	if m := message(t, r.expect("machine-alert", "C01")); m != "still here" {
		t.Fatalf("resume after close replayed %q", m)
	}
}

func TestClientFilesAreServedCacheable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for path, ctype := range map[string]string{"/sse/client.js": "text/javascript", "/sse/client.d.ts": "application/typescript"} {
		resp := e.get(path)
		b := body(t, resp)
		tag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || tag == "" || !strings.Contains(b, "connect") {
			t.Fatalf("%s: %d %q etag %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), tag)
		}
		if again := e.get(path, "If-None-Match", tag); again.StatusCode != 304 {
			t.Errorf("%s revalidated: %d, want 304", path, again.StatusCode)
		}
		if other := e.get(path, "If-None-Match", `"other"`); other.StatusCode != 200 {
			t.Errorf("%s with another tag: %d", path, other.StatusCode)
		}
	}
}
