// Package metrics counts what the stream endpoints do, and writes the
// figures as CloudWatch Embedded Metric Format (EMF) lines on stdout, which
// CloudWatch Logs turns into metrics (no network call, no SDK), and, for
// the local server, as Prometheus text at GET /metrics.
//
// Invariants: the Recorder is the one owner of the stream counters below;
// open streams and malformed messages keep their owners (stream.Handler
// and pubsub.Hub) and are read through Sources. Every EMF line is one JSON
// object on one line, carries only the dimension values named in Dims, and
// a process line reports the change since the previous one, so a sum over
// lines is the total. Labels are our own constants (purposes, end reasons,
// statuses, event names), never input from a client or Redis.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"
)

// Namespace is the CloudWatch namespace of every metric (infra/ alarms on
// it).
const Namespace = "MachineSSE"

// Metric names in CloudWatch. infra/ builds its alarms and dashboard on
// these names.
const (
	StreamsOpened   = "StreamsOpened"   // Count, by Purpose
	StreamsEnded    = "StreamsEnded"    // Count, by Purpose and Reason
	OpenStreams     = "OpenStreams"     // Count (gauge: streams open in the process at the line)
	Deliveries      = "Deliveries"      // Count, by Event: events written to clients
	Dropped         = "Dropped"         // Count, by Purpose: refused by a full stream queue
	Coalesced       = "Coalesced"       // Count, by Purpose: realtime values replaced by newer ones
	Malformed       = "Malformed"       // Count: channel messages dropped as malformed
	Refusals        = "Refusals"        // Count, by Status: requests answered without a stream
	ResumesOK       = "ResumesOk"       // Count, by Purpose
	ResumesRefused  = "ResumesRefused"  // Count, by Purpose: a cursor answered without a stream
	ReplayedAlerts  = "ReplayedAlerts"  // Count: alerts replayed from a cursor (not history=N)
	TimeToFirstByte = "TimeToFirstByte" // Milliseconds: request to the first event written
	StreamSeconds   = "StreamSeconds"   // Seconds, by Purpose: stream lifetime, what Lambda bills
)

// SoftRefusal is the Status of a refusal answered 200 + retry +
// "unavailable" (Redis down, draining): the browser retries by itself.
const SoftRefusal = "unavailable"

// Sources are figures with other owners, read when a line is written.
type Sources struct {
	OpenStreams func() int64 // stream.Handler.Open
	Malformed   func() int64 // pubsub.Hub Stats().Malformed (a running total)
}

// End is one finished stream.
type End struct {
	Purpose string
	Reason  string
	Seconds float64 // from request to end
	// TimeToFirstByte is from the request to its first event written.
	TimeToFirstByte time.Duration
	Dropped         int
	Coalesced       int
	Events          uint64
}

// Recorder counts; its methods are safe for concurrent use, and every
// method of a nil *Recorder does nothing.
type Recorder struct {
	src Sources
	now func() time.Time

	// Deliveries are counted per event on the hot path: a read-mostly map
	// of atomics, no lock.
	delivered sync.Map // event name -> *atomic.Int64

	mu     sync.Mutex
	total  tally // since start
	sent   tally // as of the last EMF process line
	ttfb   float64
	ttfbN  int64
	emf    *emitter // nil: counting only (the local server)
	malSnt int64    // Malformed as of the last process line
}

// tally is every counter with labels, keyed by label values.
type tally struct {
	opened, resumesOK, resumesRefused map[string]int64 // by purpose
	dropped, coalesced                map[string]int64 // by purpose
	seconds                           map[string]float64
	ended                             map[[2]string]int64 // purpose, reason
	refusals                          map[string]int64    // status
	deliveries                        map[string]int64    // event (only in sent)
	replayed                          int64
}

func newTally() tally {
	return tally{
		opened: map[string]int64{}, resumesOK: map[string]int64{}, resumesRefused: map[string]int64{},
		dropped: map[string]int64{}, coalesced: map[string]int64{}, seconds: map[string]float64{},
		ended: map[[2]string]int64{}, refusals: map[string]int64{}, deliveries: map[string]int64{},
	}
}

// New returns a recorder that only counts (see EmitTo). now nil is
// time.Now; Sources may be left nil.
func New(src Sources, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{src: src, now: now, total: newTally(), sent: newTally()}
}

// Opened counts an admitted stream: whether it resumed its cursor's lease
// and how many alerts it replayed from its cursor (a resume, or a fresh
// ticket's replay position; history=N alerts are not replays).
func (r *Recorder) Opened(purpose string, resumed bool, replayed int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.opened[purpose]++
	if resumed {
		r.total.resumesOK[purpose]++
	}
	r.total.replayed += int64(replayed)
}

// Refused counts a request answered without a stream (status as a string:
// "401", "429", SoftRefusal, ...); resume says it carried a cursor.
func (r *Recorder) Refused(purpose, status string, resume bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.total.refusals[status]++
	if resume {
		r.total.resumesRefused[purpose]++
	}
	r.mu.Unlock()
	// A refusal is a short invocation: Lambda may freeze the process right
	// after it, so its figures go out now rather than at the next tick.
	r.Flush()
}

// Delivered counts one event written to a client.
func (r *Recorder) Delivered(event string) {
	if r == nil {
		return
	}
	v, ok := r.delivered.Load(event)
	if !ok {
		v, _ = r.delivered.LoadOrStore(event, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Ended counts a finished stream, writes its EMF line, then the process
// line (the invocation is about to return).
func (r *Recorder) Ended(e End) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.total.ended[[2]string{e.Purpose, e.Reason}]++
	r.total.dropped[e.Purpose] += int64(e.Dropped)
	r.total.coalesced[e.Purpose] += int64(e.Coalesced)
	r.total.seconds[e.Purpose] += e.Seconds
	r.ttfb += e.TimeToFirstByte.Seconds()
	r.ttfbN++
	if r.emf != nil {
		r.emf.ended(r.now(), e)
	}
	r.mu.Unlock()
	r.Flush()
}

// deliveries returns the per-event totals.
func (r *Recorder) deliveries() map[string]int64 {
	out := map[string]int64{}
	r.delivered.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (r *Recorder) open() int64 {
	if r.src.OpenStreams == nil {
		return 0
	}
	return r.src.OpenStreams()
}

func (r *Recorder) malformed() int64 {
	if r.src.Malformed == nil {
		return 0
	}
	return r.src.Malformed()
}
