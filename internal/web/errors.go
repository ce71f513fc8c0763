package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/device"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
)

// Errors of the HTTP layer itself; the domain's own sentinels (ticket,
// access, registry, device) have their rows in codes beside these.
var (
	ErrBadRequest       = errors.New("web: bad request") // an endpoint's own 400, with its message (WithMessage)
	ErrBodyTooLarge     = errors.New("web: request body too large or unreadable")
	ErrPayloadTooLarge  = errors.New("web: request body too large (413)") // /dev/publish's answer to one
	ErrMalformedRequest = errors.New("web: function URL event is not a request")
	ErrNotFound         = errors.New("web: not found")
	ErrMethod           = errors.New("web: method not allowed")
	ErrMediaType        = errors.New("web: unsupported media type")
	ErrHeadersTooLarge  = errors.New("web: request headers too large")
	ErrOrigin           = errors.New("web: request did not come through the public origin")
	ErrUnavailable      = errors.New("web: service unavailable") // a dependency (Redis) failed
	ErrNotImplemented   = errors.New("web: not implemented")
)

// code is one row of the table: the status and seed-shaped message an
// error is answered with, and the extra body fields and headers it adds.
type code struct {
	err     error
	status  int
	message string   // may hold fmt verbs, filled by Error.Args
	fields  []string // extra top-level body fields, from Error.Fields
	header  func(err error, h http.Header)
}

const (
	msgTicket      = "Invalid or expired stream ticket"
	msgInternal    = "Internal server error"
	msgUnavailable = "Service temporarily unavailable"
)

// limitFields are the 429's extra fields (seed section 3).
var limitFields = []string{"currentConnections", "limits"}

// codes is the one table of error answers. Rows are tried in order; the
// first whose err matches (errors.Is) answers. Any error without a row is
// a 500 with msgInternal, and logged.
var codes = []code{
	{err: ticket.ErrMissing, status: http.StatusUnauthorized, message: "Stream authentication required"},
	{err: ticket.ErrInvalid, status: http.StatusUnauthorized, message: msgTicket},
	{err: ticket.ErrExpired, status: http.StatusUnauthorized, message: msgTicket},
	{err: ticket.ErrRevoked, status: http.StatusUnauthorized, message: msgTicket},
	{err: registry.ErrRevoked, status: http.StatusUnauthorized, message: msgTicket},
	{err: registry.ErrBadCursor, status: http.StatusUnauthorized, message: msgTicket},
	{err: ticket.ErrWrongPurpose, status: http.StatusUnauthorized, message: "Stream ticket is not valid for this stream"},
	{err: ticket.ErrBadTTL, status: http.StatusBadRequest, message: "ttlSeconds must be an integer from 60 to 3600"},
	{err: ticket.ErrBadPurpose, status: http.StatusBadRequest, message: `purpose must be "alerts" or "data"`},
	{err: ticket.ErrRateLimited, status: http.StatusTooManyRequests, message: "Too many stream tickets requested; try again later", header: retryAfter},
	{err: access.ErrMissing, status: http.StatusUnauthorized, message: "Authentication required"},
	{err: access.ErrInvalid, status: http.StatusUnauthorized, message: "Invalid or expired access token"},
	{err: registry.ErrForbidden, status: http.StatusForbidden, message: "Access denied to one or more devices"},
	// Args: "Data" or "Alerts".
	{err: registry.ErrUserLimit, status: http.StatusTooManyRequests, message: "%s stream connection limit exceeded", fields: limitFields},
	{err: registry.ErrIPLimit, status: http.StatusTooManyRequests, message: "Too many streams from this address", fields: limitFields},
	{err: registry.ErrNotLive, status: http.StatusNotFound, message: "No open stream of this ticket has this id"},
	{err: device.ErrNone, status: http.StatusBadRequest, message: "deviceId or deviceIds is required"},
	// Args: the configured maximum.
	{err: device.ErrTooMany, status: http.StatusBadRequest, message: "Too many devices: at most %d per stream"},
	{err: device.ErrConflict, status: http.StatusBadRequest, message: "Use deviceId or deviceIds, not both"},
	{err: device.ErrInvalid, status: http.StatusBadRequest, message: "Invalid device id"},
	{err: ErrBadRequest, status: http.StatusBadRequest, message: "Bad request"},
	{err: ErrBodyTooLarge, status: http.StatusBadRequest, message: "Request body too large"},
	{err: ErrPayloadTooLarge, status: http.StatusRequestEntityTooLarge, message: "Request body too large"},
	{err: ErrMalformedRequest, status: http.StatusBadRequest, message: "Malformed request"},
	{err: ErrNotFound, status: http.StatusNotFound, message: "Not found"},
	{err: ErrMethod, status: http.StatusMethodNotAllowed, message: "Method not allowed"},
	{err: ErrMediaType, status: http.StatusUnsupportedMediaType, message: "Unsupported media type"},
	{err: ErrHeadersTooLarge, status: http.StatusRequestHeaderFieldsTooLarge, message: "Request headers too large"},
	{err: ErrOrigin, status: http.StatusForbidden, message: "Requests must come through the service's public origin"},
	{err: ErrUnavailable, status: http.StatusServiceUnavailable, message: msgUnavailable},
	{err: ErrNotImplemented, status: http.StatusNotImplemented, message: "Not implemented"},
}

var internal = code{status: http.StatusInternalServerError, message: msgInternal}

// Error is a table error with what only the moment of the refusal knows.
// The status always comes from Err's row.
type Error struct {
	Err     error
	Message string         // replaces the row's message: an endpoint's own wording of a 400 or 404
	Args    []any          // fill the row's message when it has verbs ("%d" of the device limit); ignored otherwise
	Fields  map[string]any // values of the row's extra fields (the 429's counts); others are ignored
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// WithMessage is err answered with an endpoint's own message.
func WithMessage(err error, message string) error { return &Error{Err: err, Message: message} }

// Unavailable is err when the table has a row for it, else err as a 503:
// what a failing dependency (Redis) means for a request, where a 500
// would blame the service's own code.
func Unavailable(err error) error {
	if _, ok := lookup(err); ok {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func lookup(err error) (code, bool) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c, true
		}
	}
	return internal, false
}

// Status is the status Fail answers err with.
func Status(err error) int {
	c, _ := lookup(err)
	return c.status
}

// Fail answers with err's row: its status, the seed's body {statusCode,
// message, error} with the row's extra fields, and its headers. A 5xx is
// logged (on log, when not nil) with err's text, which the client never
// sees; a 4xx is the client's own trouble and not logged here.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	c, _ := lookup(err)
	msg := c.message
	var e *Error
	errors.As(err, &e)
	var extra map[string]any
	if e != nil {
		if len(e.Args) > 0 && strings.ContainsRune(msg, '%') {
			msg = fmt.Sprintf(msg, e.Args...)
		}
		if e.Message != "" {
			msg = e.Message
		}
		for _, f := range c.fields {
			if v, ok := e.Fields[f]; ok {
				if extra == nil {
					extra = map[string]any{}
				}
				extra[f] = v
			}
		}
	}
	if c.header != nil {
		c.header(err, w.Header())
	}
	if c.status >= 500 && log != nil {
		attrs := []slog.Attr{slog.Int("status", c.status), slog.String("err", err.Error())}
		if r.URL != nil { // urlfn's stand-in for an event that is no request has none
			attrs = append(attrs, slog.String("path", RedactURL(r)))
		}
		log.LogAttrs(r.Context(), slog.LevelError, "request failed", attrs...)
	}
	writeError(w, c.status, msg, extra)
}

// retryAfter sets Retry-After from a *ticket.LimitError, in whole seconds
// rounded up.
func retryAfter(err error, h http.Header) {
	var l *ticket.LimitError
	if errors.As(err, &l) {
		h.Set("Retry-After", strconv.Itoa(int((l.RetryAfter+time.Second-1)/time.Second)))
	}
}

// ReadBody reads r's body, at most max bytes. A longer body, or one that
// breaks off, is ErrBodyTooLarge (wrapping the cause): either way the
// sender is gone or misbehaving, and the answer is the same 400.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBodyTooLarge, err)
	}
	return b, nil
}

// NotFound answers any request with the 404 of the table.
func NotFound(w http.ResponseWriter, r *http.Request) { Fail(w, r, nil, ErrNotFound) }
