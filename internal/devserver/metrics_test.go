package devserver_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/ssetest"
)

// TestMetricsEndpoint: the local server shows the stream figures at GET
// /metrics in the Prometheus text format; the functions' own mux (what
// Lambda serves) has no such route.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{Simulate: true})
	tok, devices := login(t, s, "1")
	events := open(t, s.URL+"/sse/stream?deviceId="+devices[0]+"&ticket="+url.QueryEscape(ticketFor(t, s, tok, "data")))
	next(t, events, "realtime-update")
	if r := call(t, "GET", s.URL+"/sse/alerts?ticket=forged", "", "", ""); r.status != 401 {
		t.Fatalf("forged ticket: %d", r.status)
	}
	req, err := http.NewRequest("GET", s.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := ssetest.Do(t, http.DefaultClient, req)
	body := []byte(ssetest.Body(t, res))
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`(?m)^sse_streams_opened_total\{purpose="data"\} 1$`,
		`(?m)^sse_streams_open 1$`,
		`(?m)^sse_deliveries_total\{event="realtime-update"\} [1-9]\d*$`,
		`(?m)^sse_refusals_total\{status="401"\} 1$`,
		`(?m)^sse_time_to_first_byte_seconds_count 0$`, // counted at the end
	} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
	rec := httptest.NewRecorder()
	s.App.Mux().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Fatalf("the functions' mux answers /metrics with %d", rec.Code)
	}
}
