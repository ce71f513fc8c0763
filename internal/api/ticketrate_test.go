package api_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/machinedash/sse/internal/apptest"
	"github.com/machinedash/sse/internal/config"
)

// A user gets at most MAX_TICKETS_PER_MINUTE tickets a minute; past that,
// 429 with the seed's body and Retry-After, and no Redis record. Other
// users are not affected.
func TestTicketIssueIsRateLimitedPerUser(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, func(c *config.Config) { c.MaxTicketsPerMinute = 3 })
	tok := e.AccessToken("1")
	for i := range 3 {
		resp, got := e.Post("/sse/stream-ticket", tok, `{"ttlSeconds":3600}`)
		if resp.StatusCode != 200 {
			t.Fatalf("ticket %d: %d %s", i, resp.StatusCode, got)
		}
		var out struct{ Ticket string }
		_ = json.Unmarshal([]byte(got), &out)
		e.Issued(out.Ticket)
	}
	records := func() int {
		keys, err := e.RDB.Keys(t.Context(), e.Keys.Ticket("*")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	before := records()
	resp, got := e.Post("/sse/stream-ticket", tok, `{"ttlSeconds":3600}`)
	if resp.StatusCode != 429 || got != `{"error":"Too Many Requests","message":"Too many stream tickets requested; try again later","statusCode":429}` {
		t.Fatalf("4th ticket: %d %s", resp.StatusCode, got)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if n := records(); n != before {
		t.Fatalf("%d ticket records after a refused issue, want %d", n, before)
	}
	if resp, got := e.Post("/sse/stream-ticket", e.AccessToken("2"), `{}`); resp.StatusCode != 200 {
		t.Fatalf("another user: %d %s", resp.StatusCode, got)
	} else {
		var out struct{ Ticket string }
		_ = json.Unmarshal([]byte(got), &out)
		e.Issued(out.Ticket)
	}
}
