package stream

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/sse"
)

// session is one open stream after admission.
type session struct {
	h       *Handler
	out     out // net/http's writer or the connection taken over (out.go)
	purpose purpose.Purpose
	lease   registry.Lease
	log     *slog.Logger
	sub     *pubsub.Subscription

	end     time.Time // when the stream rotates
	devices []string  // the devices it carries (alerts: follows ownership)

	flushedAt time.Time // when send last wrote (Timing.FlushInterval)
	writeBy   time.Time // the write deadline last set
	armedAt   time.Time // when it was set (with its monotonic reading)
	armedFull bool      // it was set with the full write timeout
	seq       uint64
	written   int64 // bytes written, for Timing.MaxBytes

	// The write watchdog (watchdog.go).
	noDeadline  bool            // the writer takes no write deadline (watchedWrite)
	stalled     bool            // a write timed out: the writer is never touched again
	wrote       chan error      // result of the watched write
	watch       clockwork.Timer // bounds the watched write
	lastWriteBy time.Time       // writes end by then, so the release fits before the deadline

	// For the metrics (metrics.go).
	began     time.Time     // the request's arrival
	firstByte time.Duration // from began to the first events written
	resumed   bool          // admitted as the resume of its cursor's lease (registry.Admission)
	replays   int           // alerts sent by replay (not those of history=N)
	buf       []byte
	msgs      []*pubsub.Message
	released  bool
	// startFailed: the first events were not taken (the client left, or
	// the write failed or stalled); serve ends the stream at once.
	startFailed bool

	// mark is the alerts stream's resume watermark: the newest publisher
	// timestamp among the alerts delivered, as far as it is believed
	// (watermark.go), or the connect time. Every id on an alerts stream
	// carries it, so a resume replays exactly the alerts stamped after it.
	// It never goes back.
	mark time.Time
	// replayed holds the payloads sent by replay, so that the same alert
	// arriving live right after is not sent twice. Cleared at the first
	// heartbeat.
	replayed map[string]struct{}
	// history is how many of the newest alerts a fresh alerts stream sends
	// first (history=N).
	history int
}

// Why a stream ended (logged, and used by tests).
const (
	endClient      = "client-gone"
	endWrite       = "write-failed"
	endRotate      = "rotate"
	endSuperseded  = "superseded"
	endRevoked     = "revoked"
	endForbidden   = "forbidden"
	endUnavailable = "unavailable"
	endOverflow    = "overflow"
	endDraining    = "draining"
	endStalled     = "write-stalled"
	endBytes       = "byte-limit"
	endClosed      = "closed" // POST /sse/close
)

// Retry delays the stream announces (ms, with jitter added per connection
// so that thousands of clients never reconnect in the same second).
const (
	rotateRetryBase   = time.Second
	rotateRetryJitter = 4 * time.Second
	softRetryBase     = 5 * time.Second
	softRetryJitter   = 10 * time.Second
	writeTimeout      = 10 * time.Second // Timing.WriteTimeout's default
	renewTimeout      = 2 * time.Second
)

// start sends the headers and the first events (connected, status
// snapshots, the alert replay) and computes when the stream rotates. It
// reports whether the client took them. replay says whether cur gives the
// replay position: a resume, or a fresh ticket's cursor (resume.go).
func (s *session) start(r *http.Request, adm registry.Admission, devices []string, includeStatus bool, cur cursor, replay bool) bool {
	h := s.h
	start := h.d.Clock.Now()
	s.end = s.endTime(r.Context(), start)
	s.resumed = adm.Resumed
	s.lastWriteBy = lastWriteBy(r.Context(), start)
	s.devices = devices

	writeStreamHeader(s.out.w)

	// The watermark starts at the connect time, or where the resumed
	// stream left off; it must be set before the first id is written.
	s.mark = start
	if replay && s.purpose == purpose.Alerts {
		s.mark = believed(cur.At, start)
	}
	// The first event carries an id, so even a client that sees nothing
	// else can resume; the retry spreads network-error reconnects too.
	s.resetBuf()
	s.buf = sse.AppendRetry(s.buf, rotateRetryBase+h.d.Jitter(rotateRetryJitter))
	s.system(start, "connected")
	if includeStatus {
		for i, d := range devices {
			if i < len(adm.Statuses) && adm.Statuses[i] != "" {
				s.event(start, "machine-status", statusPayload(d, adm.Statuses[i], start))
			}
		}
	}
	if replay && s.purpose == purpose.Alerts {
		s.replay(r.Context(), devices, start)
	} else if s.history > 0 {
		s.sendHistory(r.Context(), devices, start)
	}
	if !s.flush() {
		return false
	}
	if h.conns != nil && h.conns.take(s, r) {
		s.resetBuf() // with the room for the chunk's size line
		s.deadlineCleared()
	}
	return true
}

// loop is the stream. It waits on one channel, the subscription's Ready:
// messages, every reason to stop (the client left, draining, the
// subscription's end) and its own timers (heartbeat, rotation, throttle,
// the end of a flush interval) all signal it. The timers are AfterFuncs
// that set a flag and wake the loop, not channels in a select: a select
// over timer channels locks every case and puts both timers in and out of
// the runtime's timer heap at every wake-up, once per delivery
// (docs/benchmarks.md, "the stream's hot path"). It returns why the
// stream ended.
func (s *session) loop(ctx context.Context) string {
	h := s.h
	clk := h.d.Clock
	var beatDue, rotateDue, throttleArmed atomic.Bool
	heartbeat := clk.AfterFunc(h.d.Timing.Heartbeat, func() { beatDue.Store(true); s.sub.Wake() })
	defer heartbeat.Stop()
	rotate := clk.AfterFunc(s.end.Sub(clk.Now()), func() { rotateDue.Store(true); s.sub.Wake() })
	defer rotate.Stop()
	var throttle, held clockwork.Timer
	var heldArmed atomic.Bool
	defer func() {
		for _, t := range []clockwork.Timer{throttle, held} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	// The client leaving and the drain wake the loop through Ready (no
	// goroutine: both contexts are cancelCtx), and stopped looks why.
	defer context.AfterFunc(ctx, s.sub.Wake)()
	defer context.AfterFunc(h.drain, s.sub.Wake)()

	for {
		<-s.sub.Ready()
		if reason, stop := s.stopped(ctx); stop {
			return reason
		}
		if rotateDue.Load() {
			// What is queued goes with the last event: during a flush
			// interval's hold nothing woke the loop for it.
			s.collect(clk.Now())
			return s.finish(endRotate, "reconnect", rotateRetryBase+h.d.Jitter(rotateRetryJitter))
		}
		if beatDue.Swap(false) {
			if reason, ok := s.beat(ctx); !ok {
				return reason
			}
			heartbeat.Reset(h.d.Timing.Heartbeat)
			// Ready was taken for both: what is queued goes now.
		}
		now := clk.Now()
		next, hold, reason, ok := s.send(now)
		if !ok {
			return reason
		}
		if !hold.IsZero() && !heldArmed.Load() {
			// Until the timer: messages queue without waking the loop.
			heldArmed.Store(true)
			s.sub.Hold()
			if held == nil {
				held = clk.AfterFunc(hold.Sub(now), func() { heldArmed.Store(false); s.sub.Release() })
			} else {
				held.Reset(hold.Sub(now))
			}
		}
		if !next.IsZero() && !throttleArmed.Load() {
			throttleArmed.Store(true)
			if throttle == nil {
				throttle = clk.AfterFunc(next.Sub(now), func() { throttleArmed.Store(false); s.sub.Wake() })
			} else {
				throttle.Reset(next.Sub(now))
			}
		}
	}
}

// stopped reports whether the stream must end for a reason other than its
// own timers and messages, and ends it: the client left, the process
// drains, the subscription ended (lost, evicted, closed by its client).
func (s *session) stopped(ctx context.Context) (string, bool) {
	h := s.h
	switch {
	case ctx.Err() != nil:
		return endClient, true
	case h.draining():
		s.collect(h.d.Clock.Now()) // as at a rotation (loop)
		return s.finish(endDraining, "unavailable", softRetryBase+h.d.Jitter(softRetryJitter)), true
	}
	switch s.sub.End() {
	case pubsub.ClosedByClient:
		return s.finish(endClosed, "closed", 0), true
	case pubsub.Evicted:
		s.released = true // the evicting connect already freed the slot
		return s.finish(endSuperseded, "superseded", 0), true
	case pubsub.Lost:
		return s.finish(endUnavailable, "unavailable", softRetryBase+h.d.Jitter(softRetryJitter)), true
	}
	return "", false
}

// beat renews the lease and sends a heartbeat. It returns why the stream
// ended when it must end.
func (s *session) beat(ctx context.Context) (string, bool) {
	h := s.h
	now := h.d.Clock.Now()
	if reason, kind, ok := s.renew(ctx); !ok {
		retry := time.Duration(0)
		if reason == endUnavailable {
			retry = softRetryBase + h.d.Jitter(softRetryJitter)
		}
		return s.finish(reason, kind, retry), false
	}
	s.replayed = nil
	s.system(now, "heartbeat")
	if !s.flush() {
		return s.writeEnd(), false
	}
	return "", true
}

// send writes what the queue lets go at now. next is when a held-back
// realtime update becomes due (zero if none); it returns why the stream
// ended when it must end.
//
// With Timing.FlushInterval, the events framed within the interval after
// send's last write are not written yet: hold is when they go (zero when
// nothing waits). A burst then costs two writes, not one per wake-up,
// while an event after a quiet spell goes at once. Held events are in the
// buffer, so every other write (a heartbeat, the last event) takes them
// along, and spent counts them; a buffer past maxKeptBuf goes at once.
func (s *session) send(now time.Time) (next, hold time.Time, reason string, ok bool) {
	h := s.h
	next, overflowed := s.collect(now)
	if overflowed {
		// The client reads too slowly to get everything: end, and let
		// its resume replay what it missed.
		return next, hold, s.finish(endOverflow, "reconnect", rotateRetryBase+h.d.Jitter(rotateRetryJitter)), false
	}
	if s.spent() {
		return next, hold, s.finish(endBytes, "reconnect", rotateRetryBase+h.d.Jitter(rotateRetryJitter)), false
	}
	if n := len(s.buf) - s.out.room; n > 0 {
		if due := s.flushedAt.Add(h.d.Timing.FlushInterval); now.Before(due) && n < maxKeptBuf {
			return next, due, "", true
		}
		if !s.flush() {
			return next, hold, s.writeEnd(), false
		}
		s.flushedAt = now
	}
	return next, hold, "", true
}

// collect frames what the queue lets go at now into the buffer, up to the
// byte budget; next and overflowed are Drain's.
func (s *session) collect(now time.Time) (next time.Time, overflowed bool) {
	msgs, next, overflowed := s.sub.Drain(now, s.msgs[:0])
	for _, m := range msgs {
		if s.spent() {
			// The byte budget is for what a stream writes, so a batch
			// stops at it: the rest is the next stream's (alerts are
			// replayed from its cursor, data is live only).
			break
		}
		s.deliver(m)
	}
	clear(msgs)
	s.msgs = msgs[:0]
	return next, overflowed
}

// endTime is when the stream rotates: before the invocation deadline (with
// a margin for the last write, since the platform kills at the deadline),
// or at MaxDuration, minus a random part of the rotation window so that a
// mass connect does not rotate in one wave.
func (s *session) endTime(ctx context.Context, start time.Time) time.Time {
	t := s.h.d.Timing
	limit := start.Add(t.DefaultLifetime)
	if dl, ok := ctx.Deadline(); ok {
		limit = start.Add(time.Until(dl) - t.DeadlineMargin)
	}
	if t.MaxDuration > 0 && start.Add(t.MaxDuration).Before(limit) {
		limit = start.Add(t.MaxDuration)
	}
	life := limit.Sub(start)
	if life < time.Second {
		life = time.Second
		limit = start.Add(life)
	}
	window := min(t.RotationWindow, life/4)
	return limit.Add(-s.h.d.Jitter(window))
}

// renew extends the lease at every heartbeat; it reports why the stream
// must end when it cannot. Alerts streams pick up ownership changes here.
// None starts in the last seconds before the rotation (renewDue).
func (s *session) renew(ctx context.Context) (reason, kind string, ok bool) {
	if !s.renewDue(s.h.d.Clock.Now()) {
		return "", "", true
	}
	rctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	owned, err := s.h.d.Registry.Renew(rctx, s.lease, s.h.d.Clock.Now())
	switch {
	case err == nil:
		if s.purpose == purpose.Alerts && !slices.Equal(owned, s.devices) {
			s.devices = owned
			s.sub.SetDevices(owned)
		}
		return "", "", true
	case errors.Is(err, registry.ErrSuperseded):
		s.released = true
		return endSuperseded, "superseded", false
	case errors.Is(err, registry.ErrRevoked):
		s.released = true
		return endRevoked, "revoked", false
	case errors.Is(err, registry.ErrForbidden):
		s.released = true
		return endForbidden, "forbidden", false
	case errors.Is(err, registry.ErrGone):
		return endRotate, "reconnect", false
	default:
		return endUnavailable, "unavailable", false
	}
}

// finish sends the last system event (and a retry when the client should
// come back) and ends the stream.
func (s *session) finish(reason, kind string, retry time.Duration) string {
	if retry > 0 {
		s.buf = sse.AppendRetry(s.buf, retry)
	}
	s.system(s.h.d.Clock.Now(), kind)
	s.flush()
	return reason
}

// release frees the lease (once); a superseded or revoked lease is left
// as the registry marked it. ctx is the request's: the release runs even
// once it is cancelled (the client gone), and its log line keeps its values.
func (s *session) release(ctx context.Context) {
	if s.released {
		return
	}
	s.released = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
	defer cancel()
	if err := s.h.d.Registry.Release(ctx, s.lease); err != nil {
		s.log.WarnContext(ctx, "lease release failed", "err", err.Error())
	}
}

// deliver appends one routed message, advancing the alert watermark and
// skipping an alert that replay already sent.
func (s *session) deliver(m *pubsub.Message) {
	if m.Kind.Purpose == purpose.Alerts {
		if _, dup := s.replayed[string(m.Data)]; dup {
			delete(s.replayed, string(m.Data))
			return
		}
		if st := believed(m.Stamp, m.At); st.After(s.mark) {
			s.mark = st
		}
	}
	s.framed(m.At, m.Frame)
	s.h.d.Metrics.Delivered(m.Kind.Event)
}

// event appends one event with the next cursor id.
func (s *session) event(at time.Time, name string, data []byte) {
	n := len(s.buf)
	s.appendID(at)
	out, err := sse.AppendEvent(s.buf, sse.Event{Name: name, Data: data})
	if err != nil {
		s.buf = s.buf[:n] // never a dangling id line
		return
	}
	s.buf = out
}

// framed appends a message's shared frame (pubsub.Message.Frame) after the
// next cursor id: the event is encoded once for all its streams, and only
// the id line is this stream's own.
func (s *session) framed(at time.Time, frame []byte) {
	s.appendID(at)
	s.buf = append(s.buf, frame...)
}

// appendID appends the id line of the next event. On alerts streams the id
// carries the watermark instead of the event's own time. Every event keeps
// an id of its own (see docs/benchmarks.md, "what each change bought").
func (s *session) appendID(at time.Time) {
	s.seq++
	if s.purpose == purpose.Alerts {
		at = s.mark
	}
	// The id is written directly: a cursor is [A-Za-z0-9._-] by
	// construction, so it needs no check and no string of its own.
	s.buf = append(s.buf, "id: "...)
	s.buf = appendCursor(s.buf, s.lease.ID, at, s.seq)
	s.buf = append(s.buf, '\n')
}

func (s *session) system(at time.Time, kind string) {
	s.event(at, "system", systemData(kind, at))
}

// systemData is a system event's payload: {"kind":...,"ts":...}. Kinds
// are our own constants, so no escaping is needed.
func systemData(kind string, at time.Time) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"kind":"`...)
	b = append(b, kind...)
	b = append(b, `","ts":"`...)
	b = at.UTC().AppendFormat(b, pubsub.TimeFormat)
	return append(b, `"}`...)
}

// writeStreamHeader answers 200 with the stream headers of DESIGN
// section 3.
func writeStreamHeader(w http.ResponseWriter) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Connection", "keep-alive")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

// flush writes what is buffered as one chunk. A write that fails or stalls
// past its budget (watchdog.go) ends the stream.
func (s *session) flush() bool {
	if len(s.buf) <= s.out.room {
		return true
	}
	err := s.write(s.buf)
	if !s.stalled {
		s.written += int64(len(s.buf) - s.out.room)
		s.resetBuf()
	}
	return err == nil
}

// resetBuf empties the event buffer, keeping out.room free in front of it
// for the chunk's size line of a hijacked connection.
func (s *session) resetBuf() {
	s.buf = s.buf[:0]
	if cap(s.buf) > maxKeptBuf {
		s.buf = nil // a replay's or a burst's buffer is not kept for the stream's life
	}
	if s.out.room > 0 {
		s.buf = append(s.buf, make([]byte, s.out.room)...)
	}
}

// maxKeptBuf is the largest event buffer a stream keeps between writes: a
// wake-up's events are a few hundred bytes, the first events of an alerts
// stream with history=100 can be tens of KiB.
const maxKeptBuf = 8 << 10

// statusPayload builds machine-status: {deviceId, data, source, timestamp}.
// The cached value is embedded as JSON when it is JSON, else as a string.
func statusPayload(deviceID, cached string, now time.Time) []byte {
	var data json.RawMessage
	if json.Valid([]byte(cached)) {
		data = json.RawMessage(cached)
	} else {
		data, _ = json.Marshal(cached)
	}
	b, _ := json.Marshal(struct {
		DeviceID  string          `json:"deviceId"`
		Data      json.RawMessage `json:"data"`
		Source    string          `json:"source"`
		Timestamp string          `json:"timestamp"`
	}{deviceID, data, "cache", now.UTC().Format(pubsub.TimeFormat)})
	return b
}

// refuse is the soft refusal: 200, a retry with backoff and jitter, one
// system "unavailable" event, end. Any other status would end a native
// EventSource for good.
// The caller logs why (refusal.soft).
func (h *Handler) refuse(w http.ResponseWriter) {
	writeStreamHeader(w)
	b := sse.AppendRetry(nil, softRetryBase+h.d.Jitter(softRetryJitter))
	b, _ = sse.AppendEvent(b, sse.Event{Name: "system", Data: systemData("unavailable", h.d.Clock.Now())})
	_, _ = w.Write(b)
}

// replay sends, on resume, the alerts published while the client was away:
// those in each device's history (newest first, at most ReplayLimit)
// stamped after the watermark, oldest first; one stamped more than
// StampSkew ahead of now cannot be placed and is not replayed (it was
// delivered live). The subscription is already live, so an alert published
// during the replay comes both ways: the live copy is dropped by deliver.
func (s *session) replay(ctx context.Context, devices []string, now time.Time) {
	all, err := s.readHistory(ctx, devices, s.h.d.ReplayLimit, now)
	if err != nil {
		s.log.WarnContext(ctx, "alert replay failed", "err", err.Error())
		return
	}
	out := all[:0]
	for _, m := range all {
		if m.Stamp.After(s.mark) && !m.Stamp.After(now.Add(StampSkew)) {
			out = append(out, m)
		}
	}
	s.replays = len(out)
	s.sendAlerts(out, now)
}

// sendAlerts sends alerts read from history (oldest first), remembering
// them so that their live copies are not sent twice.
func (s *session) sendAlerts(out []*pubsub.Message, now time.Time) {
	s.replayed = make(map[string]struct{}, len(out))
	for _, m := range out {
		s.replayed[string(m.Data)] = struct{}{}
		if st := believed(m.Stamp, now); st.After(s.mark) {
			s.mark = st
		}
		s.framed(now, m.Frame)
	}
}

// readHistory reads the newest perDevice entries of each device's alert
// history and returns them oldest first. Entries without a timestamp
// cannot be placed and are left out; an entry naming another device is
// ignored.
func (s *session) readHistory(ctx context.Context, devices []string, perDevice int, now time.Time) ([]*pubsub.Message, error) {
	if len(devices) == 0 || perDevice <= 0 {
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	pipe := s.h.d.Redis.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(devices))
	for i, d := range devices {
		cmds[i] = pipe.LRange(rctx, s.h.d.Keys.AlertHistory(d), 0, int64(perDevice-1))
	}
	if _, err := pipe.Exec(rctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []*pubsub.Message
	for i, d := range devices {
		for _, raw := range cmds[i].Val() {
			m, err := pubsub.Parse(channel.Alert, []byte(raw), now)
			if err != nil || m.Device != d || m.Stamp.IsZero() {
				continue
			}
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b *pubsub.Message) int { return a.Stamp.Compare(b.Stamp) })
	return out, nil
}
