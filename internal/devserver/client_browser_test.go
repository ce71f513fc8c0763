package devserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/logtest"
	"github.com/machinedash/sse/internal/redistest"
)

// The browser client (/sse/client.js) as the dashboard uses it, in a real
// headless Chromium against the local server on a real Redis: the six
// scenarios of the client's promise. Every wait is bounded.

// realServer is a local server on a real Redis (its own key prefix), so a
// restart keeps the state; env is kept for the restart.
type realServer struct {
	*devserver.Server
	env  map[string]string
	rdb  *redis.Client
	keys config.Keys
	logs *logtest.Log
}

func startReal(t *testing.T, addr string, extra map[string]string) *realServer {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	env := keys.Env()
	env["REDIS_URL"] = redistest.URL(t)
	env["LOG_LEVEL"] = "info"
	for k, v := range extra {
		env[k] = v
	}
	r := &realServer{env: env, rdb: rdb, keys: keys, logs: &logtest.Log{}}
	r.restart(t, addr)
	return r
}

// restart starts the server (again) on addr.
func (r *realServer) restart(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// A port given back by Close may be held for a moment by another
	// socket (an outgoing connection can get it as its ephemeral port):
	// try again until the wait is over.
	var s *devserver.Server
	var err error
	for {
		s, err = devserver.Start(ctx, devserver.Options{Addr: addr, Getenv: func(k string) string { return r.env[k] }, Log: r.logs})
		if err == nil || !strings.Contains(err.Error(), "taken") || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r.Server = s
}

// alert stores an alert in its device's history and publishes it, as the
// ingest does; its message is "n=<n>".
func (r *realServer) alert(t *testing.T, device string, n int, at time.Time) {
	t.Helper()
	p := fmt.Sprintf(`{"deviceId":%q,"alert":{"alertType":"warning","message":"n=%d"},"timestamp":%q}`, device, n, at.UTC().Format("2006-01-02T15:04:05.000Z"))
	ctx := context.Background()
	pipe := r.rdb.Pipeline()
	pipe.LPush(ctx, r.keys.AlertHistory(device), p)
	pipe.LTrim(ctx, r.keys.AlertHistory(device), 0, 99)
	pipe.Publish(ctx, r.keys.Channel(channel.Alert), p)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Errorf("publish: %v", err)
	}
}

// publishEvery publishes alerts n=1, 2, ... every period (round robin over
// devices) until the returned stop is called; stop returns the last n.
func (r *realServer) publishEvery(t *testing.T, period time.Duration, devices ...string) (stop func() int) {
	var last atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r.alert(t, devices[n%len(devices)], n, time.Now())
			last.Store(int64(n))
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { close(done); wg.Wait() })
		return int(last.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}

// counts reads the user's open streams from the registry, as /sse/status does.
func (r *realServer) counts(t *testing.T, user string) (alerts, data int, dataDevices []string) {
	t.Helper()
	c, conns, err := r.App.Registry.List(context.Background(), user, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, cn := range conns {
		if cn.Purpose == "data" {
			dataDevices = cn.Devices
		}
	}
	return c.Alerts, c.Data, dataDevices
}

// until polls cond every 50 ms for at most d.
func until(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// evalUntil polls a JavaScript predicate with Evaluate, which (unlike Poll)
// also works in a hidden tab that gets no animation frames.
func (tb *tab) evalUntil(t *testing.T, what, expr string, d time.Duration) {
	t.Helper()
	until(t, what, d, func() bool {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}

func (tb *tab) alertMessages(t *testing.T) []string {
	t.Helper()
	got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#alerts li')].map(li => li.children[1].textContent).reverse()`))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// seq is "n=from" .. "n=to".
func seq(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("n=%d", n))
	}
	return out
}

// tabWithCancel opens a tab in a new window of parent's browser; cancel
// closes it as a person closing the tab would.
func tabWithCancel(t *testing.T, parent context.Context, opts ...chromedp.ContextOption) (*tab, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	return &tab{ctx: ctx}, cancel
}

// frontProxy is a test proxy in front of a local server: intercept may
// answer a request itself (true) or let it through; streams go through
// unbuffered. The server is set once started (its CORS needs the proxy's
// origin first).
type frontProxy struct {
	*httptest.Server
	backend atomic.Pointer[url.URL]
}

func newFrontProxy(t *testing.T, intercept func(w http.ResponseWriter, r *http.Request) bool) *frontProxy {
	p := &frontProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if intercept(w, r) {
			return
		}
		rp := httputil.NewSingleHostReverseProxy(p.backend.Load())
		rp.FlushInterval = -1 // an event stream goes through at once
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *frontProxy) to(t *testing.T, s *realServer) {
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p.backend.Store(u)
}

// newHolder starts a browser whose first tab stays on a blank page: the
// tabs opened from it are real tabs of that one browser (a context that
// never ran would start a browser of its own for each of them), and
// closing one of them does not stop the browser.
func newHolder(t *testing.T) *tab {
	t.Helper()
	h := newBrowser(t)
	h.open(t, "about:blank")
	return h
}

const (
	pageLive = `document.body.dataset.sseState === 'live'`
	isLeader = `document.body.dataset.sseRole === 'leader'`
)

func TestClientTwoTabsHoldOneStreamPerPurpose(t *testing.T) {
	t.Parallel()
	holder := newHolder(t)
	s := startReal(t, "127.0.0.1:0", nil)
	a := newTab(t, holder.ctx)
	a.open(t, s.URL+"/#user=1&devices=C01")
	a.evalUntil(t, "first tab live", pageLive, browserWait)
	b := newTab(t, holder.ctx)
	b.open(t, s.URL+"/#user=1&devices=C02")
	b.evalUntil(t, "second tab live (relayed)", pageLive+` && document.body.dataset.sseRole === 'follower'`, browserWait)
	a.evalUntil(t, "first tab leads", isLeader+" && "+pageLive, browserWait)
	// The leader's data stream now carries both tabs' devices.
	until(t, "one alerts and one data stream for C01+C02", browserWait, func() bool {
		al, da, devs := s.counts(t, "1")
		return al == 1 && da == 1 && slices.Equal(devs, []string{"C01", "C02"})
	})
	// /sse/status says the same, and keeps saying it.
	tok, _ := login(t, s.Server, "1")
	time.Sleep(time.Second)
	r := call(t, "GET", s.URL+"/sse/status?ticket="+url.QueryEscape(ticketFor(t, s.Server, tok, "alerts")), "", "", "")
	conns, _ := r.body["connections"].(map[string]any)
	if r.status != 200 || conns["alerts"] != 1.0 || conns["data"] != 1.0 {
		t.Fatalf("status %d %v", r.status, r.body)
	}
}

func TestClientLeaderHandoverLosesNoAlert(t *testing.T) {
	t.Parallel()
	holder := newHolder(t)
	// A slow network: each stream request takes 300 ms to reach the
	// server, so alerts surely fall in the gap between the two leaders'
	// streams, and only the new leader's replay from the last relayed id
	// can bring those.
	proxy := newFrontProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/sse/alerts" {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	})
	s := startReal(t, "127.0.0.1:0", map[string]string{"CORS_ALLOWED_ORIGINS": proxy.URL})
	proxy.to(t, s)
	a, closeA := tabWithCancel(t, holder.ctx)
	a.open(t, proxy.URL+"/#user=1&history=0")
	a.evalUntil(t, "leader live", isLeader+" && "+pageLive, browserWait)
	b := newTab(t, holder.ctx)
	b.open(t, proxy.URL+"/#user=1&history=0")
	b.evalUntil(t, "follower live", pageLive, browserWait)

	stop := s.publishEvery(t, 200*time.Millisecond, "C01", "C02", "C03")
	b.evalUntil(t, "alerts relayed to the follower", `document.querySelectorAll('#alerts li').length >= 3`, browserWait)
	closeA() // the leader tab closes
	closed := time.Now()
	b.evalUntil(t, "the other tab takes over", isLeader+" && "+pageLive, 3*time.Second)
	took := time.Since(closed)
	time.Sleep(1500 * time.Millisecond) // alerts go on after the takeover
	last := stop()
	b.evalUntil(t, "the last alert arrives", fmt.Sprintf(`[...document.querySelectorAll('#alerts li')].some(li => li.children[1].textContent === 'n=%d')`, last), browserWait)
	if got := b.alertMessages(t); !slices.Equal(got, seq(1, last)) {
		t.Fatalf("alerts %v, want n=1..n=%d each once in order", got, last)
	}
	t.Logf("takeover in %v; %d alerts, each once", took.Round(10*time.Millisecond), last)
}

func TestClientPausesWhenHiddenAndReplaysWhenVisible(t *testing.T) {
	t.Parallel()
	first := newBrowser(t)
	s := startReal(t, "127.0.0.1:0", nil)
	const pauseAfter = 1500 * time.Millisecond
	first.open(t, fmt.Sprintf("%s/#user=1&history=0&pauseAfter=%d", s.URL, pauseAfter.Milliseconds()))
	first.evalUntil(t, "live", pageLive, browserWait)
	until(t, "both streams open", browserWait, func() bool { al, da, _ := s.counts(t, "1"); return al == 1 && da == 1 })

	// Another tab in the same window: Chromium hides the dashboard.
	other, _ := tabWithCancel(t, first.ctx, chromedp.WithNewWindow(false))
	other.open(t, "about:blank")
	first.evalUntil(t, "the dashboard is hidden", `document.visibilityState === 'hidden'`, browserWait)
	first.evalUntil(t, "paused", `document.body.dataset.sseState === 'paused'`, pauseAfter+5*time.Second)
	until(t, "no stream left in /sse/status", 2*time.Second, func() bool { al, da, _ := s.counts(t, "1"); return al+da == 0 })
	// The beacons ended both streams, each within a second of its close.
	until(t, "two streams ended by their close beacon", 2*time.Second, func() bool {
		return len(closedStreams(s.logs)) == 2 && len(s.logs.Lines("stream close requested")) == 2
	})
	requested := s.logs.Lines("stream close requested")
	for _, end := range closedStreams(s.logs) {
		// The latest close request before this end is the one that ended it.
		at, d := logTime(t, end), time.Duration(-1)
		for _, req := range requested {
			if r := at.Sub(logTime(t, req)); r >= 0 && (d < 0 || r < d) {
				d = r
			}
		}
		if d < 0 || d > time.Second {
			t.Errorf("a stream ended %v after its close request, want within 1s", d)
		}
	}

	for n := 1; n <= 3; n++ {
		s.alert(t, "C0"+fmt.Sprint(n), n, time.Now())
	}
	if _, err := chromedp.CallBrowser(first.ctx, target.ActivateTarget, target.ActivateTargetParams{TargetID: chromedp.FromContext(first.ctx).Target.TargetID}); err != nil {
		t.Fatal(err)
	}
	first.evalUntil(t, "visible and live again", `document.visibilityState === 'visible' && `+pageLive, browserWait)
	first.evalUntil(t, "the missed alerts", `document.querySelectorAll('#alerts li').length >= 3`, browserWait)
	time.Sleep(500 * time.Millisecond) // a second copy would come now
	if got := first.alertMessages(t); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("alerts after the pause %v, want n=1..n=3 once", got)
	}
}

func closedStreams(l *logtest.Log) []map[string]any {
	var out []map[string]any
	for _, m := range l.Lines("stream end") {
		if m["reason"] == "closed" {
			out = append(out, m)
		}
	}
	return out
}

func logTime(t *testing.T, m map[string]any) time.Time {
	t.Helper()
	s, _ := m["time"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("log time %q: %v", s, err)
	}
	return at
}

func TestClientLiveAgainAfterServerRestart(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	s := startReal(t, "127.0.0.1:0", nil)
	addr := strings.TrimPrefix(s.URL, "http://") // restart reuses the port
	tb.open(t, s.URL+"/#user=1")
	tb.evalUntil(t, "live", pageLive, browserWait)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tb.evalUntil(t, "the page sees the server gone", `document.body.dataset.sseState !== 'live'`, browserWait)
	s.restart(t, addr) // Redis keeps the users, tickets and leases
	// Drained streams come back after the server's retry (5-15 s), failed
	// connects after the client's backoff.
	tb.evalUntil(t, "live again by itself", pageLive+` && document.querySelector('#stream-alerts .detail').textContent.startsWith('resumed')`, 25*time.Second)
}

func TestClientRecoversFromTooManyRequests(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	var refused sync.Map // stream path -> *atomic.Int32
	proxy := newFrontProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/sse/alerts" && r.URL.Path != "/sse/stream" {
			return false
		}
		n, _ := refused.LoadOrStore(r.URL.Path, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) > 3 {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"statusCode":429,"message":"Too Many Requests","error":"Too Many Requests"}`)
		return true
	})
	s := startReal(t, "127.0.0.1:0", map[string]string{"CORS_ALLOWED_ORIGINS": proxy.URL})
	proxy.to(t, s)

	tb.open(t, proxy.URL+"/#user=1")
	tb.evalUntil(t, "recovered by itself", pageLive, 20*time.Second)
	for _, p := range []string{"/sse/alerts", "/sse/stream"} {
		n, _ := refused.Load(p)
		if got := n.(*atomic.Int32).Load(); got < 4 {
			t.Errorf("%s: %d requests, want 3 refused and one through", p, got)
		}
	}
}

func TestClientHistoryFillsTheAlertsPanel(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	s := startReal(t, "127.0.0.1:0", nil)
	base := time.Now().Add(-time.Hour)
	for n := 1; n <= 30; n++ {
		s.alert(t, "C0"+fmt.Sprint(n%3+1), n, base.Add(time.Duration(n)*time.Second))
	}
	tb.open(t, s.URL+"/#user=1&history=20")
	tb.evalUntil(t, "twenty alerts from history", pageLive+` && document.querySelectorAll('#alerts li').length === 20`, browserWait)
	if got := tb.alertMessages(t); !slices.Equal(got, seq(11, 30)) {
		t.Fatalf("history %v, want the newest twenty, oldest first", got)
	}
}
