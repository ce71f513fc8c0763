package devserver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/machinedash/sse/internal/devserver"
)

// screenshotDir is where the browser tests leave their pictures for a
// person to look at: _screenshots/ at the module root (git ignores it, go
// ignores folders starting with _). The test prints each path.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "_screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (tb *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100)) // 100: PNG (less is JPEG)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func (tb *tab) value(t *testing.T, expr string) float64 {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[float64](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// TestDashboardLayout loads the live page at a phone's, a tablet's and a
// desktop's width, with alerts, raw log lines and the debug panel open, and
// checks that nothing is wider than the viewport (no sideways scrolling,
// no card cut off). It writes a screenshot of each width.
func TestDashboardLayout(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	s := start(t, nil, devserver.Options{Simulate: true})
	for _, w := range []int64{360, 768, 1400} {
		if _, err := chromedp.Run(tb.ctx, chromedp.EmulateViewport(w, 900)); err != nil {
			t.Fatal(err)
		}
		tb.open(t, s.URL+"/#user=1")
		tb.waitFor(t, "live cards, alerts and log lines",
			`document.querySelectorAll('#cards .card').length === 3 && [...document.querySelectorAll('#cards .card')].every(c => c.querySelectorAll('.values dd').length >= 8)`+
				` && document.querySelectorAll('#alerts li').length > 0 && document.querySelectorAll('#log li').length > 10`, browserWait)
		tb.eval(t, `document.querySelector('#debug').open = true`)
		tb.waitFor(t, "the debug panel filled", `document.querySelectorAll('#dbg-conns tr[data-id]').length === 2`, browserWait)
		if got := tb.value(t, `innerWidth`); got != float64(w) {
			t.Fatalf("viewport %v, want %d", got, w)
		}
		if sw := tb.value(t, `document.documentElement.scrollWidth`); sw > float64(w) {
			t.Errorf("at %d px the page is %v px wide", w, sw)
		}
		if r := tb.value(t, `Math.max(...[...document.querySelectorAll('.card, #debug, .alerts li')].map(e => e.getBoundingClientRect().right))`); r > float64(w) {
			t.Errorf("at %d px an element ends at %v px", w, r)
		}
		tb.screenshot(t, fmt.Sprintf("dashboard-%d.png", w))
	}
}

// TestDebugPanelInBrowser drives the debug panel as a developer would:
// the connections list shows the page's own two streams; a published
// realtime event updates its card (unit, fixed decimals, out of range
// highlighted); a critical alert appears in the list and marks its
// machine; an alarm puts it in alarm; a malformed message moves the
// malformed counter. The simulator
// is off, so every value on the page comes from the panel.
func TestDebugPanelInBrowser(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	s := start(t, nil, devserver.Options{})
	tb.open(t, s.URL+"/#user=1")
	tb.waitFor(t, "both streams live", streamState("alerts")+` === 'live' && `+streamState("data")+` === 'live'`, browserWait)
	if open := tb.value(t, `document.querySelector('#debug').open ? 1 : 0`); open != 0 {
		t.Fatal("the debug panel must start closed")
	}
	tb.eval(t, `document.querySelector('#debug summary').click()`)
	tb.waitFor(t, "the page's own two streams listed",
		`(() => { const own = [...document.querySelectorAll('#dbg-conns tr')].filter(r => r.dataset.own); `+
			`return own.length === 2 && own.some(r => r.dataset.purpose === 'alerts' && r.dataset.own === 'alerts') && own.some(r => r.dataset.purpose === 'data' && r.dataset.own === 'data') })()`, browserWait)
	tb.waitFor(t, "the page's stream counters", `document.querySelectorAll('#dbg-page tr').length === 2 && document.querySelector('#dbg-page tr[data-stream=data] td:nth-child(3)').textContent !== '0'`, browserWait)

	publish := func(kind, device, data string) {
		t.Helper()
		tb.eval(t, fmt.Sprintf(`(() => { const k = document.querySelector('#pub-kind'); k.value = %q; k.dispatchEvent(new Event('change')); `+
			`document.querySelector('#pub-device').value = %q; if (%q) document.querySelector('#pub-data').value = %q; `+
			`document.querySelector('#pub-result').textContent = ''; document.querySelector('#pub-send').click() })()`, kind, device, data, data))
		tb.waitFor(t, "published "+kind, `document.querySelector('#pub-result').textContent.startsWith('published `+kind+` for `+device+` to 1 subscriber')`, browserWait)
	}
	tb.waitFor(t, "machine choices", `[...document.querySelectorAll('#pub-device option')].map(o => o.value).join() === 'C01,C02,C03'`, browserWait)
	card := `document.querySelector('.card[data-device=C02]')`
	publish("realtime", "C02", `{"T1": 251, "OT": 48.25}`)
	tb.waitFor(t, "the card shows the published values", `(() => { const dd = [...`+card+`.querySelectorAll('.values div')].map(d => [d.querySelector('dt').textContent, d.querySelector('dd')]); `+
		`const v = Object.fromEntries(dd); return v.T1 && v.T1.textContent === '251.0 °C' && v.T1.classList.contains('out') && v.OT.textContent === '48.3 °C' && !v.OT.classList.contains('out') })()`, browserWait)

	publish("alert", "C02", "")
	tb.waitFor(t, "the alert listed and its machine marked", `document.querySelector('#alerts li.critical[data-device=C02]') !== null && `+card+`.classList.contains('critical') && !`+card+`.querySelector('.mark').hidden`, browserWait)
	tb.eval(t, card+`.querySelector('.mark').click()`)
	tb.waitFor(t, "the mark dismissed", `!`+card+`.classList.contains('critical')`, time.Second)

	publish("alarm", "C02", "")
	tb.waitFor(t, "the alarm listed and its machine in alarm", `[...document.querySelectorAll('#alerts li[data-device=C02] b')].some(b => b.textContent.startsWith('alarm 2101 active')) && `+card+`.querySelector('.badge').textContent === 'alarm'`, browserWait)

	tb.waitFor(t, "malformed counter shown", `/^\d+$/.test(document.querySelector('#dbg-malformed').textContent)`, browserWait)
	before := tb.value(t, `Number(document.querySelector('#dbg-malformed').textContent)`)
	publish("malformed", "C01", "")
	tb.waitFor(t, "the malformed counter moved", fmt.Sprintf(`Number(document.querySelector('#dbg-malformed').textContent) === %v`, before+1), browserWait)
}

// TestStaleCardLosesRunning: when a machine's data stops, its card's
// badge no longer says "running".
func TestStaleCardLosesRunning(t *testing.T) {
	t.Parallel()
	tb := newBrowser(t)
	s := start(t, nil, devserver.Options{Simulate: true})
	tb.open(t, s.URL+"/#user=2")
	card := `document.querySelector('.card[data-device=C04]')`
	tb.waitFor(t, "C04 running", card+` && `+card+`.querySelector('.badge').textContent === 'running'`, browserWait)
	// Stop the data as the page would see it if the machine went quiet:
	// the card stays, nothing more arrives for it.
	tb.eval(t, `document.querySelector('#disconnect').click()`)
	tb.waitFor(t, "C04 stale", card+`.querySelector('.badge').textContent === 'stale' && `+card+`.classList.contains('stale')`, browserWait)
}
