package main

import (
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
)

// TestCloseBeacon: the ticket function also serves POST /sse/close (both
// are POSTs, routed alike at the edge). A beacon naming a live stream of
// its ticket frees the lease; one naming no such stream is refused.
func TestCloseBeacon(t *testing.T) {
	redistest.URL(t)
	bin := lambdatest.Build(t, ".")
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	tickets, err := ticket.New([]byte(ticketSecret), rdb, keys.SSEPrefix+"ticket:", nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := lambdatest.Start(t)
	lambdatest.Run(t, bin, rt, append(lambdatest.KeyEnv(keys),
		"REDIS_URL="+redistest.URL(t), "STREAM_TICKET_SECRET="+ticketSecret, "ACCESS_TOKEN_SECRET="+accessSecret)...)

	// A live alerts stream of the user, as the stream function admits it.
	ctx := lambdatest.Within(t, 5*time.Second)
	tk, c, err := tickets.Issue(ctx, userID, ticket.PurposeAlerts, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(rdb, keys, registry.Limits{Alerts: 1, Data: 1, PerIP: 5, Policy: config.PolicyEvictOldest}, time.Minute, 2*time.Minute)
	const lease = "AbCdEfGhIjKlMnOpQrStUv"
	if _, err := reg.Connect(ctx, registry.Request{
		ID: lease, UserID: userID, Purpose: registry.Alerts, IP: "203.0.113.7", TicketKey: tickets.Key(c.ID), TicketID: c.ID, ConnectedAt: time.Now(),
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
}
