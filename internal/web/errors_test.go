package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/device"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
)

// TestErrorTable: every sentinel of the table is answered with its status
// and the seed's body, exactly; the list below is the contract written
// out a second time, so that changing a message or status fails here.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	want := []struct {
		err     error
		status  int
		message string
	}{
		{ticket.ErrMissing, 401, "Stream authentication required"},
		{ticket.ErrInvalid, 401, "Invalid or expired stream ticket"},
		{ticket.ErrExpired, 401, "Invalid or expired stream ticket"},
		{ticket.ErrRevoked, 401, "Invalid or expired stream ticket"},
		{registry.ErrRevoked, 401, "Invalid or expired stream ticket"},
		{registry.ErrBadCursor, 401, "Invalid or expired stream ticket"},
		{ticket.ErrWrongPurpose, 401, "Stream ticket is not valid for this stream"},
		{ticket.ErrBadTTL, 400, "ttlSeconds must be an integer from 60 to 3600"},
		{ticket.ErrBadPurpose, 400, `purpose must be "alerts" or "data"`},
		{ticket.ErrRateLimited, 429, "Too many stream tickets requested; try again later"},
		{access.ErrMissing, 401, "Authentication required"},
		{access.ErrInvalid, 401, "Invalid or expired access token"},
		{registry.ErrForbidden, 403, "Access denied to one or more devices"},
		{registry.ErrUserLimit, 429, "%s stream connection limit exceeded"},
		{registry.ErrIPLimit, 429, "Too many streams from this address"},
		{registry.ErrNotLive, 404, "No open stream of this ticket has this id"},
		{device.ErrNone, 400, "deviceId or deviceIds is required"},
		{device.ErrTooMany, 400, "Too many devices: at most %d per stream"},
		{device.ErrConflict, 400, "Use deviceId or deviceIds, not both"},
		{device.ErrInvalid, 400, "Invalid device id"},
		{ErrBadRequest, 400, "Bad request"},
		{ErrBodyTooLarge, 400, "Request body too large"},
		{ErrPayloadTooLarge, 413, "Request body too large"},
		{ErrMalformedRequest, 400, "Malformed request"},
		{ErrNotFound, 404, "Not found"},
		{ErrMethod, 405, "Method not allowed"},
		{ErrMediaType, 415, "Unsupported media type"},
		{ErrHeadersTooLarge, 431, "Request headers too large"},
		{ErrOrigin, 403, "Requests must come through the service's public origin"},
		{ErrUnavailable, 503, "Service temporarily unavailable"},
		{ErrNotImplemented, 501, "Not implemented"},
	}
	if len(want) != len(codes) {
		t.Fatalf("the table has %d rows, this test knows %d", len(codes), len(want))
	}
	for _, tc := range want {
		for _, err := range []error{tc.err, fmt.Errorf("context: %w", tc.err)} { // wrapped alike
			rec, _ := fail(t, err)
			body, _ := json.Marshal(map[string]any{"statusCode": tc.status, "message": tc.message, "error": http.StatusText(tc.status)})
			if rec.Code != tc.status || rec.Body.String() != string(body)+"\n" {
				t.Errorf("%v: %d %s, want %d %s", err, rec.Code, rec.Body, tc.status, body)
			}
			if rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("%v: Content-Type %q", err, rec.Header().Get("Content-Type"))
			}
			if Status(err) != tc.status {
				t.Errorf("Status(%v) = %d", err, Status(err))
			}
		}
	}
}

// TestErrorDetails: a row's message takes its values, its extra fields
// and headers are written, and nothing a row does not name.
func TestErrorDetails(t *testing.T) {
	t.Parallel()
	counts := map[string]int{"alerts": 1, "data": 1, "total": 2}
	limits := map[string]int{"alerts": 1, "data": 1}
	for _, tc := range []struct {
		name string
		err  error
		want map[string]any
	}{
		{"user limit names the stream and carries counts", &Error{Err: registry.ErrUserLimit, Args: []any{"Alerts"},
			Fields: map[string]any{"currentConnections": counts, "limits": limits, "secret": "x"}},
			map[string]any{"statusCode": 429, "message": "Alerts stream connection limit exceeded", "error": "Too Many Requests",
				"currentConnections": counts, "limits": limits}},
		{"ip limit ignores args", &Error{Err: registry.ErrIPLimit, Args: []any{"Data"}, Fields: map[string]any{"limits": limits}},
			map[string]any{"statusCode": 429, "message": "Too many streams from this address", "error": "Too Many Requests", "limits": limits}},
		{"device limit", &Error{Err: fmt.Errorf("parse: %w", device.ErrTooMany), Args: []any{10}},
			map[string]any{"statusCode": 400, "message": "Too many devices: at most 10 per stream", "error": "Bad Request"}},
		{"no fields on a row without any", &Error{Err: registry.ErrForbidden, Fields: map[string]any{"limits": limits}},
			map[string]any{"statusCode": 403, "message": "Access denied to one or more devices", "error": "Forbidden"}},
		{"an endpoint's own message", WithMessage(ErrNotFound, "Unknown demo user"),
			map[string]any{"statusCode": 404, "message": "Unknown demo user", "error": "Not Found"}},
	} {
		rec, _ := fail(t, tc.err)
		want, _ := json.Marshal(tc.want)
		if strings.TrimSpace(rec.Body.String()) != string(want) {
			t.Errorf("%s: %s, want %s", tc.name, rec.Body, want)
		}
	}

	rec, _ := fail(t, &ticket.LimitError{RetryAfter: 1500 * time.Millisecond})
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("rate limit: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestErrorLogging: an error without a row is a 500 that says nothing of
// it and is logged with its text; a 5xx of the table is logged too; a 4xx
// is not.
func TestErrorLogging(t *testing.T) {
	t.Parallel()
	rec, logged := fail(t, errors.New("dial tcp 10.0.0.7:6379: secret detail"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") ||
		strings.TrimSpace(rec.Body.String()) != `{"error":"Internal Server Error","message":"Internal server error","statusCode":500}` {
		t.Fatalf("unknown: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logged, `"level":"ERROR"`) || !strings.Contains(logged, "secret detail") || !strings.Contains(logged, `"status":500`) {
		t.Fatalf("unknown error not logged: %s", logged)
	}

	rec, logged = fail(t, Unavailable(errors.New("redis: connection refused")))
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "refused") || !strings.Contains(logged, "connection refused") {
		t.Fatalf("unavailable: %d %s log %s", rec.Code, rec.Body, logged)
	}
	if err := Unavailable(fmt.Errorf("close: %w", registry.ErrNotLive)); Status(err) != 404 {
		t.Fatalf("Unavailable hid a known error: %v -> %d", err, Status(err))
	}

	for _, err := range []error{ticket.ErrInvalid, registry.ErrUserLimit, ErrNotFound} {
		if _, logged := fail(t, err); logged != "" {
			t.Errorf("%v logged: %s", err, logged)
		}
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/", strings.NewReader("12345"))
	if b, err := ReadBody(httptest.NewRecorder(), r, 5); err != nil || string(b) != "12345" {
		t.Fatalf("%q %v", b, err)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader("123456"))
	if _, err := ReadBody(httptest.NewRecorder(), r, 5); !errors.Is(err, ErrBodyTooLarge) || Status(err) != 400 {
		t.Fatalf("oversize: %v", err)
	}
}

// fail answers err through Fail and returns the response and the log.
func fail(t *testing.T, err error) (*httptest.ResponseRecorder, string) {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rec := httptest.NewRecorder()
	Fail(rec, httptest.NewRequest("GET", "/sse/status?ticket=t0p", nil), log, err)
	if strings.Contains(buf.String(), "t0p") {
		t.Fatalf("the ticket reached the log: %s", buf.String())
	}
	return rec, buf.String()
}

// A value JSON cannot write is the table's 500, not a half-written body.
func TestJSONThatCannotMarshal(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	JSON(rec, 200, map[string]any{"f": func() {}})
	if rec.Code != 500 || strings.TrimSpace(rec.Body.String()) != `{"error":"Internal Server Error","message":"Internal server error","statusCode":500}` {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
