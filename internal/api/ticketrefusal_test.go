package api_test

import (
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/apptest"
)

// Every 4xx of the ticket endpoint leaves exactly one "ticket refused"
// line at info, with its status, reason and IP, the user once the access
// token is read, and never the token (the env's cleanup checks the logs
// for every token issued).
func TestTicketRefusalsAreLoggedOnce(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, nil)
	tok := e.AccessToken("1")
	refused := []struct {
		bearer, body string
		status       int
		reason, user string
	}{
		{"", `{}`, 401, "no access token", ""},
		{"nope", `{}`, 401, "invalid access token", ""},
		{tok, `[1]`, 400, "body not a JSON object", "1"},
		{tok, `{"x":"` + strings.Repeat("x", 5000) + `"}`, 400, "body too large", "1"},
		{tok, `{"ttlSeconds":59}`, 400, "ttlSeconds", "1"},
		{tok, `{"purpose":"any"}`, 400, "purpose", "1"},
	}
	for _, tc := range refused {
		if resp, got := e.Post("/sse/stream-ticket", tc.bearer, tc.body); resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %s", tc.reason, resp.StatusCode, got)
		}
	}
	lines := e.Logs.Lines("ticket refused")
	if len(lines) != len(refused) {
		t.Fatalf("%d refusal lines for %d refusals:\n%s", len(lines), len(refused), e.Logs.String())
	}
	for i, m := range lines {
		tc := refused[i]
		if m["level"] != "INFO" || m["status"] != float64(tc.status) || m["reason"] != tc.reason || m["ip"] == "" {
			t.Errorf("line %d: %v, want %d %q", i, m, tc.status, tc.reason)
		}
		if user, _ := m["user"].(string); user != tc.user {
			t.Errorf("line %d: user %q, want %q", i, user, tc.user)
		}
	}
}
