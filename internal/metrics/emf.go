package metrics

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// Units of CloudWatch used here.
const (
	unitCount        = "Count"
	unitSeconds      = "Seconds"
	unitMilliseconds = "Milliseconds"
)

// emitter writes EMF lines, one JSON object per line.
type emitter struct {
	mu  sync.Mutex
	out io.Writer
}

// metric is one value of a line: its name, unit and value.
type metric struct {
	name, unit string
	value      float64
}

// directive groups metrics under dimension sets (an empty set publishes
// them without dimensions too, which is what the alarms use).
type directive struct {
	dims    [][]string
	metrics []metric
}

// line writes one EMF document: the directives, the dimension values and
// extra plain fields (logged, not metrics).
func (e *emitter) line(at time.Time, dims map[string]string, ds []directive, extra map[string]any) {
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type dir struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []def      `json:"Metrics"`
	}
	doc := map[string]any{}
	maps.Copy(doc, extra)
	var dirs []dir
	for _, d := range ds {
		out := dir{Namespace: Namespace, Dimensions: d.dims}
		for _, m := range d.metrics {
			out.Metrics = append(out.Metrics, def{m.name, m.unit})
			doc[m.name] = m.value
		}
		dirs = append(dirs, out)
	}
	for k, v := range dims {
		doc[k] = v
	}
	doc["_aws"] = map[string]any{"Timestamp": at.UnixMilli(), "CloudWatchMetrics": dirs}
	b, err := json.Marshal(doc)
	if err != nil {
		return // only numbers and our own strings: cannot happen
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.out.Write(append(b, '\n'))
}

// ended writes a stream's end line.
func (e *emitter) ended(at time.Time, x End) {
	e.line(at, map[string]string{"Purpose": x.Purpose, "Reason": x.Reason}, []directive{
		{dims: [][]string{{"Purpose", "Reason"}}, metrics: []metric{{StreamsEnded, unitCount, 1}}},
		{dims: [][]string{{"Purpose"}, {}}, metrics: []metric{
			{StreamSeconds, unitSeconds, x.Seconds},
			{TimeToFirstByte, unitMilliseconds, float64(x.TimeToFirstByte) / float64(time.Millisecond)},
			{Dropped, unitCount, float64(x.Dropped)},
			{Coalesced, unitCount, float64(x.Coalesced)},
		}},
	}, map[string]any{"events": x.Events})
}

// EmitTo makes the recorder write EMF lines to w: one per stream end and,
// at every Flush, the process lines.
func (r *Recorder) EmitTo(w io.Writer) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emf = &emitter{out: w}
}

// Run flushes every interval until ctx ends, then once more. In Lambda the
// process is frozen between invocations, so stream ends and refusals flush
// too (Ended, Refused).
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.Flush()
			return
		case <-t.C:
			r.Flush()
		}
	}
}

// Flush writes the process lines: what changed since the last flush, by
// purpose, by status and by event, and the process-wide figures (open
// streams as a gauge). Nothing is written without EmitTo.
func (r *Recorder) Flush() {
	if r == nil {
		return
	}
	open, malformed := r.open(), r.malformed()
	delivered := r.deliveries()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.emf == nil {
		return
	}
	at := r.now()
	now, was := &r.total, &r.sent
	purposes := union(now.opened, now.resumesOK, now.resumesRefused)
	for _, p := range purposes {
		o, ok, no := now.opened[p]-was.opened[p], now.resumesOK[p]-was.resumesOK[p], now.resumesRefused[p]-was.resumesRefused[p]
		if o == 0 && ok == 0 && no == 0 {
			continue
		}
		r.emf.line(at, map[string]string{"Purpose": p}, []directive{
			{dims: [][]string{{"Purpose"}}, metrics: []metric{{StreamsOpened, unitCount, float64(o)}, {ResumesOK, unitCount, float64(ok)}}},
			{dims: [][]string{{"Purpose"}, {}}, metrics: []metric{{ResumesRefused, unitCount, float64(no)}}},
		}, nil)
		was.opened[p], was.resumesOK[p], was.resumesRefused[p] = now.opened[p], now.resumesOK[p], now.resumesRefused[p]
	}
	for _, st := range slices.Sorted(maps.Keys(now.refusals)) {
		if d := now.refusals[st] - was.refusals[st]; d != 0 {
			r.emf.line(at, map[string]string{"Status": st}, []directive{
				{dims: [][]string{{"Status"}}, metrics: []metric{{Refusals, unitCount, float64(d)}}},
			}, nil)
			was.refusals[st] = now.refusals[st]
		}
	}
	for _, ev := range slices.Sorted(maps.Keys(delivered)) {
		if d := delivered[ev] - was.deliveries[ev]; d != 0 {
			r.emf.line(at, map[string]string{"Event": ev}, []directive{
				{dims: [][]string{{"Event"}}, metrics: []metric{{Deliveries, unitCount, float64(d)}}},
			}, nil)
			was.deliveries[ev] = delivered[ev]
		}
	}
	r.emf.line(at, nil, []directive{{dims: [][]string{{}}, metrics: []metric{
		{OpenStreams, unitCount, float64(open)},
		{Malformed, unitCount, float64(malformed - r.malSnt)},
		{ReplayedAlerts, unitCount, float64(now.replayed - was.replayed)},
	}}}, nil)
	r.malSnt, was.replayed = malformed, now.replayed
}

// union returns the keys of the maps, sorted.
func union(ms ...map[string]int64) []string {
	seen := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			seen[k] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
