package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/stream"
)

var t0 = time.Date(2026, 1, 27, 12, 0, 0, 0, time.UTC)

// env is one isolated service: its own key prefix, fake clock and server.
type env struct {
	t      *testing.T
	rdb    *redis.Client
	keys   config.Keys
	clock  *clockwork.FakeClock
	app    *app.App
	srv    *httptest.Server
	logs   *syncBuffer
	issued []string // every ticket issued, to check logs and bodies
	name   string   // the service's Redis client name
}

type syncBuffer = stream.SyncLog

// newEnv starts a service; mutate adjusts the configuration first.
func newEnv(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys = config.DefaultKeys().WithPrefix(prefix)
	cfg.StreamTicketSecret.Value = strings.Repeat("t", 32)
	cfg.AccessTokenSecret.Value = strings.Repeat("a", 32)
	cfg.RealtimeMinInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	e := &env{t: t, rdb: rdb, keys: cfg.Keys, clock: clockwork.NewFakeClockAt(t0), logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The service gets a client of its own, named, so a test can find (and
	// kill) exactly its connections.
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.ClientName = "svc-" + strings.Trim(prefix, ":")
	e.name = opt.ClientName
	svc := redis.NewClient(opt)
	t.Cleanup(func() { svc.Close() })
	a, err := app.New(cfg, svc, log, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	e.srv = httptest.NewServer(a.Mux())
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
		a.Hub.Close()
		for _, tk := range e.issued {
			if strings.Contains(e.logs.String(), tk) {
				t.Errorf("a ticket reached the logs")
			}
		}
	})
	return e
}

// own gives a user devices.
func (e *env) own(user string, devices ...string) {
	e.t.Helper()
	for _, d := range devices {
		if err := e.rdb.SAdd(context.Background(), e.keys.UserDevices(user), d).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) ticket(user string, p purpose.Purpose) string {
	e.t.Helper()
	tk, _, err := e.app.Tickets.Issue(context.Background(), user, p, 5*time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	e.issued = append(e.issued, tk)
	return tk
}

func (e *env) publish(channel, payload string) {
	e.t.Helper()
	if err := e.rdb.Publish(context.Background(), channel, payload).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// get performs a GET with optional headers.
func (e *env) get(path string, hdr ...string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// event is one parsed SSE event.
type event struct {
	ID, Name, Data string
	Retry          int
}

func (ev event) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("event %s data %q: %v", ev.Name, ev.Data, err)
	}
	return m
}

// client reads an SSE response in the background.
type client struct {
	t      *testing.T
	resp   *http.Response
	events chan event
	done   chan struct{}
	retry  int
	mu     sync.Mutex
}

func (e *env) open(path string, hdr ...string) *client {
	e.t.Helper()
	resp := e.get(path, hdr...)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("open %s: %d %s", path, resp.StatusCode, b)
	}
	c := &client{t: e.t, resp: resp, events: make(chan event, 1000), done: make(chan struct{})}
	go c.read()
	e.t.Cleanup(func() { resp.Body.Close() })
	return c
}

func (c *client) read() {
	defer close(c.done)
	sc := bufio.NewScanner(c.resp.Body)
	var ev event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				c.events <- ev
			}
			ev, data = event{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Name = value
		case "data":
			data = append(data, value)
		case "retry":
			n, _ := strconv.Atoi(value)
			c.mu.Lock()
			c.retry = n
			c.mu.Unlock()
		}
	}
}

func (c *client) lastRetry() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retry
}

// next returns the next event other than heartbeats (bounded wait).
func (c *client) next() event {
	c.t.Helper()
	for {
		select {
		case ev := <-c.events:
			if ev.Name == "system" && strings.Contains(ev.Data, `"heartbeat"`) {
				continue
			}
			return ev
		case <-time.After(5 * time.Second):
			c.t.Fatal("no event within 5s")
		}
	}
}

// nextRaw returns the next event, heartbeats included.
func (c *client) nextRaw() event {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(5 * time.Second):
		c.t.Fatal("no event within 5s")
	}
	return event{}
}

// ended waits for the server to end the stream.
func (c *client) ended() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.t.Fatal("stream did not end")
	}
}

// quiet asserts that no non-heartbeat event is pending now; it first sends a
// marker through the same path to be sure earlier messages were routed.
func (c *client) expect(name, device string) event {
	c.t.Helper()
	ev := c.next()
	if ev.Name != name {
		c.t.Fatalf("got event %q (%s), want %q", ev.Name, ev.Data, name)
	}
	if device != "" {
		if got := ev.json(c.t)["deviceId"]; got != device {
			c.t.Fatalf("%s for device %v, want %s", name, got, device)
		}
	}
	return ev
}

// waitTimers waits until the stream loops are parked on n timers.
func (e *env) waitTimers(n int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.clock.BlockUntilContext(ctx, n); err != nil {
		e.t.Fatalf("timers: %v", err)
	}
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
