package stream_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/purpose"
)

// metricsOnce waits (bounded) until the Prometheus text has line, then
// returns the text: a stream is counted open just after its first events
// reach the client.
func (e *env) metricsOnce(line string) string {
	e.t.Helper()
	var m strings.Builder
	for range 250 {
		m.Reset()
		e.app.Metrics.WritePrometheus(&m)
		if strings.Contains(m.String(), line+"\n") {
			return m.String()
		}
		time.Sleep(20 * time.Millisecond) // bounded: 250 tries
	}
	e.t.Fatalf("metrics never had %q:\n%s", line, m.String())
	return ""
}

// endedCount waits (bounded) until n streams have been counted as ended:
// the count comes after a stream's lease release, and a client sees the
// end of its response before that.
func (e *env) endedCount(n int) {
	e.t.Helper()
	var m strings.Builder
	for range 250 {
		m.Reset()
		e.app.Metrics.WritePrometheus(&m)
		total := 0
		for _, l := range strings.Split(m.String(), "\n") {
			if rest, ok := strings.CutPrefix(l, "sse_streams_ended_total{"); ok {
				v, _ := strconv.Atoi(rest[strings.LastIndexByte(rest, ' ')+1:])
				total += v
			}
		}
		if total >= n {
			return
		}
		time.Sleep(20 * time.Millisecond) // bounded: 250 tries
	}
	e.t.Fatalf("fewer than %d stream ends counted:\n%s", n, m.String())
}

func (e *env) wantMetrics(after string, lines ...string) {
	e.t.Helper()
	m := e.metricsOnce(after)
	for _, l := range lines {
		if !strings.Contains(m, l+"\n") {
			e.t.Errorf("after %s, metrics lack %q:\n%s", after, l, m)
		}
	}
}

// ResumesOk counts the streams that took over their cursor's lease, not a
// fresh ticket whose cursor only gives the replay position; ReplayedAlerts
// counts the alerts sent from a cursor (either way), not history=N.
func TestResumeAndReplayMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	tk := e.ticket("1", purpose.Alerts)
	path := "/sse/alerts?ticket=" + url.QueryEscape(tk)
	c := e.open(path)
	last := c.expect("system", "")
	c.resp.Body.Close()
	c.ended()
	e.endedCount(1) // its lease is released: the next streams do not evict it
	e.alert("C01", t0.Add(time.Second), "missed 1", false)

	// A fresh ticket with the cursor: replayed from its position, no resume.
	f := e.open("/sse/alerts?ticket="+url.QueryEscape(e.ticket("1", purpose.Alerts)), "Last-Event-ID", last.ID)
	f.expect("system", "")
	f.expect("machine-alert", "C01")
	e.wantMetrics(`sse_streams_opened_total{purpose="alerts"} 2`,
		`sse_resumes_total{result="ok"} 0`, `sse_replayed_alerts_total 1`)
	f.resp.Body.Close()
	f.ended()
	e.endedCount(2)

	// history=1: the newest alert again, not a replay.
	hs := e.open("/sse/alerts?history=1&ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	hs.expect("system", "")
	hs.expect("machine-alert", "C01")
	e.wantMetrics(`sse_streams_opened_total{purpose="alerts"} 3`,
		`sse_resumes_total{result="ok"} 0`, `sse_replayed_alerts_total 1`)
	hs.resp.Body.Close()
	hs.ended()
	e.endedCount(3)

	// The same ticket, by the query parameter: a resume, and its replay.
	e.alert("C01", t0.Add(2*time.Second), "missed 2", false)
	r := e.open(path + "&lastEventId=" + url.QueryEscape(last.ID))
	r.expect("system", "")
	r.expect("machine-alert", "C01")
	r.expect("machine-alert", "C01")
	e.wantMetrics(`sse_streams_opened_total{purpose="alerts"} 4`,
		`sse_resumes_total{result="ok"} 1`, `sse_replayed_alerts_total 3`)
}

// A cursor sent as ?lastEventId= (what the browser client sends) that is
// answered without a stream counts as a refused resume, as the header does.
func TestRefusedResumeByQueryParameterIsCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	last := c.expect("system", "")
	if resp := e.get("/sse/alerts?ticket=x.y.z&lastEventId=" + url.QueryEscape(last.ID)); resp.StatusCode != 401 {
		t.Fatalf("bad ticket: %d", resp.StatusCode)
	}
	e.wantMetrics(`sse_refusals_total{status="401"} 1`, `sse_resumes_total{result="refused"} 1`)
}
