// Package api serves the small endpoints: POST /sse/stream-ticket,
// GET /sse/status and GET /health.
//
// Invariants: every error is the seed's JSON body with one of our
// messages; a token or ticket never appears in a response other than the
// ticket issued, nor in a log line; bodies are size-limited before reading.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
	"github.com/machinedash/sse/internal/web"
)

// maxBody bounds the ticket request body.
const maxBody = 4 << 10

// Ticket serves POST /sse/stream-ticket. Each 4xx leaves one "ticket
// refused" line (web.Refusal), with the client IP read as trustedIP says.
func Ticket(v *access.Verifier, tickets *ticket.Service, log *slog.Logger, trustedIP string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !web.Method(w, r, http.MethodPost) {
			return
		}
		f := &web.Refusal{W: w, R: r, Logger: log, What: "ticket", IP: web.ClientIP(r, trustedIP)}
		tok, err := access.BearerToken(r.Header.Get("Authorization"))
		if err != nil {
			f.Deny("no access token", err)
			return
		}
		user, err := v.UserID(tok)
		if err != nil {
			f.Deny("invalid access token", err)
			return
		}
		f.User = user
		var body struct {
			TTLSeconds json.RawMessage `json:"ttlSeconds"`
			Purpose    json.RawMessage `json:"purpose"`
		}
		raw, err := web.ReadBody(w, r, maxBody)
		if err != nil {
			f.Deny("body too large", err)
			return
		}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				f.Deny("body not a JSON object", web.WithMessage(web.ErrBadRequest, "Request body must be a JSON object"))
				return
			}
		}
		ttl, err := ticket.ParseTTL(body.TTLSeconds)
		if err != nil {
			f.Deny("ttlSeconds", ticket.ErrBadTTL)
			return
		}
		p, err := parsePurpose(body.Purpose)
		if err != nil {
			f.Deny("purpose", ticket.ErrBadPurpose)
			return
		}
		token, c, err := tickets.Issue(r.Context(), user, p, ttl)
		switch {
		case errors.Is(err, ticket.ErrRateLimited):
			f.Deny("rate limit", err)
			return
		case err != nil:
			web.Fail(w, r, log, web.Unavailable(err))
			return
		}
		log.InfoContext(r.Context(), "ticket issued", slog.String("user", user), slog.String("purpose", p.Name()), slog.Int("ttl", int(ttl/time.Second)))
		web.JSON(w, http.StatusOK, map[string]any{
			"ticket":           token,
			"expiresInSeconds": int(ttl / time.Second),
			"ticketId":         c.ID,
		})
	})
}

// parsePurpose reads the body's purpose: absent or null is purpose.Any;
// a value must be "alerts" or "data" (an empty string is not absent).
func parsePurpose(raw json.RawMessage) (purpose.Purpose, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return purpose.Any, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return "", ticket.ErrBadPurpose
	}
	p, ok := purpose.Parse(s)
	if !ok {
		return "", ticket.ErrBadPurpose
	}
	return p, nil
}

// Status serves GET /sse/status?ticket=: the ticket's user, purpose and
// the user's open streams, read from the registry (every invocation's).
// Each 4xx leaves one "status refused" line (web.Refusal), with the client
// IP read as trustedIP says.
func Status(tickets *ticket.Service, reg *registry.Registry, now func() time.Time, log *slog.Logger, trustedIP string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !web.Method(w, r, http.MethodGet) {
			return
		}
		f := &web.Refusal{W: w, R: r, Logger: log, What: "status", IP: web.ClientIP(r, trustedIP)}
		raw := r.URL.Query().Get("ticket")
		if raw == "" {
			f.Deny("no ticket", ticket.ErrMissing)
			return
		}
		c, err := tickets.Verify(r.Context(), raw)
		if err != nil {
			// Invalid, expired and revoked are 401; Redis failing is 503.
			f.Refuse("invalid ticket", web.Unavailable(err))
			return
		}
		t := now()
		counts, conns, err := reg.List(r.Context(), c.UserID, t)
		if err != nil {
			web.Fail(w, r, log, web.Unavailable(fmt.Errorf("status: registry read: %w", err)))
			return
		}
		type active struct {
			ID          string          `json:"id"`
			Purpose     purpose.Purpose `json:"purpose"`
			DeviceCount int             `json:"deviceCount"`
			Devices     []string        `json:"devices"`
			ConnectedAt string          `json:"connectedAt"`
			Uptime      int64           `json:"uptime"`
		}
		list := make([]active, 0, len(conns))
		for _, c := range conns {
			list = append(list, active{c.ID, c.Purpose, c.DeviceCount, c.Devices, c.ConnectedAt.UTC().Format(pubsub.TimeFormat), c.Uptime})
		}
		limits := reg.Limits()
		web.JSON(w, http.StatusOK, map[string]any{
			"userId":            userIDValue(c.UserID),
			"ticketPurpose":     c.Purpose.Name(),
			"connections":       counts,
			"limits":            map[string]int{"alerts": limits.Alerts, "data": limits.Data},
			"activeConnections": list,
		})
	})
}

// userIDValue renders a numeric user id as a JSON number, as the NestJS
// backend did ("userId": 1), and any other id as a string.
func userIDValue(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
		return n
	}
	return id
}

// Health serves GET /health: 200 {status:"ok", redis:"up",
// malformedMessages} or 503. malformedMessages is the shared counter at
// countKey: channel messages dropped as malformed, summed over processes.
func Health(rdb redis.Cmdable, countKey string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var count *redis.StringCmd
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Ping(ctx)
			count = p.Get(ctx, countKey)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			web.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "error", "redis": "down"})
			return
		}
		n, _ := count.Int64()
		web.JSON(w, http.StatusOK, map[string]any{"status": "ok", "redis": "up", "malformedMessages": n})
	})
}
