package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/api"
	"github.com/machinedash/sse/internal/apptest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/ssetest"
	"github.com/machinedash/sse/internal/ticket"
)

// These tests drive the small endpoints through the same assembled mux as
// the streams (internal/apptest), so they also show the three share one
// contract.

func TestTicketEndpoint(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, nil)
	tok := e.AccessToken("1")

	resp, got := e.Post("/sse/stream-ticket", tok, `{"purpose":"alerts","ttlSeconds":120}`)
	var out struct {
		Ticket           string `json:"ticket"`
		ExpiresInSeconds int    `json:"expiresInSeconds"`
		TicketID         string `json:"ticketId"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(got), &out) != nil || out.ExpiresInSeconds != 120 || out.Ticket == "" {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	e.Issued(out.Ticket)
	ttl := e.RDB.TTL(t.Context(), e.Keys.Ticket(out.TicketID)).Val()
	if ttl < 119*time.Second || ttl > 120*time.Second {
		t.Fatalf("record TTL %v", ttl)
	}
	c, err := e.App.Tickets.Verify(t.Context(), out.Ticket)
	if err != nil || c.UserID != "1" || c.Purpose != purpose.Alerts || c.ID != out.TicketID {
		t.Fatalf("%+v %v", c, err)
	}
	// Empty body: defaults (300 s, any purpose).
	resp, got = e.Post("/sse/stream-ticket", tok, ``)
	if resp.StatusCode != 200 || !strings.Contains(got, `"expiresInSeconds":300`) {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	var plain struct{ Ticket string }
	_ = json.Unmarshal([]byte(got), &plain)
	e.Issued(plain.Ticket)
	// Deleting the record revokes it.
	pc, err := e.App.Tickets.Parse(plain.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.RDB.Del(t.Context(), e.App.Tickets.Key(pc.ID)).Result(); err != nil || n != 1 {
		t.Fatalf("no record: %d %v", n, err)
	}
	if _, err := e.App.Tickets.Verify(t.Context(), plain.Ticket); err != ticket.ErrRevoked {
		t.Fatalf("after delete: %v", err)
	}

	for _, tc := range []struct {
		name, bearer, body string
		code               int
		msg                string
	}{
		{"no token", "", `{}`, 401, "Authentication required"},
		{"bad token", "nope", `{}`, 401, "Invalid or expired access token"},
		{"stream ticket as access token", out.Ticket, `{}`, 401, "Invalid or expired access token"},
		{"ttl low", tok, `{"ttlSeconds":59}`, 400, "ttlSeconds must be an integer from 60 to 3600"},
		{"ttl high", tok, `{"ttlSeconds":3601}`, 400, "ttlSeconds must be an integer from 60 to 3600"},
		{"ttl string", tok, `{"ttlSeconds":"300"}`, 400, "ttlSeconds must be an integer from 60 to 3600"},
		{"purpose any", tok, `{"purpose":"any"}`, 400, `purpose must be \"alerts\" or \"data\"`},
		{"purpose number", tok, `{"purpose":3}`, 400, `purpose must be \"alerts\" or \"data\"`},
		{"not json", tok, `ttl=5`, 400, "Request body must be a JSON object"},
		{"array", tok, `[1]`, 400, "Request body must be a JSON object"},
		{"huge", tok, `{"x":"` + strings.Repeat("x", 5000) + `"}`, 400, "Request body too large"},
	} {
		resp, got := e.Post("/sse/stream-ticket", tc.bearer, tc.body)
		want := `"message":"` + tc.msg + `"`
		if resp.StatusCode != tc.code || !strings.Contains(got, want) || !strings.Contains(got, `"statusCode":`) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, got)
		}
	}
	resp = e.Get("/sse/stream-ticket")
	if resp.StatusCode != 405 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestStatusEndpoint(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, nil)
	e.Own("1", "C01", "C02")
	anyTicket := e.Ticket("1", purpose.Any)
	c := e.Open("/sse/stream?deviceIds=C01,C02&ticket=" + url.QueryEscape(e.Ticket("1", purpose.Data)))
	c.Expect("system", "")
	e.Clock.Advance(7 * time.Second)

	resp := e.Get("/sse/status?ticket=" + url.QueryEscape(anyTicket))
	var st struct {
		UserID        any    `json:"userId"`
		TicketPurpose string `json:"ticketPurpose"`
		Connections   struct{ Alerts, Data, Total int }
		Limits        struct{ Alerts, Data int }
		Active        []struct {
			ID          string   `json:"id"`
			Purpose     string   `json:"purpose"`
			DeviceCount int      `json:"deviceCount"`
			Devices     []string `json:"devices"`
			ConnectedAt string   `json:"connectedAt"`
			Uptime      int      `json:"uptime"`
		} `json:"activeConnections"`
	}
	got := ssetest.Body(t, resp)
	if resp.StatusCode != 200 || json.Unmarshal([]byte(got), &st) != nil {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	if st.UserID != 1.0 || st.TicketPurpose != "any" || st.Connections.Data != 1 || st.Connections.Total != 1 ||
		st.Limits.Alerts != 1 || st.Limits.Data != 1 || len(st.Active) != 1 {
		t.Fatalf("%s", got)
	}
	a := st.Active[0]
	if a.Purpose != "data" || a.DeviceCount != 2 || strings.Join(a.Devices, ",") != "C01,C02" ||
		a.ConnectedAt != "2026-01-27T12:00:00.000Z" || a.Uptime != 7 || a.ID == "" {
		t.Fatalf("%+v", a)
	}
	refused := []struct{ query, reason string }{{"", "no ticket"}, {"?ticket=bad", "invalid ticket"}}
	for _, tc := range refused {
		resp := e.Get("/sse/status" + tc.query)
		if got := ssetest.Body(t, resp); resp.StatusCode != 401 || !strings.Contains(got, `"statusCode":401`) {
			t.Errorf("%q: %d %s", tc.query, resp.StatusCode, got)
		}
	}
	// Each refusal leaves one "status refused" line at info, as the
	// ticket endpoint's do.
	lines := e.Logs.Lines("status refused")
	if len(lines) != len(refused) {
		t.Fatalf("%d refusal lines for %d refusals:\n%s", len(lines), len(refused), e.Logs.String())
	}
	for i, m := range lines {
		if m["level"] != "INFO" || m["status"] != 401.0 || m["reason"] != refused[i].reason || m["ip"] == "" {
			t.Errorf("line %d: %v, want 401 %q", i, m, refused[i].reason)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, nil)
	resp := e.Get("/health")
	if got := strings.TrimSpace(ssetest.Body(t, resp)); resp.StatusCode != 200 || got != `{"malformedMessages":0,"redis":"up","status":"ok"}` {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	down := redis.NewClient(&redis.Options{Addr: redistest.DeadAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	rec := httptest.NewRecorder()
	api.Health(down, e.Keys.MalformedCount()).ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), "GET", "/health", nil))
	if rec.Code != 503 || strings.TrimSpace(rec.Body.String()) != `{"redis":"down","status":"error"}` {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
