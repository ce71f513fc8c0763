package stream

import (
	"net/http"
	"strconv"
	"time"

	"github.com/machinedash/sse/internal/metrics"
	"github.com/machinedash/sse/internal/purpose"
)

// statusWriter remembers the status a request was answered with, so that
// a request answered without a stream is counted by its status. Unwrap
// lets http.ResponseController reach the writer's own Flush and deadline.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// resumeAsked reports whether the request came back with a cursor (the
// header or the query parameter, as lastEventID reads it).
func resumeAsked(r *http.Request) bool { return lastEventID(r.Header, r.URL.Query()) != "" }

// countRefusal counts a request answered without a stream. A 200 without
// a stream is the soft refusal.
func (h *Handler) countRefusal(w *statusWriter, r *http.Request, p purpose.Purpose) {
	status := strconv.Itoa(w.status)
	if w.status == http.StatusOK {
		status = metrics.SoftRefusal
	}
	h.d.Metrics.Refused(string(p), status, resumeAsked(r))
}

// countOpen counts an admitted stream once its first events are written.
func (h *Handler) countOpen(s *session, began time.Time) {
	s.began, s.firstByte = began, h.d.Clock.Now().Sub(began)
	h.d.Metrics.Opened(string(s.purpose), s.resumed, s.replays)
}

// countEnd counts a finished stream; it runs after the release, so the
// open-stream gauge of its line no longer counts it.
func (h *Handler) countEnd(s *session, reason string) {
	qs := s.sub.QueueStats()
	h.d.Metrics.Ended(metrics.End{
		Purpose: string(s.purpose), Reason: reason, Seconds: h.d.Clock.Now().Sub(s.began).Seconds(),
		TimeToFirstByte: s.firstByte, Dropped: qs.Dropped, Coalesced: qs.Coalesced, Events: s.seq,
	})
}
