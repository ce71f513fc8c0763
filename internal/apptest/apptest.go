// Package apptest runs the assembled service (internal/app) on a real
// Redis for tests: each Env has its own key prefix, fake clock, HTTP server
// and log, so tests of the streams and of the small endpoints share one
// harness.
//
// Invariants: every wait (response headers, bodies, events, stream ends,
// timers) is bounded, so a request admitted by mistake fails its test
// instead of hanging it; every setup step that fails fails the test where
// it happened; and at cleanup no ticket or token the test issued may
// appear in the service's logs.
package apptest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/logtest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/ssetest"
)

// T0 is every Env's clock at start.
var T0 = time.Date(2026, 1, 27, 12, 0, 0, 0, time.UTC)

// Secrets of every Env (AccessToken signs with AccessSecret).
var (
	TicketSecret = strings.Repeat("t", 32)
	AccessSecret = strings.Repeat("a", 32)
)

// Env is one isolated service.
type Env struct {
	T     *testing.T
	RDB   *redis.Client // the test's own client, for setup and checks
	Keys  config.Keys
	Clock *clockwork.FakeClock
	App   *app.App
	Srv   *httptest.Server
	Logs  *logtest.Log
	Name  string // the service's Redis client name (to find and kill its connections)

	mu     sync.Mutex
	issued []string // every ticket and token issued, to check logs
}

// New starts a service; mutate adjusts the configuration first.
func New(t *testing.T, mutate func(*config.Config)) *Env {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys = config.DefaultKeys().WithPrefix(prefix)
	cfg.StreamTicketSecret.Value = TicketSecret
	cfg.AccessTokenSecret.Value = AccessSecret
	cfg.RealtimeMinInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	e := &Env{T: t, RDB: rdb, Keys: cfg.Keys, Clock: clockwork.NewFakeClockAt(T0), Logs: &logtest.Log{}}
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The service gets a client of its own, named, so a test can find (and
	// kill) exactly its connections.
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.ClientName = "svc-" + strings.Trim(prefix, ":")
	e.Name = opt.ClientName
	svc := redis.NewClient(opt)
	t.Cleanup(func() { svc.Close() })
	a, err := app.New(cfg, svc, log, e.Clock)
	if err != nil {
		t.Fatal(err)
	}
	e.App = a
	if a.Streams != nil {
		a.Streams.TakeConns() // as the local server
	}
	e.Srv = httptest.NewServer(a.Mux())
	t.Cleanup(func() {
		e.Srv.CloseClientConnections()
		e.Srv.Close()
		closeStreams(t, a)
		a.Hub.Close()
		logs := e.Logs.String()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, tk := range e.issued {
			if strings.Contains(logs, tk) {
				t.Errorf("a ticket or token reached the logs")
			}
		}
	})
	return e
}

// closeStreams ends the streams served on hijacked connections, which the
// httptest server no longer closes or waits for, as it did for them before
// the hijack, so that none outlives the test.
func closeStreams(t *testing.T, a *app.App) {
	if a.Streams == nil {
		return
	}
	a.Streams.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), ssetest.Wait)
	defer cancel()
	if err := a.Streams.Wait(ctx); err != nil {
		t.Errorf("streams on hijacked connections still open after Cut: %v", err)
	}
}

// Issued records a secret (a ticket or token the test got by other means)
// that must not appear in the logs.
func (e *Env) Issued(secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.issued = append(e.issued, secret)
}

// Secrets returns every ticket and token issued so far.
func (e *Env) Secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.issued...)
}

// Own gives a user devices.
func (e *Env) Own(user string, devices ...string) {
	e.T.Helper()
	for _, d := range devices {
		if err := e.RDB.SAdd(context.Background(), e.Keys.UserDevices(user), d).Err(); err != nil {
			e.T.Fatal(err)
		}
	}
}

// Ticket issues a ticket for five minutes.
func (e *Env) Ticket(user string, p purpose.Purpose) string {
	e.T.Helper()
	tk, _, err := e.App.Tickets.Issue(context.Background(), user, p, 5*time.Minute)
	if err != nil {
		e.T.Fatal(err)
	}
	e.Issued(tk)
	return tk
}

// AccessToken signs an hour's access token for user, as the app would.
func (e *Env) AccessToken(user string) string {
	e.T.Helper()
	tok, err := access.Sign([]byte(AccessSecret), "sub", user, time.Hour, e.Clock.Now())
	if err != nil {
		e.T.Fatal(err)
	}
	e.Issued(tok)
	return tok
}

// Publish publishes payload on channel.
func (e *Env) Publish(channel, payload string) {
	e.T.Helper()
	if err := e.RDB.Publish(context.Background(), channel, payload).Err(); err != nil {
		e.T.Fatal(err)
	}
}

// Get performs a GET with optional header name, value pairs.
func (e *Env) Get(path string, hdr ...string) *http.Response {
	e.T.Helper()
	req, err := http.NewRequest("GET", e.Srv.URL+path, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return ssetest.Do(e.T, e.Srv.Client(), req)
}

// Post performs a JSON POST with an optional bearer token and returns the
// response and its body (read in full, bounded, trimmed).
func (e *Env) Post(path, bearer, payload string) (*http.Response, string) {
	e.T.Helper()
	req, err := http.NewRequest("POST", e.Srv.URL+path, strings.NewReader(payload))
	if err != nil {
		e.T.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp := ssetest.Do(e.T, e.Srv.Client(), req)
	return resp, strings.TrimSpace(ssetest.Body(e.T, resp))
}

// Client is one open stream.
type Client struct {
	*ssetest.Stream
	T    *testing.T
	Resp *http.Response
}

// Open opens a stream, failing the test unless it is admitted (200,
// text/event-stream).
func (e *Env) Open(path string, hdr ...string) *Client {
	e.T.Helper()
	resp := e.Get(path, hdr...)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.T.Fatalf("open %s: %d %s", path, resp.StatusCode, ssetest.Body(e.T, resp))
	}
	return &Client{Stream: ssetest.Read(e.T, resp.Body), T: e.T, Resp: resp}
}

// Expect returns the next event other than a heartbeat and fails unless
// it is named name and, when device is not empty, is about that device.
func (c *Client) Expect(name, device string) ssetest.Event {
	c.T.Helper()
	ev := c.Next(c.T)
	if ev.Name != name {
		c.T.Fatalf("got event %q (%s), want %q", ev.Name, ev.Data, name)
	}
	if device != "" {
		if got := JSON(c.T, ev)["deviceId"]; got != device {
			c.T.Fatalf("%s for device %v, want %s", name, got, device)
		}
	}
	return ev
}

// JSON decodes an event's data as a JSON object.
func JSON(t testing.TB, ev ssetest.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("event %s data %q: %v", ev.Name, ev.Data, err)
	}
	return m
}

// WaitTimers waits (bounded) until the service is parked on n timers of
// its clock.
func (e *Env) WaitTimers(n int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ssetest.Wait)
	defer cancel()
	if err := e.Clock.BlockUntilContext(ctx, n); err != nil {
		e.T.Fatalf("timers: %v", err)
	}
}
