// Package stream serves the two SSE endpoints, GET /sse/alerts and
// GET /sse/stream.
//
// Invariants: every check (ticket, purpose, devices, ownership, limits,
// Redis subscription) is decided before the first byte, so a client sees
// either a seed error body or a 200 event stream; after the first byte a
// failure only ends the stream. Transient trouble (Redis down, draining)
// is a soft refusal: 200, retry:, one system "unavailable" event, end, so
// a native EventSource keeps trying. Tickets and cursors never reach logs.
package stream

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/device"
	"github.com/machinedash/sse/internal/metrics"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
	"github.com/machinedash/sse/internal/web"
)

// Tickets is what the handler needs of the ticket service.
type Tickets interface {
	// Parse verifies a ticket's signature and claims without Redis. An
	// expired ticket returns its claims with ticket.ErrExpired.
	Parse(token string) (ticket.Claims, error)
	// Key is the Redis key of a ticket's record.
	Key(id string) string
}

// Timing of a stream; zero values take the defaults noted.
type Timing struct {
	Heartbeat      time.Duration // HEARTBEAT_INTERVAL
	RealtimeMin    time.Duration // REALTIME_MIN_INTERVAL
	MaxDuration    time.Duration // STREAM_MAX_DURATION / -max-stream; 0: deadline only
	RotationWindow time.Duration // jitter window before the end
	// DeadlineMargin is kept free before the invocation deadline for the
	// last write, the lease release and a second of slack: the platform
	// kills at the deadline (see watchdog.go).
	DeadlineMargin time.Duration // default 4s
	// MaxBytes rotates a stream once it has written this much; 0: no limit.
	MaxBytes int64 // STREAM_MAX_BYTES
	// DefaultLifetime applies when the request has no deadline and no
	// MaxDuration is set (the local server): as Lambda's 15 minutes.
	DefaultLifetime time.Duration // default 15m
	ConnectTimeout  time.Duration // Redis work before the first byte; default 3s
	// WriteTimeout ends a stream whose write has not returned by then
	// (write-stalled); default 10s.
	WriteTimeout time.Duration
	// FlushInterval is the least time between two writes of a stream's
	// events: what comes after a quiet spell goes at once, what follows
	// within the interval waits and goes with one write at its end
	// (session.send). 0: every wake-up writes.
	FlushInterval time.Duration // STREAM_FLUSH_INTERVAL
}

// Deps are the handler's collaborators.
type Deps struct {
	Tickets     Tickets
	Registry    *registry.Registry
	Hub         *pubsub.Hub
	Redis       redis.Cmdable // history reads, the malformed count
	Keys        config.Keys
	MaxDevices  int
	QueueSize   int // per-stream FIFO bound; default 256
	Timing      Timing
	TrustedIP   string // TRUSTED_CLIENT_IP_HEADER
	Log         *slog.Logger
	Clock       clockwork.Clock
	Jitter      func(max time.Duration) time.Duration // default uniform [0,max)
	ReplayLimit int                                   // alerts replayed per device at most; default 100
	Metrics     *metrics.Recorder                     // nil: not counted
}

// Handler serves both stream endpoints.
type Handler struct {
	d Deps
	// drain is cancelled by Drain: connects are refused and every open
	// stream wakes (context.AfterFunc in its loop) and ends.
	drain   context.Context
	drained context.CancelFunc
	streams atomic.Int64
	conns   conns // nil unless TakeConns: streams stay on net/http's writer (out.go)
	openers *openers
}

// New returns a handler with defaults filled in.
func New(d Deps) *Handler {
	t := &d.Timing
	if t.Heartbeat <= 0 {
		t.Heartbeat = config.DefaultHeartbeatInterval
	}
	if t.DeadlineMargin <= 0 {
		t.DeadlineMargin = time.Second + renewTimeout + deadlineSlack
	}
	if t.DefaultLifetime <= 0 {
		t.DefaultLifetime = 15 * time.Minute
	}
	if t.ConnectTimeout <= 0 {
		t.ConnectTimeout = 3 * time.Second
	}
	if t.WriteTimeout <= 0 {
		t.WriteTimeout = writeTimeout
	}
	if d.QueueSize <= 0 {
		d.QueueSize = 256
	}
	if d.ReplayLimit <= 0 {
		d.ReplayLimit = 100
	}
	if d.Clock == nil {
		d.Clock = clockwork.NewRealClock()
	}
	if d.Jitter == nil {
		d.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{d: d, openers: newOpeners()}
	h.drain, h.drained = context.WithCancel(context.Background())
	return h
}

// Alerts serves GET /sse/alerts.
func (h *Handler) Alerts() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, purpose.Alerts) })
}

// Data serves GET /sse/stream.
func (h *Handler) Data() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, purpose.Data) })
}

// Drain makes new connects refuse softly and open streams end at once
// with a retry, for a graceful shutdown.
func (h *Handler) Drain() { h.drained() }

func (h *Handler) draining() bool { return h.drain.Err() != nil }

// Open returns the number of streams being served now.
func (h *Handler) Open() int64 { return h.streams.Load() }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, p purpose.Purpose) {
	// Admission and the stream's first bytes run on another goroutine, an
	// opener (openers.go): their deep call paths (JWT, the Lua reply, JSON,
	// replay) would otherwise grow this goroutine's stack, which the
	// long-lived stream loop then keeps (measured: 38 -> 30 KiB per idle
	// stream). The hand-off through the channel orders every use of w; a
	// panic is carried back, so the panic guard around this handler still
	// sees it.
	type result struct {
		s     *session
		panic any
	}
	began := h.d.Clock.Now()
	// Before the first bytes: a message the client's first events let it
	// trigger could otherwise be counted before this is read.
	malformed := h.d.Hub.Stats().Malformed
	sw := &statusWriter{ResponseWriter: w}
	opened := make(chan result, 1)
	h.openers.run(func() {
		defer func() {
			if v := recover(); v != nil {
				opened <- result{panic: v}
			}
		}()
		opened <- result{s: h.open(sw, r, p)}
	})
	res := <-opened
	if res.panic != nil {
		panic(res.panic)
	}
	s := res.s
	if s == nil {
		h.countRefusal(sw, r, p)
		return
	}
	h.countOpen(s, began)
	h.streams.Add(1)
	if s.out.raw == nil {
		h.run(r.Context(), s, malformed)
		return
	}
	// Taken over (out.go): the stream goes on by itself, and returning
	// frees net/http's goroutine and buffers of this connection.
	h.conns.serve(s, malformed)
}

// run serves an admitted stream whose first events are written until it
// ends, and frees what it held. ctx ends when the client leaves.
func (h *Handler) run(ctx context.Context, s *session, malformed int64) {
	var reason string
	defer func() { h.countEnd(s, reason) }() // last: after the release
	// After the release: the deadline margin (Timing.DeadlineMargin) has
	// room for the last write and the release, not for this too.
	defer h.reportMalformed(ctx)
	defer s.sub.Close()
	defer s.release(ctx)
	defer s.stopWatch()
	defer h.streams.Add(-1)
	switch {
	case !s.startFailed:
		reason = s.loop(ctx)
	case ctx.Err() != nil:
		reason = endClient
	default:
		reason = s.writeEnd()
	}
	qs := s.sub.QueueStats()
	malformed = h.d.Hub.Stats().Malformed - malformed
	s.log.InfoContext(ctx, "stream end", slog.String("reason", reason), slog.Int64("events", int64(s.seq)),
		slog.Int("dropped", qs.Dropped), slog.Int("coalesced", qs.Coalesced), slog.Int64("malformed", malformed))
}

// reportMalformed adds what this process's subscription dropped as
// malformed to the shared counter that /health shows; what it cannot add
// goes back to the hub, for the next stream end to report.
func (h *Handler) reportMalformed(ctx context.Context) {
	n := h.d.Hub.TakeMalformed()
	if n == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
	defer cancel()
	if err := h.d.Redis.IncrBy(rctx, h.d.Keys.MalformedCount(), n).Err(); err != nil {
		h.d.Hub.UntakeMalformed(n)
		h.d.Log.WarnContext(ctx, "malformed count not reported", slog.String("err", err.Error()))
	}
}

// open admits a stream and sends its first events. It returns nil when
// the request was answered otherwise (an error, a soft refusal). A stream
// whose first events the client did not take is returned with startFailed:
// 200 is written, so it is a stream that ended, not a refusal.
func (h *Handler) open(w http.ResponseWriter, r *http.Request, p purpose.Purpose) *session {
	if !web.Method(w, r, http.MethodGet) {
		return nil
	}
	f := &refusal{h: h, w: w, r: r, purpose: p}
	c, ok := h.parseConnect(f)
	if !ok {
		return nil
	}
	if h.draining() {
		f.soft("draining")
		return nil
	}
	now := h.d.Clock.Now()
	s := h.newSession(w, r, p, c)
	// Before the admission: whether the hub hears this lease's eviction
	// notices from here on decides whether join must read the lease back.
	epoch := h.d.Hub.Epoch()
	adm, ok := h.admit(f, s, c, now)
	if !ok {
		return nil
	}
	devices := c.devices
	if p == purpose.Alerts {
		devices = adm.Owned
	}
	if !h.join(f, s, devices, epoch) {
		return nil
	}
	s.log.InfoContext(r.Context(), "stream open", slog.Int("devices", len(devices)), slog.Bool("resumed", adm.Resumed), slog.String("path", web.RedactQuery(r.URL.Path, c.query)))
	replay := c.hasCursor && (adm.Resumed || !c.expired && p == purpose.Alerts && h.position(r.Context(), &c.cur, c.claims.UserID, now))
	s.startFailed = !s.start(r, adm, devices, c.includeStatus, c.cur, replay)
	return s
}

// connect is a stream request's parameters, checked.
type connect struct {
	query         url.Values // the request's, parsed once per connect
	claims        ticket.Claims
	expired       bool // the ticket expired: only a resume (its cursor) may use it
	cur           cursor
	hasCursor     bool
	devices       []string // data streams: the devices asked for
	includeStatus bool     // data streams: send the cached statuses first
	history       int      // alerts streams: history=N
}

// parseConnect reads and checks the ticket and the query, answering the
// request itself when they do not make a stream. The ticket comes first:
// who may not connect at all learns nothing more.
func (h *Handler) parseConnect(f *refusal) (c connect, ok bool) {
	q := f.r.URL.Query()
	c.query = q
	raw := q.Get("ticket")
	if raw == "" {
		f.deny("no ticket", ticket.ErrMissing)
		return c, false
	}
	claims, err := h.d.Tickets.Parse(raw)
	c.claims, c.expired = claims, errors.Is(err, ticket.ErrExpired)
	if err != nil && !c.expired {
		f.deny("invalid ticket", err)
		return c, false
	}
	f.user = claims.UserID
	if !claims.Purpose.Allows(f.purpose) {
		f.deny("ticket purpose", ticket.ErrWrongPurpose)
		return c, false
	}
	c.cur, c.hasCursor = parseCursor(lastEventID(f.r.Header, q))
	if c.expired && !c.hasCursor {
		f.deny("expired ticket without cursor", ticket.ErrExpired)
		return c, false
	}
	if f.purpose == purpose.Data {
		if c.devices, err = device.ParseQuery(q.Get("deviceId"), q.Get("deviceIds"), h.d.MaxDevices); err != nil {
			f.deny("devices: "+err.Error(), &web.Error{Err: err, Args: []any{h.d.MaxDevices}})
			return c, false
		}
		if c.includeStatus, err = parseBool(q.Get("includeStatus"), true); err != nil {
			f.deny("includeStatus", web.WithMessage(web.ErrBadRequest, "includeStatus must be true or false"))
			return c, false
		}
	}
	if f.purpose == purpose.Alerts {
		if c.history, err = parseHistory(q.Get("history")); err != nil {
			f.deny("history", web.WithMessage(web.ErrBadRequest, msgHistory))
			return c, false
		}
	}
	return c, true
}

// newSession is the stream of an accepted request, with its lease to be.
func (h *Handler) newSession(w http.ResponseWriter, r *http.Request, p purpose.Purpose, c connect) *session {
	return &session{
		h: h, out: httpOut(w), purpose: p,
		lease: registry.Lease{
			ID: newLeaseID(), UserID: c.claims.UserID, Purpose: p,
			IP: web.ClientIP(r, h.d.TrustedIP), TicketKey: h.d.Tickets.Key(c.claims.ID), Devices: c.devices,
		},
		log:     h.d.Log.With(slog.String("purpose", string(p)), slog.String("user", c.claims.UserID)),
		history: c.history,
	}
}

// admit takes the stream's lease in Redis (limits, ownership, revocation,
// resume: registry.Connect) and tells the streams it replaces to end. It
// answers the request itself when the stream is not admitted.
func (h *Handler) admit(f *refusal, s *session, c connect, now time.Time) (registry.Admission, bool) {
	req := registry.Request{
		ID: s.lease.ID, UserID: c.claims.UserID, Purpose: s.purpose, Devices: c.devices, IP: s.lease.IP,
		TicketKey: s.lease.TicketKey, TicketID: c.claims.ID, NeedResume: c.expired, ConnectedAt: now, Generation: c.claims.Generation,
	}
	if c.hasCursor {
		req.ResumeID = c.cur.Lease
	}
	if c.includeStatus {
		for _, d := range c.devices {
			req.StatusKeys = append(req.StatusKeys, h.d.Keys.Status(d))
		}
	}
	ctx, cancel := context.WithTimeout(f.r.Context(), h.d.Timing.ConnectTimeout)
	adm, err := h.d.Registry.Connect(ctx, req, now)
	cancel()
	if err != nil {
		h.admissionError(f, err, adm)
		return adm, false
	}
	h.notifyEvicted(f.r.Context(), adm.Evicted)
	if adm.Resumed {
		// The same browser came back while its old invocation may still be
		// running (Lambda never learns that a client left): end that one
		// now instead of at its next heartbeat, so it stops being billed.
		h.notifyEvicted(f.r.Context(), []string{req.ResumeID})
	}
	return adm, true
}

// join subscribes the admitted stream to the hub. It answers the request
// itself (and frees the lease when it is still the stream's) when the
// stream cannot join.
func (h *Handler) join(f *refusal, s *session, devices []string, epoch pubsub.Epoch) bool {
	ctx, cancel := context.WithTimeout(f.r.Context(), h.d.Timing.ConnectTimeout)
	defer cancel()
	sub, err := h.d.Hub.Subscribe(ctx, s.lease.ID, pubsub.Filter{Devices: devices, Purpose: s.purpose},
		pubsub.QueueLimits{Capacity: h.d.QueueSize, Realtime: h.d.Timing.RealtimeMin})
	superseded := false
	if err == nil {
		// A newer connect that evicted this lease after its admission
		// published a notice. When the hub's connection was listening
		// before the admission and still is (HeardSince), the hub has that
		// notice, from before this stream joined (remembered) or from
		// while it joined (sub ended). Otherwise (a fresh or reset
		// connection) the notice may have reached no one, and the lease
		// tells.
		superseded = sub.End() == pubsub.Evicted
		if !superseded && !sub.HeardSince(epoch) {
			superseded, err = h.d.Registry.Superseded(ctx, s.lease.ID)
		}
		if err != nil || superseded {
			sub.Close()
		}
	}
	if superseded {
		f.superseded("superseded while joining") // as its own reconnect would be
		return false
	}
	if err != nil {
		s.release(f.r.Context())
		f.soft("subscribe")
		return false
	}
	s.sub = sub
	return true
}

func (h *Handler) admissionError(f *refusal, err error, adm registry.Admission) {
	limits := h.d.Registry.Limits()
	switch {
	case errors.Is(err, registry.ErrRevoked):
		f.deny("ticket revoked", err)
	case errors.Is(err, registry.ErrBadCursor):
		f.deny("resume cursor not valid", err)
	case errors.Is(err, registry.ErrForbidden):
		f.deny("device not owned", err)
	case errors.Is(err, registry.ErrSuperseded):
		// 204 ends a native EventSource for good: a superseded tab must
		// not come back and evict its successor.
		f.superseded("superseded")
	case errors.Is(err, registry.ErrUserLimit), errors.Is(err, registry.ErrIPLimit):
		reason, which := "ip limit", "Data"
		if errors.Is(err, registry.ErrUserLimit) {
			reason = "user limit"
		}
		if f.purpose == purpose.Alerts {
			which = "Alerts" // the user limit's message names the stream
		}
		f.deny(reason, &web.Error{Err: err, Args: []any{which}, Fields: map[string]any{
			"currentConnections": adm.Counts,
			"limits":             map[string]int{"alerts": limits.Alerts, "data": limits.Data},
		}})
	default:
		f.soft("admission: " + err.Error())
	}
}

// notifyEvicted tells the processes holding evicted leases to end them.
func (h *Handler) notifyEvicted(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := h.d.Hub.Evict(ctx, id); err != nil {
			// The evicted lease is already marked: its next renewal ends it.
			h.d.Log.WarnContext(ctx, "eviction notice failed", slog.String("err", err.Error()))
		}
	}
}

func parseBool(v string, def bool) (bool, error) {
	switch v {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return def, errors.New("not a boolean")
}
