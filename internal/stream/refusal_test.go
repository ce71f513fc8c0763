package stream_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
)

// The ticket is checked before anything else of the request: without a
// valid one, a bad device list is still a 401.
func TestTicketIsCheckedBeforeTheDevices(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var ids []string
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("C%03d", i))
	}
	manyDevices := strings.Join(ids, ",")
	for _, path := range []string{
		"/sse/stream?deviceId=" + url.QueryEscape("C0\n1"),
		"/sse/stream",
		"/sse/stream?deviceIds=" + manyDevices + "&ticket=garbage",
		"/sse/stream?deviceId=C01&includeStatus=maybe&ticket=garbage",
	} {
		resp := e.get(path)
		if got := body(t, resp); resp.StatusCode != 401 || !strings.Contains(got, `"statusCode":401`) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, got)
		}
	}
}

// Every refused connect leaves exactly one log line, at info, with its
// status and reason, and none with a secret (the env's cleanup checks the
// tickets).
func TestEachRefusalIsLoggedOnceWithItsReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.ConnectionLimitPolicy = config.PolicyReject })
	e.own("1", "C01")
	// The clock moves before the stream opens: moved while it is open, it
	// would make the stream heartbeat, renew and perhaps end, racing the
	// refusals below (the user-limit 429 needs it still open).
	expired, _, err := e.app.Tickets.Issue(t.Context(), "1", purpose.Any, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.Issued(expired)
	e.clock.Advance(2 * time.Minute)
	data := url.QueryEscape(e.ticket("1", purpose.Data))
	e.open("/sse/stream?deviceId=C01&ticket="+data).expect("system", "")
	refused := []struct {
		path   string
		status int
		reason string
	}{
		{"/sse/stream?deviceId=C01", 401, "no ticket"},
		{"/sse/alerts?ticket=garbage", 401, "invalid ticket"},
		{"/sse/alerts?ticket=" + data, 401, "ticket purpose"},
		{"/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(expired), 401, "expired ticket without cursor"},
		{"/sse/stream?ticket=" + data, 400, "devices: device: no device id"},
		{"/sse/stream?deviceId=X9&ticket=" + data, 403, "device not owned"},
		{"/sse/stream?deviceId=C01&ticket=" + data, 429, "user limit"},
	}
	for _, tc := range refused {
		resp := e.get(tc.path)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}
	lines := e.logLines("stream refused")
	if len(lines) != len(refused) {
		t.Fatalf("%d refusal lines for %d refusals:\n%s", len(lines), len(refused), e.logs.String())
	}
	for i, m := range lines {
		if m["level"] != "INFO" || m["status"] != float64(refused[i].status) || m["reason"] != refused[i].reason || m["ip"] != "127.0.0.1" {
			t.Errorf("refusal %d: %v", i, m)
		}
	}
}
