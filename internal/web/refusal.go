package web

import (
	"log/slog"
	"net/http"
)

// Refusal answers a request that is refused and logs why, exactly once:
// "<What> refused" at info for the client's own trouble, at warn for the
// service's. The line names Attrs (the stream's purpose), the status, the
// reason, the client IP and the user once known; never a ticket, a token,
// a cursor or the query, so a reason is the caller's own words, not a
// request value.
type Refusal struct {
	W      http.ResponseWriter
	R      *http.Request
	Logger *slog.Logger
	What   string // "stream", "ticket"
	IP     string
	User   string      // "" until known
	Attrs  []slog.Attr // first on the line
}

// Note logs the refusal's line.
func (f *Refusal) Note(level slog.Level, status int, reason string) {
	attrs := append(f.Attrs[:len(f.Attrs):len(f.Attrs)],
		slog.Int("status", status), slog.String("reason", reason), slog.String("ip", f.IP))
	if f.User != "" {
		attrs = append(attrs, slog.String("user", f.User))
	}
	f.Logger.LogAttrs(f.R.Context(), level, f.What+" refused", attrs...)
}

// Deny logs the refusal at info and answers err from the error table.
func (f *Refusal) Deny(reason string, err error) {
	f.Note(slog.LevelInfo, Status(err), reason)
	Fail(f.W, f.R, f.Logger, err)
}

// Refuse answers err where it may be the client's trouble or the
// service's: a 4xx as Deny does, a 5xx through Fail alone, which logs it
// as the error it is ("request failed").
func (f *Refusal) Refuse(reason string, err error) {
	if Status(err) >= 500 {
		Fail(f.W, f.R, f.Logger, err)
		return
	}
	f.Deny(reason, err)
}
