package devserver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/devserver"
)

// post sends a JSON body (Content-Type application/json) and decodes the
// JSON answer.
func post(t *testing.T, url, body string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return send(t, req)
}

// TestDebugEndpoints: /dev/publish goes through Redis to an open stream as
// a simulator message would, a malformed publish is counted by the hub
// and seen in /dev/stats, as is the open stream by its lease id; bad input
// gets the seed's error body.
func TestDebugEndpoints(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{})
	token, _ := login(t, s, "1")
	alerts := open(t, s.URL+"/sse/alerts?ticket="+ticketFor(t, s, token, "alerts"))
	connected := next(t, alerts, "system")
	lease, _, _ := strings.Cut(connected.id, ".")

	r := post(t, s.URL+"/dev/publish", `{"kind":"alert","deviceId":"C02","data":{"alertType":"critical","code":1102,"message":"test alert","value":66.25}}`)
	if r.status != 200 || r.body["receivers"] != float64(1) {
		t.Fatalf("publish: %d %v", r.status, r.body)
	}
	e := next(t, alerts, "machine-alert")
	if p := decode(t, e); p.DeviceID != "C02" || p.Alert["message"] != "test alert" || p.Alert["value"] != 66.25 || p.Timestamp == "" {
		t.Fatalf("alert %s", e.data)
	}

	data := open(t, s.URL+"/sse/stream?ticket="+ticketFor(t, s, token, "data")+"&deviceId=C01")
	next(t, data, "system") // connected: subscribed (no simulator, so no status)
	if r := post(t, s.URL+"/dev/publish", `{"kind":"realtime","deviceId":"C01","data":{"T1":250.5}}`); r.status != 200 {
		t.Fatalf("publish realtime: %d %v", r.status, r.body)
	}
	if p := decode(t, next(t, data, "realtime-update")); p.Data.DevID != "C01" || p.Data.Data["T1"] != 250.5 {
		t.Fatalf("realtime %+v", p)
	}

	before := stats(t, s)["hub"].(map[string]any)["malformed"].(float64)
	if r := post(t, s.URL+"/dev/publish", `{"kind":"malformed","deviceId":"C01"}`); r.status != 200 {
		t.Fatalf("publish malformed: %d %v", r.status, r.body)
	}
	deadline := time.Now().Add(wait)
	for {
		st := stats(t, s)
		if st["hub"].(map[string]any)["malformed"].(float64) == before+1 {
			if _, ok := st["streams"].(map[string]any)[lease]; !ok || st["openStreams"] != float64(2) {
				t.Fatalf("stats lack the alerts stream %s: %v", lease, st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("malformed count did not move: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"kind":"nope","deviceId":"C01","data":{}}`, 400},
		{`{"kind":"alert","deviceId":"bad id!","data":{}}`, 400},
		{`{"kind":"alert","deviceId":"C01"}`, 400},
		{`not json`, 400},
	} {
		if r := post(t, s.URL+"/dev/publish", tc.body); r.status != tc.status || r.body["statusCode"] != float64(tc.status) {
			t.Errorf("%s: %d %v", tc.body, r.status, r.body)
		}
	}
	if r := call(t, "POST", s.URL+"/dev/publish", "", "", `{"kind":"alert","deviceId":"C01","data":{}}`); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("a body that is not declared JSON: %d, want 415", r.status)
	}
	if r := call(t, "GET", s.URL+"/dev/fields", "", "", ""); r.status != 200 || len(r.body["fields"].([]any)) < 10 {
		t.Errorf("fields: %d %v", r.status, r.body)
	}
}

func stats(t *testing.T, s *devserver.Server) map[string]any {
	t.Helper()
	r := call(t, "GET", s.URL+"/dev/stats", "", "", "")
	if r.status != 200 {
		t.Fatalf("stats: %d", r.status)
	}
	return r.body
}
