package stream_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/machinedash/sse/internal/config"
)

// A user gets at most MAX_TICKETS_PER_MINUTE tickets a minute; past that,
// 429 with the seed's body and Retry-After, and no Redis record. Other
// users are not affected.
func TestTicketIssueIsRateLimitedPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.MaxTicketsPerMinute = 3 })
	tok := e.accessToken("1")
	for i := range 3 {
		resp, got := e.post("/sse/stream-ticket", tok, `{"ttlSeconds":3600}`)
		if resp.StatusCode != 200 {
			t.Fatalf("ticket %d: %d %s", i, resp.StatusCode, got)
		}
		var out struct{ Ticket string }
		_ = json.Unmarshal([]byte(got), &out)
		e.issued = append(e.issued, out.Ticket)
	}
	records := func() int {
		keys, err := e.rdb.Keys(t.Context(), e.keys.Ticket("*")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	before := records()
	resp, got := e.post("/sse/stream-ticket", tok, `{"ttlSeconds":3600}`)
	if resp.StatusCode != 429 || got != `{"error":"Too Many Requests","message":"Too many stream tickets requested; try again later","statusCode":429}` {
		t.Fatalf("4th ticket: %d %s", resp.StatusCode, got)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if n := records(); n != before {
		t.Fatalf("%d ticket records after a refused issue, want %d", n, before)
	}
	if resp, got := e.post("/sse/stream-ticket", e.accessToken("2"), `{}`); resp.StatusCode != 200 {
		t.Fatalf("another user: %d %s", resp.StatusCode, got)
	} else {
		var out struct{ Ticket string }
		_ = json.Unmarshal([]byte(got), &out)
		e.issued = append(e.issued, out.Ticket)
	}
}
