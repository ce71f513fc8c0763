package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 27, 12, 0, 0, 0, time.UTC)

// emfDoc is one parsed EMF line.
type emfDoc map[string]any

// lines parses and validates every line as an EMF document: one JSON
// object per line, our namespace, every metric and dimension key present
// on the root (numbers and strings respectively), as the spec requires.
func lines(t *testing.T, out string) []emfDoc {
	t.Helper()
	var docs []emfDoc
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var d emfDoc
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("not one JSON object per line: %q: %v", l, err)
		}
		aws := d["_aws"].(map[string]any)
		if aws["Timestamp"].(float64) != float64(t0.UnixMilli()) {
			t.Fatalf("timestamp %v", aws["Timestamp"])
		}
		for _, raw := range aws["CloudWatchMetrics"].([]any) {
			dir := raw.(map[string]any)
			if dir["Namespace"] != Namespace {
				t.Fatalf("namespace %v", dir["Namespace"])
			}
			for _, set := range dir["Dimensions"].([]any) {
				for _, k := range set.([]any) {
					if _, ok := d[k.(string)].(string); !ok {
						t.Fatalf("dimension %v has no string value in %s", k, l)
					}
				}
			}
			for _, m := range dir["Metrics"].([]any) {
				name := m.(map[string]any)["Name"].(string)
				if _, ok := d[name].(float64); !ok {
					t.Fatalf("metric %s has no number in %s", name, l)
				}
			}
		}
		docs = append(docs, d)
	}
	return docs
}

// shape is a document's directives as "dims=[..] Name/Unit,..." strings.
func shape(d emfDoc) []string {
	var out []string
	for _, raw := range d["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
		dir := raw.(map[string]any)
		b, _ := json.Marshal(dir["Dimensions"])
		s := "dims=" + string(b)
		for _, m := range dir["Metrics"].([]any) {
			mm := m.(map[string]any)
			s += " " + mm["Name"].(string) + "/" + mm["Unit"].(string)
		}
		out = append(out, s)
	}
	return out
}

func find(docs []emfDoc, key, value string) emfDoc {
	for _, d := range docs {
		if d[key] == value {
			return d
		}
	}
	return nil
}

func TestStreamEndLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r := New(Sources{}, func() time.Time { return t0 })
	r.EmitTo(&out)
	r.Ended(End{Purpose: "alerts", Reason: "rotate", Seconds: 874.5, TimeToFirstByte: 42 * time.Millisecond, Dropped: 3, Coalesced: 7, Events: 120})
	docs := lines(t, out.String())
	end := find(docs, "Reason", "rotate")
	if end == nil {
		t.Fatalf("no end line:\n%s", out.String())
	}
	want := []string{
		`dims=[["Purpose","Reason"]] StreamsEnded/Count`,
		`dims=[["Purpose"],[]] StreamSeconds/Seconds TimeToFirstByte/Milliseconds Dropped/Count Coalesced/Count`,
	}
	if got := shape(end); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("directives\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for k, v := range map[string]any{"Purpose": "alerts", StreamsEnded: 1.0, StreamSeconds: 874.5, TimeToFirstByte: 42.0, Dropped: 3.0, Coalesced: 7.0, "events": 120.0} {
		if end[k] != v {
			t.Errorf("%s = %v, want %v", k, end[k], v)
		}
	}
	// The end flushes the process line too (Lambda may freeze right after).
	if len(docs) != 2 || docs[1][OpenStreams] == nil {
		t.Fatalf("no process line after the end:\n%s", out.String())
	}
}

func TestProcessLinesReportChangesSinceTheLastFlush(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	open, malformed := int64(2), int64(5)
	r := New(Sources{OpenStreams: func() int64 { return open }, Malformed: func() int64 { return malformed }}, func() time.Time { return t0 })
	r.EmitTo(&out)
	r.Opened("data", false, 0)
	r.Opened("alerts", true, 4)
	r.Delivered("realtime-update")
	r.Delivered("realtime-update")
	r.Delivered("machine-alert")
	out.Reset()
	r.Refused("data", "429", false) // flushes
	docs := lines(t, out.String())

	data := find(docs, "Purpose", "data")
	if data == nil || data[StreamsOpened] != 1.0 || data[ResumesOK] != 0.0 || data[ResumesRefused] != 0.0 {
		t.Fatalf("data line %v", data)
	}
	if got := shape(data); got[0] != `dims=[["Purpose"]] StreamsOpened/Count ResumesOk/Count` || got[1] != `dims=[["Purpose"],[]] ResumesRefused/Count` {
		t.Fatalf("purpose directives %v", got)
	}
	if a := find(docs, "Purpose", "alerts"); a == nil || a[ResumesOK] != 1.0 {
		t.Fatalf("alerts line %v", a)
	}
	st := find(docs, "Status", "429")
	if st == nil || st[Refusals] != 1.0 || shape(st)[0] != `dims=[["Status"]] Refusals/Count` {
		t.Fatalf("refusal line %v", st)
	}
	if ev := find(docs, "Event", "realtime-update"); ev == nil || ev[Deliveries] != 2.0 || shape(ev)[0] != `dims=[["Event"]] Deliveries/Count` {
		t.Fatalf("deliveries line %v", ev)
	}
	proc := docs[len(docs)-1]
	if shape(proc)[0] != `dims=[[]] OpenStreams/Count Malformed/Count ReplayedAlerts/Count` ||
		proc[OpenStreams] != 2.0 || proc[Malformed] != 5.0 || proc[ReplayedAlerts] != 4.0 {
		t.Fatalf("process line %v %v", shape(proc), proc)
	}

	// The next flush carries only what changed since: sums over lines are
	// the totals.
	out.Reset()
	open, malformed = 1, 6
	r.Refused("alerts", "401", true)
	docs = lines(t, out.String())
	if find(docs, "Status", "429") != nil || find(docs, "Event", "realtime-update") != nil || find(docs, "Purpose", "data") != nil {
		t.Fatalf("unchanged figures sent again:\n%s", out.String())
	}
	if a := find(docs, "Purpose", "alerts"); a == nil || a[ResumesRefused] != 1.0 || a[StreamsOpened] != 0.0 {
		t.Fatalf("alerts line %v", a)
	}
	if proc := docs[len(docs)-1]; proc[OpenStreams] != 1.0 || proc[Malformed] != 1.0 || proc[ReplayedAlerts] != 0.0 {
		t.Fatalf("process line %v", proc)
	}
}

func TestNothingIsWrittenWithoutEmitTo(t *testing.T) {
	t.Parallel()
	r := New(Sources{}, nil)
	r.Refused("data", "401", false)
	r.Ended(End{Purpose: "data", Reason: "rotate"})
	r.Flush()
	var nilRecorder *Recorder
	nilRecorder.Opened("data", false, 0)
	nilRecorder.Delivered("x")
	nilRecorder.Ended(End{})
	nilRecorder.Flush()
	var b bytes.Buffer
	r.WritePrometheus(&b)
	if !strings.Contains(b.String(), `sse_refusals_total{status="401"} 1`) {
		t.Fatalf("counting stopped without EmitTo:\n%s", b.String())
	}
}

func TestPrometheusEndpoint(t *testing.T) {
	t.Parallel()
	r := New(Sources{OpenStreams: func() int64 { return 3 }, Malformed: func() int64 { return 9 }}, func() time.Time { return t0 })
	r.Opened("alerts", true, 2)
	r.Opened("data", false, 0)
	r.Delivered("spc-update")
	r.Refused("data", SoftRefusal, true)
	r.Ended(End{Purpose: "data", Reason: "byte-limit", Seconds: 12.5, TimeToFirstByte: 250 * time.Millisecond, Dropped: 1, Coalesced: 4})
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"# TYPE sse_streams_opened_total counter\n",
		`sse_streams_opened_total{purpose="alerts"} 1` + "\n",
		`sse_streams_ended_total{purpose="data",reason="byte-limit"} 1` + "\n",
		"# TYPE sse_streams_open gauge\nsse_streams_open 3\n",
		`sse_deliveries_total{event="spc-update"} 1` + "\n",
		`sse_dropped_total{purpose="data"} 1` + "\n",
		`sse_coalesced_total{purpose="data"} 4` + "\n",
		"sse_malformed_total 9\n",
		`sse_refusals_total{status="unavailable"} 1` + "\n",
		`sse_resumes_total{result="ok"} 1` + "\n",
		`sse_resumes_total{result="refused"} 1` + "\n",
		"sse_replayed_alerts_total 2\n",
		"sse_time_to_first_byte_seconds_sum 0.25\nsse_time_to_first_byte_seconds_count 1\n",
		`sse_stream_seconds_total{purpose="data"} 12.5` + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	// Every sample line is name{labels} value, every family has HELP and TYPE.
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") {
			continue
		}
		if f := strings.Fields(l); len(f) != 2 || !strings.HasPrefix(f[0], "sse_") {
			t.Errorf("bad sample line %q", l)
		}
	}
}
