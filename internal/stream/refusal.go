package stream

import (
	"log/slog"
	"net/http"

	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/web"
)

// refusal answers a connect that is not admitted, and logs why exactly
// once (web.Refusal's line, "stream refused"): at info for the client's
// own trouble (bad parameters, ticket, ownership, limits, superseded,
// gone), at warn for the service's (Redis). The line names the purpose,
// the user once the ticket is read, the client IP and the reason.
type refusal struct {
	h       *Handler
	w       http.ResponseWriter
	r       *http.Request
	purpose purpose.Purpose
	user    string // "" until the ticket is read
}

func (f *refusal) line() *web.Refusal {
	return &web.Refusal{
		W: f.w, R: f.r, Logger: f.h.d.Log, What: "stream",
		IP: web.ClientIP(f.r, f.h.d.TrustedIP), User: f.user,
		Attrs: []slog.Attr{slog.String("purpose", string(f.purpose))},
	}
}

func (f *refusal) log(level slog.Level, status int, reason string) {
	f.line().Note(level, status, reason)
}

// deny answers err from the error table (web.Fail).
func (f *refusal) deny(reason string, err error) { f.line().Deny(reason, err) }

// superseded answers 204, which ends a native EventSource for good.
func (f *refusal) superseded(reason string) {
	f.log(slog.LevelInfo, http.StatusNoContent, reason)
	f.w.WriteHeader(http.StatusNoContent)
}

// soft is the soft refusal (200, retry, "unavailable"). A client that has
// already gone is its own trouble, not the service's.
func (f *refusal) soft(reason string) {
	level := slog.LevelWarn
	if f.r.Context().Err() != nil {
		level, reason = slog.LevelInfo, reason+" (client gone)"
	}
	f.log(level, http.StatusOK, reason)
	f.h.refuse(f.w)
}
