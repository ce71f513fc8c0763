package devserver_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/machinedash/sse/internal/devserver"
)

// browserWait bounds each wait in a browser, which shares the machine's two
// cores with the server, the simulator and other tests' browsers.
const browserWait = 10 * time.Second

// browser returns the path of a Chromium or Chrome, or skips the test
// (fails it with REQUIRE_BROWSER=1).
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REQUIRE_BROWSER") == "1" {
		t.Fatal("REQUIRE_BROWSER=1 but no chromium on PATH")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// tab is one page of a headless browser, with the exceptions it threw.
type tab struct {
	ctx        context.Context
	mu         sync.Mutex
	exceptions []string
}

// newBrowser starts a headless Chromium for the test and returns its
// first tab.
func newBrowser(t *testing.T) *tab {
	t.Helper()
	exe := browser(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))...)
	t.Cleanup(cancel)
	return newTab(t, actx)
}

// newTab opens another tab in the browser of parent (an allocator or a
// tab's context).
func newTab(t *testing.T, parent context.Context) *tab {
	t.Helper()
	tb := &tab{}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			tb.mu.Unlock()
		}
	}))
	t.Cleanup(func() {
		cancel()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		if len(tb.exceptions) > 0 {
			t.Errorf("the page threw: %v", tb.exceptions)
		}
	})
	tb.ctx = ctx
	return tb
}

func (tb *tab) open(t *testing.T, url string) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
}

// waitFor polls a JavaScript predicate until it is true, at most d.
func (tb *tab) waitFor(t *testing.T, what, expr string, d time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) eval(t *testing.T, expr string) {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool]("("+expr+", true)")); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
}

func streamState(stream string) string {
	return `document.querySelector('#stream-` + stream + ` .state').textContent`
}

// TestDashboardInBrowser opens the page in a headless Chromium as a person
// would: pick user 1, see both streams live, machine cards filling with
// values, an alert, and then, after the server rotates the data stream
// (-max-stream 5s), the browser's own EventSource reconnect resuming it,
// with no help from the page. DASHBOARD_SCREENSHOT=file.png saves a picture.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	s := start(t, nil, devserver.Options{Simulate: true, MaxStream: 5 * time.Second})
	tb.open(t, s.URL+"/#user=1")
	tb.waitFor(t, "both streams live", streamState("alerts")+` === 'live' && `+streamState("data")+` === 'live'`, browserWait)
	tb.waitFor(t, "three machine cards with live values",
		`document.querySelectorAll('#cards .card').length === 3 && [...document.querySelectorAll('#cards .card')].every(c => c.querySelectorAll('.values dd').length >= 6 && c.querySelector('.age').textContent !== '')`, browserWait)
	tb.waitFor(t, "an SPC cycle and an SPC series shown",
		`[...document.querySelectorAll('#cards .card')].some(c => !c.querySelector('.spc').classList.contains('muted') && !c.querySelector('.series-box').hidden)`, browserWait)
	tb.waitFor(t, "an alert listed", `document.querySelectorAll('#alerts li').length > 0`, browserWait)
	tb.waitFor(t, "raw events logged", `document.querySelectorAll('#log li').length > 5`, browserWait)
	// Rotation: at most 5s after connecting the server ends the stream
	// with retry: (1-5s); the browser reconnects with Last-Event-ID.
	tb.waitFor(t, "the data stream resumed after rotation",
		`document.querySelector('#stream-data .detail').textContent.startsWith('resumed') && `+streamState("data")+` === 'live'`, 15*time.Second)
	if p := os.Getenv("DASHBOARD_SCREENSHOT"); p != "" {
		png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDashboardSupersededByAnotherBrowser: the same user in a second
// browser (another device, say) takes over both streams; the first shows
// them stopped as superseded and does not fight back, until its Reconnect
// button takes them back. (Tabs of one browser share their streams: see
// client_browser_test.go.)
func TestDashboardSupersededByAnotherBrowser(t *testing.T) {
	t.Parallel()
	first := newBrowser(t)
	second := newBrowser(t)
	s := start(t, nil, devserver.Options{Simulate: true})
	live := streamState("alerts") + ` === 'live' && ` + streamState("data") + ` === 'live'`
	first.open(t, s.URL+"/#user=1")
	first.waitFor(t, "first browser live", live, browserWait)
	second.open(t, s.URL+"/#user=1")
	second.waitFor(t, "second browser live", live, browserWait)
	stopped := func(stream string) string {
		return streamState(stream) + ` === 'stopped' && document.querySelector('#stream-` + stream + ` .detail').textContent.startsWith('superseded') && !document.querySelector('#stream-` + stream + ` .reconnect').hidden`
	}
	first.waitFor(t, "first browser's streams stopped as superseded", stopped("alerts")+" && "+stopped("data"), browserWait)
	second.waitFor(t, "second browser still live", live, time.Second)

	first.eval(t, `document.querySelector('#stream-data .reconnect').click()`)
	first.waitFor(t, "first browser's streams back", live, browserWait)
	second.waitFor(t, "second browser's streams stopped as superseded", stopped("alerts")+" && "+stopped("data"), browserWait)
}
