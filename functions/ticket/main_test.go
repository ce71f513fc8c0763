package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
)

const (
	ticketSecret = "ticket-test-stream-ticket-secret-0123456789"
	accessSecret = "ticket-test-access-token-secret-0123456789"
	userID       = "42"
)

// TestTicket runs the real ticket bootstrap against the fake Runtime API
// and a real Redis: one warm process, a good and a bad access token.
func TestTicket(t *testing.T) {
	redistest.URL(t) // skip (or fail with REQUIRE_REDIS=1) before building
	bin := lambdatest.Build(t, ".")
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	tickets, err := ticket.New([]byte(ticketSecret), rdb, keys.Ticket(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := lambdatest.Start(t)
	proc := lambdatest.Run(t, bin, rt, append(lambdatest.KeyEnv(keys),
		"REDIS_URL="+redistest.URL(t),
		"STREAM_TICKET_SECRET="+ticketSecret,
		"ACCESS_TOKEN_SECRET="+accessSecret,
		"LOG_LEVEL=debug",
	)...)
	good, err := access.Sign([]byte(accessSecret), "", userID, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := access.Sign([]byte("some-other-secret-0123456789abcdefghij"), "", userID, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	var issued string
	t.Run("valid access token gets a ticket", func(t *testing.T) {
		inv := rt.Invoke(lambdatest.Event(t, "ticket-request.json", "{{ACCESS_TOKEN}}", good), time.Now().Add(10*time.Second))
		p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if p.StatusCode != 200 || !strings.HasPrefix(p.Headers["Content-Type"], "application/json") {
			t.Fatalf("response = %d %v %s, want 200 JSON", p.StatusCode, p.Headers, body)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Ticket           string `json:"ticket"`
			ExpiresInSeconds int    `json:"expiresInSeconds"`
			TicketID         string `json:"ticketId"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || resp.Ticket == "" || resp.ExpiresInSeconds != 300 || resp.TicketID == "" {
			t.Fatalf("body = %s, want exactly {ticket, expiresInSeconds:300, ticketId}", body)
		}
		// The ticket is live in Redis, for the user and purpose asked for.
		c, err := tickets.Verify(lambdatest.Within(t, 3*time.Second), resp.Ticket)
		if err != nil {
			t.Fatalf("issued ticket does not verify: %v", err)
		}
		if c.UserID != userID || c.Purpose != purpose.Data || c.ID != resp.TicketID {
			t.Errorf("claims = %+v, want user %s, purpose data, id %s", c, userID, resp.TicketID)
		}
		issued = resp.Ticket
		r := inv.Result()
		t.Logf("cold invocation: event fetched %s after Invoke, response posted %s later, complete %s later",
			r.Fetched.Sub(r.Queued).Round(100*time.Microsecond), r.Posted.Sub(r.Fetched).Round(100*time.Microsecond), r.Finished.Sub(r.Posted).Round(100*time.Microsecond))
	})

	t.Run("forged access token is a 401", func(t *testing.T) {
		inv := rt.Invoke(lambdatest.Event(t, "ticket-request.json", "{{ACCESS_TOKEN}}", forged), time.Now().Add(10*time.Second))
		p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		const want = `{"error":"Unauthorized","message":"Invalid or expired access token","statusCode":401}`
		if p.StatusCode != 401 || string(bytes.TrimSpace(body)) != want {
			t.Errorf("response = %d %s, want 401 %s", p.StatusCode, body, want)
		}
	})

	t.Run("payload fits the BUFFERED function URL", func(t *testing.T) {
		inv := rt.Invoke(lambdatest.Event(t, "ticket-request.json", "{{ACCESS_TOKEN}}", good), time.Now().Add(10*time.Second))
		res, err := inv.Wait(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Buffered(); err != nil {
			t.Fatalf("a BUFFERED URL cannot read this payload (Content-Type %q): %v", res.Header.Get("Content-Type"), err)
		}
	})

	// The ticket function also serves POST /sse/close (both are POSTs,
	// routed alike at the edge). A beacon naming a live stream of its
	// ticket frees the lease; one naming no such stream is refused.
	var beaconTicket string
	t.Run("close beacon frees a live lease, refuses a forged id", func(t *testing.T) {
		ctx := lambdatest.Within(t, 5*time.Second)
		tk, c, err := tickets.Issue(ctx, userID, purpose.Alerts, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		beaconTicket = tk
		// A live alerts stream of the user, as the stream function admits it.
		reg := registry.New(rdb, keys, registry.Limits{Alerts: 1, Data: 1, PerIP: 5, Policy: config.PolicyEvictOldest}, time.Minute, 2*time.Minute)
		const lease = "AbCdEfGhIjKlMnOpQrStUv"
		if _, err := reg.Connect(ctx, registry.Request{
			ID: lease, UserID: userID, Purpose: purpose.Alerts, IP: "203.0.113.7", TicketKey: tickets.Key(c.ID), TicketID: c.ID, ConnectedAt: time.Now(),
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
		beacon := func(id string) (int, string) {
			t.Helper()
			inv := rt.Invoke(lambdatest.Event(t, "close-request.json", "{{TICKET}}", tk, "{{LAST_EVENT_ID}}", id), time.Now().Add(10*time.Second))
			p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return p.StatusCode, string(body)
		}
		if code, body := beacon("ZZZZZZZZZZZZZZZZZZZZZZ.mkwjnuo0.5"); code != 404 || !strings.Contains(body, "No open stream") {
			t.Fatalf("forged id: %d %s", code, body)
		}
		if n, _, _ := reg.List(ctx, userID, time.Now()); n.Alerts != 1 {
			t.Fatalf("a refused beacon ended something: %+v", n)
		}
		if code, body := beacon(lease + ".mkwjnuo0.5"); code != 204 {
			t.Fatalf("close: %d %s, want 204", code, body)
		}
		if n, _, _ := reg.List(ctx, userID, time.Now()); n.Total != 0 {
			t.Fatalf("lease not freed: %+v", n)
		}
	})

	t.Run("logs hold no token or ticket", func(t *testing.T) {
		if err := proc.WaitLogs(lambdatest.Within(t, 3*time.Second), "ticket issued"); err != nil {
			t.Error(err)
		}
		logs, err := proc.Stop()
		if err != nil {
			t.Fatal(err)
		}
		// Each line of an invocation names it (lambdacontext.NewLogger's
		// requestId), the issue as well as the refusals.
		for _, msg := range []string{"ticket issued", "ticket refused"} {
			if !strings.Contains(logs, `"msg":"`+msg+`"`) {
				t.Errorf("no %q line", msg)
			}
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, `"msg":"`+msg+`"`) && !strings.Contains(l, `"requestId":"`) {
					t.Errorf("a %q line without the request id: %s", msg, l)
				}
			}
		}
		for name, s := range map[string]string{"access token": good, "forged token": forged, "ticket": issued, "beacon's ticket": beaconTicket, "secret": ticketSecret} {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("logs contain the %s", name)
			}
		}
	})
}
