package stream

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"
)

// How a stream keeps its end in its own hands, whatever the writer under
// it supports:
//
//   - A write that does not return within Timing.WriteTimeout ends the
//     stream. The local server's connection (out.go) and the stream
//     function's writer (urlfn.Streaming) take a write deadline; on a
//     writer that does not (http.ErrNotSupported: lambdaurl's,
//     httptest's recorder, a wrapper without Unwrap) the write runs on a
//     goroutine of its own, watched by a timer of the injected clock. A
//     stalled write is abandoned, not interrupted: nothing touches the
//     writer again, the lease is released and the end is logged at once,
//     and the invocation itself finishes when the platform takes the bytes
//     or at its deadline.
//   - Near the invocation deadline every write is bounded by what is left
//     before the lease release must start (lastWriteBy), and no renewal
//     starts within renewTimeout of the rotation, so a slow Redis cannot
//     push the end past the deadline margin.
//   - A stream that has written Timing.MaxBytes rotates like at its time
//     limit: the first 6 MB of a streamed response go at full speed, the
//     rest at 2 MB/s (and billed).

// errStalled is what a write that timed out returns.
var errStalled = errors.New("stream: write stalled")

// minWriteBudget is the least time a write gets, even past lastWriteBy: the
// margin's slack absorbs it.
const minWriteBudget = 100 * time.Millisecond

// write sends p (and flushes) within the write budget. After a stall it
// fails at once: the abandoned write may still be reading its buffer.
func (s *session) write(p []byte) error {
	if s.stalled {
		return errStalled
	}
	budget := s.writeBudget()
	if !s.noDeadline {
		// Moving the deadline on every write costs a timer update per
		// event; moving it once it is half used keeps a stalled write
		// bounded all the same. Near the end the budget shrinks, and the
		// deadline moves with it.
		if wt := s.h.d.Timing.WriteTimeout; !s.deadlineFresh(budget, wt) {
			now := time.Now()
			if by := now.Add(budget); by.Before(s.writeBy) || now.After(s.writeBy.Add(-wt/2)) {
				if err := s.out.setWriteDeadline(by); errors.Is(err, http.ErrNotSupported) {
					s.noDeadline = true
				} else {
					s.writeBy, s.armedAt, s.armedFull = by, now, budget == wt
				}
			}
		}
		if !s.noDeadline {
			// A write past its deadline stalled as surely as an abandoned
			// one: the end says so (write-stalled, not write-failed).
			err := s.out.write(p)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.stalled = true
				return errStalled
			}
			return err
		}
	}
	return s.watchedWrite(p, budget)
}

// deadlineCleared makes the next write set its deadline again: the
// writer's was cleared (the hijack, out.go).
func (s *session) deadlineCleared() {
	s.writeBy, s.armedAt, s.armedFull = time.Time{}, time.Time{}, false
}

// deadlineFresh reports what the test in write would find when the
// deadline was set with the full budget wt less than half of it ago: no
// move. It reads the monotonic clock once, where time.Now reads two clocks
// (a clock read is a measurable part of a delivery: BenchmarkDeliver).
func (s *session) deadlineFresh(budget, wt time.Duration) bool {
	return budget == wt && s.armedFull && time.Since(s.armedAt) <= wt/2
}

// watchedWrite runs the write on its own goroutine and gives up on it
// after budget. The result channel has room for one, so an abandoned write
// that returns late never blocks its goroutine.
func (s *session) watchedWrite(p []byte, budget time.Duration) error {
	if s.wrote == nil {
		s.wrote = make(chan error, 1)
		s.watch = s.h.d.Clock.NewTimer(budget)
	} else {
		// The timer may have fired as the previous write returned, after
		// the select took the write: its tick is still in the channel
		// (clockwork's fake timer buffers one and Reset does not take it
		// out) and would end this write at once as stalled. The timer is
		// stopped here, so nothing can arrive between the drain and Reset.
		select {
		case <-s.watch.Chan():
		default:
		}
		s.watch.Reset(budget)
	}
	go func() { s.wrote <- s.out.write(p) }()
	select {
	case err := <-s.wrote:
		s.watch.Stop()
		return err
	case <-s.watch.Chan():
		s.stalled = true
		s.buf = nil // the abandoned write still holds the old one
		return errStalled
	}
}

// writeBudget is Timing.WriteTimeout, or less when the invocation
// deadline is near.
func (s *session) writeBudget() time.Duration {
	wt := s.h.d.Timing.WriteTimeout
	if s.lastWriteBy.IsZero() {
		return wt
	}
	left := s.lastWriteBy.Sub(s.h.d.Clock.Now())
	return max(min(wt, left), minWriteBudget)
}

// lastWriteBy is the time by which every write must be over so that the
// lease release still fits before the invocation deadline; zero without a
// deadline.
func lastWriteBy(ctx context.Context, now time.Time) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	return now.Add(time.Until(dl) - renewTimeout - deadlineSlack)
}

// deadlineSlack is kept beyond the release for the process's own last
// steps (the end log line and metrics, returning the response).
const deadlineSlack = time.Second

// renewDue reports whether a heartbeat should renew the lease: not in the
// last renewTimeout before the rotation, where a slow renewal would delay
// the end (the lease outlives the stream by far anyway).
func (s *session) renewDue(now time.Time) bool {
	return s.end.Sub(now) >= renewTimeout
}

// spent reports whether the stream has written its byte budget, counting
// what is buffered for the next write.
func (s *session) spent() bool {
	max := s.h.d.Timing.MaxBytes
	return max > 0 && s.written+int64(len(s.buf)-s.out.room) >= max
}

// writeEnd is why a stream whose write failed ended.
func (s *session) writeEnd() string {
	if s.stalled {
		return endStalled
	}
	return endWrite
}

// stopWatch stops the watchdog's timer when the stream ends.
func (s *session) stopWatch() {
	if s.watch != nil {
		s.watch.Stop()
	}
}
