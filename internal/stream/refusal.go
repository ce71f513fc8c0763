package stream

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/web"
)

// refusal answers a connect that is not admitted, and logs why exactly
// once: at info for the client's own trouble (bad parameters, ticket,
// ownership, limits, superseded, gone), at warn for the service's (Redis).
// The line names the purpose, the user once the ticket is read, the client
// IP and the reason; never the ticket, a cursor or the query.
type refusal struct {
	h       *Handler
	w       http.ResponseWriter
	r       *http.Request
	purpose purpose.Purpose
	user    string // "" until the ticket is read
}

func (f *refusal) log(level slog.Level, status int, reason string) {
	attrs := []slog.Attr{
		slog.String("purpose", string(f.purpose)), slog.Int("status", status), slog.String("reason", reason),
		slog.String("ip", web.ClientIP(f.r, f.h.d.TrustedIP)),
	}
	if f.user != "" {
		attrs = append(attrs, slog.String("user", f.user))
	}
	f.h.d.Log.LogAttrs(context.Background(), level, "stream refused", attrs...)
}

// deny answers err from the error table (web.Fail).
func (f *refusal) deny(reason string, err error) {
	f.log(slog.LevelInfo, web.Status(err), reason)
	web.Fail(f.w, f.r, f.h.d.Log, err)
}

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
