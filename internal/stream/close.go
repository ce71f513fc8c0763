package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
	"github.com/machinedash/sse/internal/web"
)

// Close serves POST /sse/close?ticket=<the stream's ticket>, body the
// stream's last event id as text/plain (what navigator.sendBeacon sends
// without a CORS preflight). Lambda never learns that a browser left, so a
// page that goes away or pauses says so: the lease is freed at once and
// the stream, in whichever process serves it, ends within a second. Only
// the stream's own user and ticket (expired or not, as for a resume) may
// close it; a revoked ticket (its record or the user's generation) is 401,
// as at connect; a forged, foreign or ended id is refused with one answer and
// ends nothing. The cursor stays resumable for the resume window. Each 4xx
// leaves one "close refused" line (web.Refusal).
func (h *Handler) Close() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !web.Method(w, r, http.MethodPost) {
			return
		}
		f := &web.Refusal{W: w, R: r, Logger: h.d.Log, What: "close", IP: web.ClientIP(r, h.d.TrustedIP)}
		raw := r.URL.Query().Get("ticket")
		if raw == "" {
			f.Deny("no ticket", ticket.ErrMissing)
			return
		}
		claims, err := h.d.Tickets.Parse(raw)
		if err != nil && !errors.Is(err, ticket.ErrExpired) {
			f.Deny("invalid ticket", err)
			return
		}
		f.User = claims.UserID
		body, err := web.ReadBody(w, r, 256)
		cur, ok := parseCursor(strings.TrimSpace(string(body)))
		if err != nil || !ok {
			f.Deny("body not a stream id", web.WithMessage(web.ErrBadRequest, "The body must be the stream's last event id"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.d.Timing.ConnectTimeout)
		defer cancel()
		err = h.d.Registry.Close(ctx, cur.Lease, claims.UserID, h.d.Tickets.Key(claims.ID), claims.ID, claims.Generation)
		if err != nil {
			// Revoked is 401 and a foreign or ended id 404; Redis failing is 503.
			reason := "no such live stream"
			if errors.Is(err, registry.ErrRevoked) {
				reason = "revoked ticket"
			}
			f.Refuse(reason, web.Unavailable(fmt.Errorf("stream close: %w", err)))
			return
		}
		h.d.Log.InfoContext(ctx, "stream close requested", slog.String("user", claims.UserID))
		if err := h.d.Hub.CloseStream(ctx, cur.Lease); err != nil {
			// The lease is freed already; the stream ends at its next
			// heartbeat, when its renewal finds it gone.
			h.d.Log.WarnContext(ctx, "close notice failed", slog.String("err", err.Error()))
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
