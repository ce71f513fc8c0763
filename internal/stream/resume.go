package stream

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/machinedash/sse/internal/purpose"
)

// MaxHistory bounds history=N on /sse/alerts: the alert history keeps at
// most 100 entries per device.
const MaxHistory = 100

const msgHistory = "history must be an integer from 0 to 100"

// lastEventID is the client's resume cursor: the Last-Event-ID header (a
// native EventSource's reconnect) or, for a client that reopens a stream
// itself and cannot always set headers, the lastEventId query parameter.
// The header wins when both are sent.
func lastEventID(h http.Header, q url.Values) string {
	if v := h.Get("Last-Event-ID"); v != "" {
		return v
	}
	return q.Get("lastEventId")
}

// parseHistory reads history=N (default 0).
func parseHistory(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > MaxHistory || v[0] == '+' {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// position decides whether a cursor that no longer resumes its lease (its
// ticket was replaced by a fresh one, or its lease record is gone) still
// gives the replay position of a new alerts stream. A lease record that is
// still there must be the same user's alerts stream; once it is gone the
// position cannot be tied to a user, and is taken as it is: it only
// selects among the alerts of the devices this user owns now (admission
// checked them), so it reveals nothing that history=100 would not. A
// position in the future is brought back to now.
func (h *Handler) position(ctx context.Context, cur *cursor, userID string, now time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	user, p, found, err := h.d.Registry.Owner(ctx, cur.Lease)
	if err != nil {
		h.d.Log.WarnContext(ctx, "cursor lookup failed", slog.String("err", err.Error()))
		return false
	}
	if found && (user != userID || p != purpose.Alerts) {
		return false
	}
	if cur.At.After(now) {
		cur.At = now
	}
	return true
}

// sendHistory sends a fresh alerts stream's first alerts: the newest
// s.history of all the user's devices together, oldest first.
func (s *session) sendHistory(ctx context.Context, devices []string, now time.Time) {
	all, err := s.readHistory(ctx, devices, s.history, now)
	if err != nil {
		s.log.WarnContext(ctx, "alert history failed", "err", err.Error())
		return
	}
	if len(all) > s.history {
		all = all[len(all)-s.history:]
	}
	s.sendAlerts(all, now)
}
