package stream_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/apptest"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/logtest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/ssetest"
)

// The service harness is internal/apptest; these are its short names in
// this package's tests.

var t0 = apptest.T0

// env is one isolated service (apptest.Env).
type env struct {
	*apptest.Env
	t     *testing.T
	rdb   *redis.Client
	keys  config.Keys
	clock *clockwork.FakeClock
	app   *app.App
	srv   *httptest.Server
	logs  *logtest.Log
	name  string
}

// newEnv starts a service; mutate adjusts the configuration first.
func newEnv(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	h := apptest.New(t, mutate)
	return &env{Env: h, t: t, rdb: h.RDB, keys: h.Keys, clock: h.Clock, app: h.App, srv: h.Srv, logs: h.Logs, name: h.Name}
}

func (e *env) own(user string, devices ...string) { e.t.Helper(); e.Own(user, devices...) }
func (e *env) ticket(user string, p purpose.Purpose) string {
	e.t.Helper()
	return e.Ticket(user, p)
}
func (e *env) publish(channel, payload string) { e.t.Helper(); e.Publish(channel, payload) }
func (e *env) get(path string, hdr ...string) *http.Response {
	e.t.Helper()
	return e.Get(path, hdr...)
}
func (e *env) logLines(msg string) []map[string]any { return e.logs.Lines(msg) }

func (e *env) waitTimers(n int) { e.t.Helper(); e.WaitTimers(n) }

// event is one parsed SSE event.
type event struct{ ssetest.Event }

func (ev event) json(t *testing.T) map[string]any { t.Helper(); return apptest.JSON(t, ev.Event) }

// client is one open stream (apptest.Client).
type client struct {
	*apptest.Client
	t    *testing.T
	resp *http.Response
}

func (e *env) open(path string, hdr ...string) *client {
	e.t.Helper()
	c := e.Open(path, hdr...)
	return &client{Client: c, t: e.t, resp: c.Resp}
}

func (c *client) lastRetry() int { return int(c.Retry()) }

// next returns the next event other than heartbeats (bounded wait).
func (c *client) next() event { c.t.Helper(); return event{c.Next(c.t)} }

// nextRaw returns the next event, heartbeats included (bounded wait).
func (c *client) nextRaw() event { c.t.Helper(); return event{c.NextRaw(c.t)} }

// ended waits (bounded) for the server to end the stream.
func (c *client) ended() { c.t.Helper(); c.Ended(c.t) }

func (c *client) expect(name, device string) event {
	c.t.Helper()
	return event{c.Expect(name, device)}
}

func body(t *testing.T, resp *http.Response) string { t.Helper(); return ssetest.Body(t, resp) }
