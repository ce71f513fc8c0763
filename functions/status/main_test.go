package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/ticket"
)

const (
	ticketSecret = "status-test-stream-ticket-secret-0123456789"
	userID       = "42"
)

// TestStatus runs the real status bootstrap against the fake Runtime API
// and a real Redis: one warm process, a valid and a revoked ticket.
func TestStatus(t *testing.T) {
	redistest.URL(t) // skip (or fail with REQUIRE_REDIS=1) before building
	bin := lambdatest.Build(t, ".")
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	tickets, err := ticket.New([]byte(ticketSecret), rdb, keys.Ticket(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, claims, err := tickets.Issue(lambdatest.Within(t, 3*time.Second), userID, purpose.Data, ticket.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	rt := lambdatest.Start(t)
	proc := lambdatest.Run(t, bin, rt, append(lambdatest.KeyEnv(keys),
		"REDIS_URL="+redistest.URL(t),
		"STREAM_TICKET_SECRET="+ticketSecret,
		"LOG_LEVEL=debug",
	)...)

	t.Run("valid ticket gets the seed's status JSON", func(t *testing.T) {
		inv := rt.Invoke(lambdatest.Event(t, "status-request.json", "{{TICKET}}", tok), time.Now().Add(10*time.Second))
		p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if p.StatusCode != 200 || !strings.HasPrefix(p.Headers["Content-Type"], "application/json") {
			t.Fatalf("response = %d %v %s, want 200 JSON", p.StatusCode, p.Headers, body)
		}
		var got struct {
			UserID            json.RawMessage `json:"userId"`
			TicketPurpose     string          `json:"ticketPurpose"`
			Connections       map[string]int  `json:"connections"`
			Limits            map[string]int  `json:"limits"`
			ActiveConnections []any           `json:"activeConnections"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		// A numeric user id is a JSON number, as the NestJS backend sent it.
		if string(got.UserID) != userID || got.TicketPurpose != "data" {
			t.Errorf("userId %s, ticketPurpose %q; want %s, data (body %s)", got.UserID, got.TicketPurpose, userID, body)
		}
		if got.Connections["total"] != 0 || got.Limits["alerts"] != 1 || got.Limits["data"] != 1 || got.ActiveConnections == nil {
			t.Errorf("body = %s, want no connections, limits 1/1 and an empty list", body)
		}
	})

	t.Run("revoked ticket is a 401", func(t *testing.T) {
		if err := tickets.Revoke(lambdatest.Within(t, 3*time.Second), claims.ID); err != nil {
			t.Fatal(err)
		}
		inv := rt.Invoke(lambdatest.Event(t, "status-request.json", "{{TICKET}}", tok), time.Now().Add(10*time.Second))
		p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		const want = `{"error":"Unauthorized","message":"Invalid or expired stream ticket","statusCode":401}`
		if p.StatusCode != 401 || string(bytes.TrimSpace(body)) != want {
			t.Errorf("response = %d %s, want 401 %s", p.StatusCode, body, want)
		}
	})

	t.Run("payload fits the BUFFERED function URL", func(t *testing.T) {
		inv := rt.Invoke(lambdatest.Event(t, "status-request.json", "{{TICKET}}", "x"), time.Now().Add(10*time.Second))
		res, err := inv.Wait(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Buffered(); err != nil {
			t.Fatalf("a BUFFERED URL cannot read this payload (Content-Type %q): %v", res.Header.Get("Content-Type"), err)
		}
	})

	t.Run("serves the browser client", func(t *testing.T) {
		// The same request shape at /sse/client.js (the edge routes
		// /sse/client.* to this function).
		ev := lambdatest.Event(t, "status-request.json", "{{TICKET}}", "x", `"/sse/status"`, `"/sse/client.js"`)
		inv := rt.Invoke(ev, time.Now().Add(10*time.Second))
		p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if p.StatusCode != 200 || !strings.HasPrefix(p.Headers["Content-Type"], "text/javascript") || p.Headers["Etag"]+p.Headers["ETag"] == "" || !bytes.Contains(body, []byte("export function connect(")) {
			t.Fatalf("GET /sse/client.js: %d %v", p.StatusCode, p.Headers)
		}
	})

	t.Run("logs hold no ticket", func(t *testing.T) {
		logs, err := proc.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs, tok) || strings.Contains(logs, ticketSecret) {
			t.Errorf("logs contain the ticket or its secret")
		}
	})
}
