package devserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jonboulle/clockwork"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/ticket"
)

// plainPage uses nothing but new EventSource(url): it only records what the
// browser delivers. It is served from another origin than the stream, as
// the dashboard is in production (CORS, withCredentials, Last-Event-ID
// without a preflight).
const plainPage = `<!doctype html><meta charset="utf-8"><title>plain EventSource</title>
<script>
window.alerts = []; window.kinds = []; window.opens = 0;
const es = new EventSource(decodeURIComponent(location.hash.slice(1)), { withCredentials: true });
es.onopen = () => { window.opens++; };
es.addEventListener('machine-alert', (e) => window.alerts.push(JSON.parse(e.data).alert.n));
es.addEventListener('system', (e) => window.kinds.push(JSON.parse(e.data).kind));
</script>`

// offsetClock is real time shifted by an adjustable offset: timers run in
// real time, but the service's "now" (ticket expiry, timestamps) can jump.
type offsetClock struct {
	clockwork.Clock
	off atomic.Int64
}

func (c *offsetClock) Now() time.Time                  { return c.Clock.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *offsetClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

// TestPlainEventSourceSurvivesRotationsAndTicketExpiry is the promise to
// the frontend: a plain EventSource stays live across Lambda-style
// rotations (-max-stream 5s) after its ticket has expired, and receives
// every alert published all along exactly once, in order.
func TestPlainEventSourceSurvivesRotationsAndTicketExpiry(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, plainPage)
	}))
	t.Cleanup(page.Close)

	rdb, prefix := redistest.Client(t)
	k := config.DefaultKeys().WithPrefix(prefix)
	clock := &offsetClock{Clock: clockwork.NewRealClock()}
	env := k.Env()
	env["REDIS_URL"] = redistest.URL(t)
	env["CORS_ALLOWED_ORIGINS"] = page.URL
	s := start(t, env, devserver.Options{MaxStream: 5 * time.Second, Clock: clock})

	// The shortest ticket there is; it will expire during the test.
	tk, _, err := s.App.Tickets.Issue(context.Background(), "1", purpose.Alerts, ticket.MinTTL)
	if err != nil {
		t.Fatal(err)
	}
	stream := s.URL + "/sse/alerts?ticket=" + url.QueryEscape(tk)

	// Alerts all along, as the ingest sends them: history first, then the
	// channel, each with its own timestamp.
	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for n := int64(1); ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			dev := fmt.Sprintf("C0%d", n%3+1)
			p := fmt.Sprintf(`{"deviceId":%q,"alert":{"n":%d},"timestamp":%q}`, dev, n, clock.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
			pipe := rdb.Pipeline()
			pipe.LPush(context.Background(), k.AlertHistory(dev), p)
			pipe.LTrim(context.Background(), k.AlertHistory(dev), 0, 99)
			pipe.Publish(context.Background(), k.Channel(channel.Alert), p)
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			published.Store(n)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	tb.open(t, page.URL+"/#"+url.QueryEscape(stream))
	tb.waitFor(t, "the stream is open and alerts arrive", `window.opens >= 1 && window.alerts.length > 0`, browserWait)
	// The ticket expires: from now on every reconnect is a resume.
	clock.off.Store(int64(ticket.MinTTL + time.Second))
	// Three rotations: each ends with retry: 1-5 s and the browser's own
	// reconnect with Last-Event-ID. (5 s lifetime + up to 5 s retry each.)
	tb.waitFor(t, "three rotations survived", `window.kinds.filter(k => k === 'reconnect').length >= 3 && window.opens >= 4`, 45*time.Second)
	close(stop)
	wg.Wait()
	last := published.Load()
	tb.waitFor(t, "the last alert delivered", fmt.Sprintf(`window.alerts.includes(%d)`, last), browserWait)

	got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]int64](`window.alerts`))
	if err != nil {
		t.Fatal(err)
	}
	kinds, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`window.kinds`))
	// The page connected after some alerts were already published: it owes
	// nothing before its first one, and everything after, once, in order.
	if len(got) == 0 {
		t.Fatal("no alerts")
	}
	first := got[0]
	for i, n := range got {
		if n != first+int64(i) {
			t.Fatalf("alerts %v: position %d is %d, want %d (lost or duplicated); system events %v", got, i, n, first+int64(i), kinds)
		}
	}
	if got[len(got)-1] != last {
		t.Fatalf("last alert %d, want %d", got[len(got)-1], last)
	}
	for _, k := range kinds {
		if k == "unavailable" || k == "superseded" {
			t.Fatalf("unexpected system event %q in %v", k, kinds)
		}
	}
	t.Logf("%d alerts (%d..%d) across %d connections, system events %v", len(got), first, last, countOpens(t, tb), kinds)
}

func countOpens(t *testing.T, tb *tab) int {
	n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`window.opens`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
