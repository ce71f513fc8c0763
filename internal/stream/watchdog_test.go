package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/logtest"
	"github.com/machinedash/sse/internal/metrics"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
	"github.com/machinedash/sse/internal/urlfn"
)

// TestStalledWriteWithoutDeadlineEndsWithinTheWriteTimeout: lambdaurl's
// writer takes no write deadline. A write through such a writer that never
// returns must still end the stream after writeTimeout of the stream's
// clock: the end is logged, the lease is released, and nothing touches the
// writer again.
func TestStalledWriteWithoutDeadlineEndsWithinTheWriteTimeout(t *testing.T) {
	t.Parallel()
	u := newUnit(t, 0)
	h, clock, keys, rdb := u.h, u.clock, u.keys, u.rdb
	tk := u.ticket("1", "C01")
	w := &stallWriter{header: http.Header{}, stalled: make(chan struct{}), release: make(chan struct{})}
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now()); !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("the test writer must not take deadlines: %v", err)
	}
	done := u.serve(w, tk)
	t.Cleanup(func() { close(w.release) })
	bounded := time.After(5 * time.Second)
	w.wait(t, `"connected"`, bounded)
	if err := rdb.Publish(t.Context(), keys.Channel(channel.Alert), `{"deviceId":"C01","alert":{"n":1}}`).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.stalled:
	case <-bounded:
		t.Fatal("no stalled write")
	}
	// Heartbeat, rotation and the watchdog of the stalled write.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 3); err != nil {
		t.Fatalf("watchdog not armed: %v", err)
	}
	clock.Advance(writeTimeout - time.Millisecond)
	select {
	case <-done:
		t.Fatal("ended before the write timeout")
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(time.Millisecond)
	select {
	case <-done:
	case <-bounded:
		t.Fatal("a stalled write did not end the stream within the write timeout")
	}
	if !strings.Contains(u.logs.String(), `"msg":"stream end","purpose":"alerts","user":"1","reason":"write-stalled"`) {
		t.Fatalf("end not logged as write-stalled:\n%s", u.logs.String())
	}
	counts, _, err := u.reg.List(t.Context(), "1", clock.Now())
	if err != nil || counts.Alerts != 0 {
		t.Fatalf("lease not released: %+v %v", counts, err)
	}
	var m strings.Builder
	u.h.d.Metrics.WritePrometheus(&m)
	if !strings.Contains(m.String(), `sse_streams_ended_total{purpose="alerts",reason="write-stalled"} 1`) {
		t.Fatalf("end not counted:\n%s", m.String())
	}
	if h.Open() != 0 {
		t.Fatalf("%d streams still counted open", h.Open())
	}
	if out := w.String(); strings.Contains(out, "reconnect") {
		t.Fatalf("the writer was used after the stall:\n%s", out)
	}
}

func TestWriteBudgetShrinksNearTheDeadline(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := &session{h: New(Deps{Clock: clock})}
	if got := s.writeBudget(); got != writeTimeout {
		t.Fatalf("no deadline: budget %v, want %v", got, writeTimeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(8*time.Second))
	defer cancel()
	s.lastWriteBy = lastWriteBy(ctx, clock.Now())
	// 8 s left: the release (2 s) and the slack (1 s) come off.
	if got := s.writeBudget(); got < 4900*time.Millisecond || got > 5*time.Second {
		t.Fatalf("budget %v, want about 5s", got)
	}
	clock.Advance(time.Minute)
	if got := s.writeBudget(); got != minWriteBudget {
		t.Fatalf("past the last write: budget %v, want %v", got, minWriteBudget)
	}
}

// TestMarginCoversTheEnd: with the rotation at its latest (no jitter), the
// last write, the release and the slack fit inside the deadline margin, and
// no renewal starts late enough to push the end.
func TestMarginCoversTheEnd(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := New(Deps{Clock: clock, Jitter: func(time.Duration) time.Duration { return 0 }, Timing: Timing{RotationWindow: time.Minute}})
	s := &session{h: h}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(15*time.Minute))
	defer cancel()
	start := clock.Now()
	s.end = s.endTime(ctx, start)
	s.lastWriteBy = lastWriteBy(ctx, start)
	deadline := start.Add(15 * time.Minute)
	if lastWrite := s.end.Add(minWriteBudget); lastWrite.After(s.lastWriteBy) {
		t.Fatalf("the last write may run to %v, past %v", lastWrite, s.lastWriteBy)
	}
	if done := s.lastWriteBy.Add(renewTimeout); deadline.Sub(done) < deadlineSlack-50*time.Millisecond {
		t.Fatalf("release ends %v before the deadline, want at least %v", deadline.Sub(done), deadlineSlack)
	}
	if !s.renewDue(s.end.Add(-renewTimeout)) || s.renewDue(s.end.Add(-renewTimeout+time.Millisecond)) {
		t.Fatal("renewal must stop exactly renewTimeout before the end")
	}
}

// unit is one stream handler over real Redis with a fake clock, for tests
// that drive a handler with a writer of their own.
type unit struct {
	h       *Handler
	hub     *pubsub.Hub
	reg     *registry.Registry
	tickets *ticket.Service
	rdb     *redis.Client
	keys    config.Keys
	clock   *clockwork.FakeClock
	logs    *logtest.Log
	t       *testing.T
}

// newUnit serves alerts streams; queue 0 takes the default.
func newUnit(t *testing.T, queue int) *unit {
	t.Helper()
	return newUnitWith(t, queue, nil)
}

// newUnitWith is newUnit with mutate adjusting the handler's Deps first.
func newUnitWith(t *testing.T, queue int, mutate func(*Deps)) *unit {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	u := &unit{t: t, rdb: rdb, keys: config.DefaultKeys().WithPrefix(prefix), logs: &logtest.Log{},
		clock: clockwork.NewFakeClockAt(time.Date(2026, 1, 27, 12, 0, 0, 0, time.UTC))}
	log := slog.New(slog.NewJSONHandler(u.logs, nil))
	var err error
	if u.tickets, err = ticket.New([]byte(strings.Repeat("s", 32)), rdb, u.keys.Ticket(""), u.clock.Now); err != nil {
		t.Fatal(err)
	}
	control := u.keys.Control()
	u.hub = pubsub.NewHub(rdb, pubsub.Channels{Kinds: map[string]*channel.Kind{u.keys.Channel(channel.Alert): channel.Alert}, Control: control}, log, u.clock.Now)
	t.Cleanup(u.hub.Close)
	u.reg = registry.New(rdb, u.keys, registry.Limits{Alerts: 1, Data: 1, PerIP: 5, Policy: config.PolicyEvictOldest}, time.Minute, time.Minute)
	d := Deps{
		Tickets: u.tickets, Hub: u.hub, Redis: rdb, Keys: u.keys, MaxDevices: 10, QueueSize: queue,
		Registry: u.reg, Log: log, Clock: u.clock, Metrics: metrics.New(metrics.Sources{}, u.clock.Now),
	}
	if mutate != nil {
		mutate(&d)
	}
	u.h = New(d)
	u.h.TakeConns() // as the local server: TestStalledWriteOverTCPEndsTheStream's stream is taken over
	return u
}

// ticket gives user the devices and returns an alerts ticket.
func (u *unit) ticket(user string, devices ...string) string {
	u.t.Helper()
	for _, d := range devices {
		if err := u.rdb.SAdd(u.t.Context(), u.keys.UserDevices(user), d).Err(); err != nil {
			u.t.Fatal(err)
		}
	}
	tk, _, err := u.tickets.Issue(u.t.Context(), user, purpose.Alerts, time.Minute)
	if err != nil {
		u.t.Fatal(err)
	}
	return tk
}

// serve runs the alerts handler on w in the background; done closes when
// it returns.
func (u *unit) serve(w http.ResponseWriter, tk string) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		u.h.Alerts().ServeHTTP(w, httptest.NewRequestWithContext(context.Background(), "GET", "/sse/alerts?ticket="+url.QueryEscape(tk), nil))
	}()
	return done
}

// wait polls (briefly, bounded) until the client got text.
func (w *stallWriter) wait(t *testing.T, text string, bounded <-chan time.Time) {
	t.Helper()
	for !strings.Contains(w.String(), text) {
		select {
		case <-bounded:
			t.Fatalf("no %s within the bound", text)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestStalledWriteThroughTheStreamFunctionsWriter: the same through the
// writer the stream function really has (urlfn.Streaming's, which buffers
// for the Runtime API client's POST and takes a write deadline): the
// platform stops reading, the writes fill the buffer to its limit, the
// next one waits, and the stream still ends after the write timeout. The
// stream's clock does not move: the write deadline ends it, not the
// watchdog of a write without one.
func TestStalledWriteThroughTheStreamFunctionsWriter(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond // Timing.WriteTimeout (10s by default)
	u := newUnitWith(t, 1024, func(d *Deps) { d.Timing.WriteTimeout = stall })
	tk := u.ticket("1", "C01")
	resp, err := urlfn.Streaming(u.h.Alerts())(context.Background(), &events.LambdaFunctionURLRequest{
		RawPath: "/sse/alerts", RawQueryString: "ticket=" + url.QueryEscape(tk),
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "example.lambda-url.eu-central-1.on.aws",
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription{Method: "GET", SourceIP: "203.0.113.7"},
		},
	})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %+v", err, resp)
	}
	t.Cleanup(func() { resp.Close() })
	buf := make([]byte, 64<<10)
	for got := ""; !strings.Contains(got, `"connected"`); { // the first events, then the "platform" stops reading
		n, err := resp.Read(buf)
		if err != nil {
			t.Fatalf("before the connected event: %q %v", got, err)
		}
		got += string(buf[:n])
	}
	// Alerts of 48 KiB: the third finds the buffer past its limit.
	payload := fmt.Sprintf(`{"deviceId":"C01","alert":{"pad":%q}}`, strings.Repeat("x", 48<<10))
	for range 10 {
		if err := u.rdb.Publish(t.Context(), u.keys.Channel(channel.Alert), payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(5 * time.Second)
	for u.h.Open() != 0 || !strings.Contains(u.logs.String(), `"reason":"write-stalled"`) {
		select {
		case <-deadline:
			t.Fatalf("stream still open after the write timeout (%d open):\n%.2000s", u.h.Open(), u.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if counts, _, err := u.reg.List(t.Context(), "1", u.clock.Now()); err != nil || counts.Alerts != 0 {
		t.Fatalf("lease not released: %+v %v", counts, err)
	}
}

// funcWriter is a ResponseWriter whose Write runs write (no Flush, no
// deadlines: the watched path, as lambdaurl's writer).
type funcWriter struct {
	header http.Header
	write  func() error
}

func (w *funcWriter) Header() http.Header { return w.header }
func (w *funcWriter) WriteHeader(int)     {}
func (w *funcWriter) Write(p []byte) (int, error) {
	return len(p), w.write()
}

// TestTickAsAWriteReturnsDoesNotStallTheNext: the clock reaching the write
// budget just as a write returns (after the select took the write, before
// Stop) leaves a tick in the watchdog timer's channel: clockwork's fake
// timer buffers one, and Reset does not take it out. The next write must
// still get its whole budget, not end at once as write-stalled.
func TestTickAsAWriteReturnsDoesNotStallTheNext(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w := &funcWriter{header: http.Header{}, write: func() error { return nil }}
	s := &session{h: New(Deps{Clock: clock}), out: httpOut(w)}
	if err := s.watchedWrite([]byte("a"), writeTimeout); err != nil {
		t.Fatal(err)
	}
	// That window cannot be hit on purpose through watchedWrite (a select
	// blocked on both channels wakes on the first), so the test makes the
	// state it leaves: the timer fired, its tick unread, Stop too late.
	s.watch.Reset(time.Millisecond)
	clock.Advance(time.Millisecond)
	if s.watch.Stop() {
		t.Fatal("the timer did not fire")
	}

	entered, release := make(chan struct{}), make(chan struct{})
	w.write = func() error { close(entered); <-release; return nil }
	t.Cleanup(func() { close(release) })
	res := make(chan error, 1)
	go func() { res <- s.watchedWrite([]byte("b"), writeTimeout) }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the second write did not start")
	}
	select {
	case err := <-res:
		t.Fatalf("the second write ended without its clock moving: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(writeTimeout)
	if err := <-res; !errors.Is(err, errStalled) {
		t.Fatalf("the second write after its budget: %v, want stalled", err)
	}
}
