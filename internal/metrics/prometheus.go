package metrics

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Handler serves the totals since start in the Prometheus text format
// (version 0.0.4), for the local server's GET /metrics. The format is a
// few lines of text, so it is written here rather than through the
// Prometheus client library and its dependencies.
func (r *Recorder) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		r.WritePrometheus(w)
	})
}

// WritePrometheus writes every figure, with HELP and TYPE lines.
func (r *Recorder) WritePrometheus(w io.Writer) {
	if r == nil {
		return
	}
	open, malformed := r.open(), r.malformed()
	delivered := r.deliveries()
	r.mu.Lock()
	t := r.total
	p := promWriter{w: w}
	p.family("sse_streams_opened_total", "counter", "Streams admitted.", "purpose", t.opened)
	p.head("sse_streams_ended_total", "counter", "Streams ended, by why.")
	for _, k := range slices.SortedFunc(maps.Keys(t.ended), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	}) {
		p.sample("sse_streams_ended_total", fmt.Sprintf(`{purpose=%q,reason=%q}`, k[0], k[1]), float64(t.ended[k]))
	}
	p.head("sse_streams_open", "gauge", "Streams open in this process now.")
	p.sample("sse_streams_open", "", float64(open))
	p.family("sse_deliveries_total", "counter", "Events written to clients, by event.", "event", delivered)
	p.family("sse_dropped_total", "counter", "Messages refused by a full stream queue.", "purpose", t.dropped)
	p.family("sse_coalesced_total", "counter", "Realtime values replaced by a newer one before they were written.", "purpose", t.coalesced)
	p.head("sse_malformed_total", "counter", "Channel messages dropped as malformed.")
	p.sample("sse_malformed_total", "", float64(malformed))
	p.family("sse_refusals_total", "counter", "Stream requests answered without a stream, by status (unavailable: the soft refusal).", "status", t.refusals)
	p.head("sse_resumes_total", "counter", "Reconnects with a cursor (Last-Event-ID or lastEventId), by result.")
	p.sample("sse_resumes_total", `{result="ok"}`, float64(sum(t.resumesOK)))
	p.sample("sse_resumes_total", `{result="refused"}`, float64(sum(t.resumesRefused)))
	p.head("sse_replayed_alerts_total", "counter", "Alerts replayed from a cursor (not history=N).")
	p.sample("sse_replayed_alerts_total", "", float64(t.replayed))
	p.head("sse_time_to_first_byte_seconds", "summary", "From a stream request to its first event written.")
	p.sample("sse_time_to_first_byte_seconds_sum", "", r.ttfb)
	p.sample("sse_time_to_first_byte_seconds_count", "", float64(r.ttfbN))
	p.head("sse_stream_seconds_total", "counter", "Stream lifetime summed: what Lambda bills.")
	for _, k := range slices.Sorted(maps.Keys(t.seconds)) {
		p.sample("sse_stream_seconds_total", fmt.Sprintf(`{purpose=%q}`, k), t.seconds[k])
	}
	r.mu.Unlock()
}

type promWriter struct{ w io.Writer }

func (p promWriter) head(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p promWriter) sample(name, labels string, v float64) {
	fmt.Fprintf(p.w, "%s%s %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
}

// family writes a counter with one label.
func (p promWriter) family(name, typ, help, label string, values map[string]int64) {
	p.head(name, typ, help)
	for _, k := range slices.Sorted(maps.Keys(values)) {
		p.sample(name, fmt.Sprintf(`{%s=%q}`, label, k), float64(values[k]))
	}
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}
