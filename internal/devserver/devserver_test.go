package devserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/sim"
	"github.com/machinedash/sse/internal/ssetest"
)

// wait bounds every wait for an event.
const wait = 5 * time.Second

// start runs a local server on a free port with the embedded Redis: the
// environment it sees is env only, so a REDIS_URL of the machine is never
// used. Alerts come every tick, cycles (each with an SPC series) every
// 1-2 s, so nothing waits long.
func start(t *testing.T, env map[string]string, o devserver.Options) *devserver.Server {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["LOG_LEVEL"]; !ok {
		env["LOG_LEVEL"] = "warn"
	}
	o.Addr = "127.0.0.1:0"
	o.Getenv = func(k string) string { return env[k] }
	if o.Sim.Seed == 0 {
		o.Sim = sim.Config{Seed: 1, AlertEvery: time.Millisecond, CycleMin: time.Second, CycleMax: 2 * time.Second, SeriesEvery: 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := devserver.Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, method, url, token, origin, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return send(t, req)
}

// send does req and decodes a JSON answer.
func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	method, url := req.Method, req.URL
	res, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, header: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, url, raw)
		}
	}
	return r
}

func login(t *testing.T, s *devserver.Server, user string) (string, []string) {
	t.Helper()
	r := call(t, "POST", s.URL+"/dev/login", "", "", `{"userId":`+user+`}`)
	tok, _ := r.body["accessToken"].(string)
	if r.status != 200 || tok == "" {
		t.Fatalf("login %s: %d %v", user, r.status, r.body)
	}
	var devices []string
	for _, d := range r.body["devices"].([]any) {
		devices = append(devices, d.(string))
	}
	return tok, devices
}

func ticketFor(t *testing.T, s *devserver.Server, token, purpose string) string {
	t.Helper()
	tk, _ := issue(t, s, token, purpose)
	return tk
}

// issue gets a stream ticket and its id.
func issue(t *testing.T, s *devserver.Server, token, purpose string) (ticket, id string) {
	t.Helper()
	r := call(t, "POST", s.URL+"/sse/stream-ticket", token, "", `{"purpose":"`+purpose+`"}`)
	ticket, _ = r.body["ticket"].(string)
	id, _ = r.body["ticketId"].(string)
	if r.status != 200 || ticket == "" || id == "" {
		t.Fatalf("ticket %s: %d %v", purpose, r.status, r.body)
	}
	return ticket, id
}

type event struct {
	id, name, data string
}

// open GETs an SSE endpoint with a plain HTTP client and returns its events
// as they arrive; the channel closes when the stream ends.
func open(t *testing.T, url string) <-chan event {
	t.Helper()
	events, _ := resume(t, url, "", 200)
	return events
}

// resume is open with a Last-Event-ID (when not empty), expecting status;
// stop ends the request, as a browser leaving would.
func resume(t *testing.T, url, lastID string, status int) (events <-chan event, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	t.Cleanup(cancel)
	res := ssetest.Do(t, http.DefaultClient, req)
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != status {
		t.Fatalf("GET stream: %d, want %d", res.StatusCode, status)
	}
	if status == 200 && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET stream: Content-Type %s", res.Header.Get("Content-Type"))
	}
	s := ssetest.Read(t, res.Body)
	out := make(chan event, 1024)
	go func() {
		defer close(out)
		for {
			ev, err := s.NextCtx(ctx)
			if err != nil {
				return
			}
			select {
			case out <- event{id: ev.ID, name: ev.Name, data: ev.Data}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, cancel
}

// next returns the next event named one of names, skipping others; it
// fails after a bounded wait.
func next(t *testing.T, events <-chan event, names ...string) event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("stream ended while waiting for %v", names)
			}
			if slices.Contains(names, e.name) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v within %s", names, wait)
		}
	}
}

type payload struct {
	DeviceID string `json:"deviceId"`
	Data     struct {
		DevID string         `json:"devId"`
		Data  map[string]any `json:"Data"`
		State string         `json:"state"`
	} `json:"data"`
	Alert     map[string]any `json:"alert"`
	Source    string         `json:"source"`
	Timestamp string         `json:"timestamp"`
}

func decode(t *testing.T, e event) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal([]byte(e.data), &p); err != nil {
		t.Fatalf("%s data is not JSON: %s", e.name, e.data)
	}
	return p
}

func TestLocalServerEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{Simulate: true})
	token, devices := login(t, s, "1")
	if !slices.Equal(devices, []string{"C01", "C02", "C03"}) {
		t.Fatalf("user 1 devices %v", devices)
	}

	// Data stream: status snapshot first, then live data from the simulator.
	data := open(t, s.URL+"/sse/stream?ticket="+ticketFor(t, s, token, "data")+"&deviceId=C01")
	if e := next(t, data, "system", "machine-status", "realtime-update"); e.name != "system" || !strings.Contains(e.data, `"connected"`) {
		t.Fatalf("first event %q %s, want system connected", e.name, e.data)
	}
	e := next(t, data, "machine-status", "realtime-update")
	if e.name != "machine-status" {
		t.Fatalf("got %s before machine-status", e.name)
	}
	if p := decode(t, e); p.DeviceID != "C01" || p.Source != "cache" || p.Data.DevID != "C01" || p.Data.State == "" || p.Data.Data["T1"] == nil {
		t.Fatalf("machine-status: %s", e.data)
	}
	e = next(t, data, "realtime-update")
	if p := decode(t, e); p.DeviceID != "C01" || p.Data.DevID != "C01" || p.Data.Data["T1"] == nil || p.Data.Data["OT"] == nil {
		t.Fatalf("realtime-update: %s", e.data)
	}
	if e := next(t, data, "spc-update"); decode(t, e).Data.Data["CYCN"] == nil {
		t.Fatalf("spc-update: %s", e.data)
	}

	// Alerts stream: an alert of one of the user's machines, also kept in
	// that machine's history exactly as published.
	alerts := open(t, s.URL+"/sse/alerts?ticket="+ticketFor(t, s, token, "alerts"))
	e = next(t, alerts, "machine-alert")
	p := decode(t, e)
	if !slices.Contains(devices, p.DeviceID) || p.Alert["alertType"] == nil || p.Alert["message"] == nil {
		t.Fatalf("machine-alert: %s", e.data)
	}
	hist, err := s.App.Redis.LRange(context.Background(), s.App.Config.Keys.AlertHistory(p.DeviceID), 0, -1).Result()
	if err != nil || !slices.Contains(hist, e.data) {
		t.Fatalf("alert not in %s's history (%d entries, %v)", p.DeviceID, len(hist), err)
	}
	if st := s.SimStats(); st.Alerts == 0 || st.Failed != 0 {
		t.Fatalf("simulator stats %+v", st)
	}

	// Graceful shutdown: open streams are drained with a retry, promptly.
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %s", time.Since(began))
	if d := time.Since(began); d > wait {
		t.Fatalf("Close took %s", d)
	}
	if e := next(t, data, "system"); !strings.Contains(e.data, `"unavailable"`) {
		t.Fatalf("data stream ended with %s, want system unavailable (drain)", e.data)
	}
}

func TestDevLogin(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{})
	for _, tc := range []struct {
		name, method, body string
		status             int
	}{
		{"user 2 as string", "POST", `{"userId":"2"}`, 200},
		{"not json", "POST", `{"userId":`, 400},
		{"trailing data", "POST", `{"userId":1} {}`, 400},
		{"no user", "POST", `{}`, 400},
		{"fraction", "POST", `{"userId":1.5}`, 400},
		{"null", "POST", `{"userId":null}`, 400},
		{"empty", "POST", ``, 400},
		{"unknown user", "POST", `{"userId":99}`, 404},
		{"wrong method", "GET", ``, 405},
	} {
		r := call(t, tc.method, s.URL+"/dev/login", "", "", tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, r.status, tc.status, r.body)
			continue
		}
		if tc.status != 200 {
			if r.body["statusCode"] != float64(tc.status) || r.body["message"] == nil || r.body["error"] != http.StatusText(tc.status) {
				t.Errorf("%s: error body %v is not {statusCode, message, error}", tc.name, r.body)
			}
			continue
		}
		if r.body["userId"] != float64(2) || r.body["accessToken"] == nil || len(r.body["devices"].([]any)) != 2 {
			t.Errorf("%s: body %v", tc.name, r.body)
		}
	}

	// The token is one the service's ticket endpoint accepts.
	token, _ := login(t, s, "2")
	ticketFor(t, s, token, "alerts")
	// A user may not stream another user's machines.
	r := call(t, "GET", s.URL+"/sse/stream?deviceId=C01&ticket="+ticketFor(t, s, token, "data"), "", "", "")
	if r.status != http.StatusForbidden {
		t.Fatalf("user 2 on C01: %d, want 403", r.status)
	}
}

func TestCORSDefaults(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{})
	own := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	for _, tc := range []struct {
		origin, path string
		allowed      bool
	}{
		{"http://localhost:5173", "/sse/stream-ticket", true},
		{"http://localhost:5173", "/dev/login", true},
		{own, "/sse/stream-ticket", true},
		{s.URL, "/dev/login", true},
		{"http://evil.example", "/sse/stream-ticket", false},
	} {
		req, _ := http.NewRequest("OPTIONS", s.URL+tc.path, nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := res.Header.Get("Access-Control-Allow-Origin") == tc.origin
		if got != tc.allowed {
			t.Errorf("preflight %s from %s: allowed %v, want %v", tc.path, tc.origin, got, tc.allowed)
		}
	}
	// Errors carry CORS too, or a browser could not read them.
	r := call(t, "POST", s.URL+"/dev/login", "", "http://localhost:5173", `{"userId":99}`)
	if r.status != 404 || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Fatalf("404 from /dev/login: %d, ACAO %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
}

func TestPageAndAssets(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{})
	get := func(path string) (int, http.Header, string) {
		req, err := http.NewRequest("GET", s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := ssetest.Do(t, http.DefaultClient, req)
		return res.StatusCode, res.Header, ssetest.Body(t, res)
	}
	code, h, body := get("/")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="assets/app.js"`) ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /: %d %v", code, h)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Fatal("the page refers to another origin; it must work offline")
	}
	index := body
	code, h, body = get("/assets/app.js")
	if code != 200 || !strings.Contains(h.Get("Content-Type"), "javascript") || !strings.Contains(body, "from '../sse/client.js'") {
		t.Fatalf("GET /assets/app.js: %d %s", code, h.Get("Content-Type"))
	}
	// The module it imports, from the service itself.
	if code, h, body := get("/sse/client.js"); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "export function connect(") {
		t.Fatalf("GET /sse/client.js: %d %s", code, h.Get("Content-Type"))
	}
	for _, a := range []string{"app.css", "debug.css", "cards.js", "debug.js"} {
		if code, _, _ := get("/assets/" + a); code != 200 || !strings.Contains(index, `"assets/`+a+`"`) {
			t.Fatalf("GET /assets/%s: %d, or the page does not load it", a, code)
		}
	}
	code, _, body = get("/dev/users")
	if code != 200 || !strings.Contains(body, `"C04"`) {
		t.Fatalf("GET /dev/users: %d %s", code, body)
	}
	for _, p := range []string{"/nope", "/dev/nope"} {
		if code, h, _ := get(p); code != 404 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s, want a JSON 404", p, code, h.Get("Content-Type"))
		}
	}
}

func TestEnvironmentWins(t *testing.T) {
	t.Parallel()
	var banner strings.Builder
	secret := strings.Repeat("s", 40)
	s := start(t, map[string]string{
		"STREAM_TICKET_SECRET": secret,
		"CORS_ALLOWED_ORIGINS": "https://dash.example.com",
		"STREAM_MAX_DURATION":  "5m",
	}, devserver.Options{MaxStream: 30 * time.Second, Out: &banner})
	c := s.App.Config
	if c.StreamTicketSecret.Value != secret || c.AccessTokenSecret.Value != devserver.DevAccessTokenSecret {
		t.Fatal("the environment's secret must win and only unset ones get dev values")
	}
	if !slices.Equal(c.CORSAllowedOrigins, []string{"https://dash.example.com"}) {
		t.Fatalf("CORS %v, want the environment's", c.CORSAllowedOrigins)
	}
	if c.StreamMaxDuration != 30*time.Second {
		t.Fatalf("-max-stream gave %s", c.StreamMaxDuration)
	}
	out := banner.String()
	if strings.Contains(out, secret) || strings.Contains(out, "STREAM_TICKET_SECRET=") || !strings.Contains(out, devserver.DevAccessTokenSecret) {
		t.Fatalf("banner must print the dev secrets only:\n%s", out)
	}
	for _, want := range []string{s.URL + "/", "user 1 -> C01, C02, C03", "user 2 -> C04, C05", "/dev/login", "curl -N", "/#user=1", "/dev/publish", "-h lists"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
}

// TestEmbeddedRedisRunsTheService drives every Redis path of the service
// through the local server on the embedded Redis; TestRealRedisRunsTheService
// does the same on a real one, so the two are known to behave alike.
func TestEmbeddedRedisRunsTheService(t *testing.T) {
	t.Parallel()
	exerciseRedis(t, start(t, map[string]string{"HEARTBEAT_INTERVAL": "1s"}, devserver.Options{Simulate: true}))
}

func TestRealRedisRunsTheService(t *testing.T) {
	t.Parallel()
	_, prefix := redistest.Client(t) // removes the keys under prefix afterwards
	k := config.DefaultKeys().WithPrefix(prefix)
	env := k.Env()
	env["HEARTBEAT_INTERVAL"] = "1s"
	env["REDIS_URL"] = redistest.URL(t)
	s := start(t, env, devserver.Options{Simulate: true})
	if !reflect.DeepEqual(s.App.Config.Keys, k) {
		t.Fatalf("keys %+v, want the test's prefix", s.App.Config.Keys)
	}
	exerciseRedis(t, s)
}

// exerciseRedis covers admission (connect.lua), renewal at each heartbeat
// (renew.lua, both purposes), status, release and resume, eviction of the
// older stream with its control message, the superseded mark, revocation,
// and the hub's ping barrier on the subscribed connection (every stream
// open waits for it).
func exerciseRedis(t *testing.T, s *devserver.Server) {
	t.Helper()
	token, _ := login(t, s, "1")
	ctx := context.Background()
	rdb, keys := s.App.Redis, s.App.Config.Keys

	alertTicket, alertTicketID := issue(t, s, token, "alerts")
	alerts := open(t, s.URL+"/sse/alerts?ticket="+alertTicket)
	dataTicket := ticketFor(t, s, token, "data")
	dataURL := s.URL + "/sse/stream?ticket=" + dataTicket + "&deviceIds=C01,C02"
	first, stopFirst := resume(t, dataURL, "", 200)
	for _, ev := range []<-chan event{alerts, first} {
		if e := next(t, ev, "system"); !strings.Contains(e.data, `"connected"`) {
			t.Fatalf("first system event %s", e.data)
		}
		// The lease was renewed, or the stream would have ended instead.
		if e := next(t, ev, "system"); !strings.Contains(e.data, `"heartbeat"`) {
			t.Fatalf("want a heartbeat after renewal, got %s", e.data)
		}
	}

	r := call(t, "GET", s.URL+"/sse/status?ticket="+dataTicket, "", "", "")
	if conns, _ := r.body["connections"].(map[string]any); r.status != 200 || conns["alerts"] != float64(1) || conns["data"] != float64(1) {
		t.Fatalf("status: %d %v", r.status, r.body)
	}

	// Resume: the browser leaves, comes back with Last-Event-ID, and takes
	// over its ended lease (which the resume deletes).
	last := next(t, first, "realtime-update").id
	lease, _, _ := strings.Cut(last, ".")
	leaseKey := keys.Lease(lease)
	stopFirst()
	deadline := time.Now().Add(wait)
	for rdb.HGet(ctx, leaseKey, "state").Val() != "ended" {
		if time.Now().After(deadline) {
			t.Fatalf("lease of the first stream not released (state %q)", rdb.HGet(ctx, leaseKey, "state").Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
	second, _ := resume(t, dataURL, last, 200)
	next(t, second, "realtime-update")
	if n := rdb.Exists(ctx, leaseKey).Val(); n != 0 {
		t.Fatal("the reconnect with Last-Event-ID did not resume the ended lease")
	}
	secondLast := next(t, second, "realtime-update").id

	// Newest wins: a new data stream evicts the second, which ends with
	// "superseded" and may not come back.
	third := open(t, s.URL+"/sse/stream?ticket="+ticketFor(t, s, token, "data")+"&deviceId=C03")
	next(t, third, "machine-status")
	nextSystem(t, second, "superseded")
	resume(t, dataURL, secondLast, http.StatusNoContent)

	// Revocation: deleting the ticket record ends the stream at its next
	// renewal.
	if err := rdb.Del(ctx, s.App.Tickets.Key(alertTicketID)).Err(); err != nil {
		t.Fatal(err)
	}
	nextSystem(t, alerts, "revoked")
}

// nextSystem waits for a system event of kind, skipping heartbeats (those
// sent before the change may still be queued) and failing on any other.
func nextSystem(t *testing.T, events <-chan event, kind string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		e := next(t, events, "system")
		if strings.Contains(e.data, `"kind":"`+kind+`"`) {
			return
		}
		if !strings.Contains(e.data, `"kind":"heartbeat"`) {
			t.Fatalf("system event %s, want %s", e.data, kind)
		}
	}
	t.Fatalf("no system %s within %s", kind, wait)
}

func TestStartFailsCleanly(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CORS_ALLOWED_ORIGINS": "*", "HEARTBEAT_INTERVAL": "often"}
	// The same address twice: a listener leaked by the first failure would
	// make the second fail to listen instead. The address is one that was
	// free a moment ago; if something else took it before the first Start,
	// that Start says "taken" and another address is tried.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		raced := false
		for i := range 2 {
			s, err := devserver.Start(context.Background(), devserver.Options{Addr: addr, Simulate: true, Getenv: func(k string) string { return env[k] }})
			if err == nil {
				_ = s.Close()
				t.Fatal("Start accepted an invalid configuration")
			}
			if i == 0 && attempt < 3 && strings.Contains(err.Error(), "taken") {
				raced = true
				break
			}
			for _, want := range []string{"CORS_ALLOWED_ORIGINS", "HEARTBEAT_INTERVAL"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		}
		if !raced {
			break
		}
	}
}

// TestTakenPortHintsAtAddr: a second server on a taken port says how to
// pick another.
func TestTakenPortHintsAtAddr(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := devserver.Start(context.Background(), devserver.Options{Addr: l.Addr().String()})
	if err == nil {
		_ = s.Close()
		t.Fatal("Start listened on a taken port")
	}
	if !strings.Contains(err.Error(), "-addr") || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("error %q does not hint at -addr", err)
	}
}

// TestUnreachableRedisIsOneLine: a REDIS_URL where nothing listens fails
// Start with one line naming REDIS_URL and the address.
func TestUnreachableRedisIsOneLine(t *testing.T) {
	t.Parallel()
	addr := redistest.DeadAddr(t)
	env := map[string]string{"REDIS_URL": "redis://" + addr, "LOG_LEVEL": "warn"}
	s, err := devserver.Start(context.Background(), devserver.Options{Addr: "127.0.0.1:0", Getenv: func(k string) string { return env[k] }})
	if err == nil {
		_ = s.Close()
		t.Fatal("Start succeeded without Redis")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "REDIS_URL") || !strings.Contains(msg, addr) || !strings.Contains(msg, "unreachable") {
		t.Fatalf("error %q: want one line naming REDIS_URL and %s", msg, addr)
	}
}

// TestOwnershipHealsAfterRedisFlush: the demo ownership disappears (a
// Redis restart, a flushed REDIS_URL), a stream is refused with 403, and
// within a re-seed period it is admitted again, with no restart.
func TestOwnershipHealsAfterRedisFlush(t *testing.T) {
	t.Parallel()
	_, prefix := redistest.Client(t)
	k := config.DefaultKeys().WithPrefix(prefix)
	env := k.Env()
	env["REDIS_URL"] = redistest.URL(t)
	s := start(t, env, devserver.Options{SeedEvery: 200 * time.Millisecond})
	token, _ := login(t, s, "1")
	ctx := context.Background()
	url := func() string { return s.URL + "/sse/stream?ticket=" + ticketFor(t, s, token, "data") + "&deviceId=C01" }
	// Delete the keys by hand while the server keeps running, until the
	// stream is refused once (the loop may re-seed in between).
	refused := false
	for range 20 {
		if err := s.App.Redis.Del(ctx, k.UserDevices("1")).Err(); err != nil {
			t.Fatal(err)
		}
		if code := statusOf(t, url()); code == http.StatusForbidden {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("never refused after deleting the ownership: the test shows nothing")
	}
	deadline := time.Now().Add(wait)
	for statusOf(t, url()) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("ownership not re-seeded within %s", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusOf opens a stream and returns its status code, closing it at once.
func statusOf(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET stream: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}
