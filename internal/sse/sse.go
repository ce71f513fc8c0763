// Package sse encodes Server-Sent Events in the text/event-stream wire format
// that a browser's EventSource parses.
//
// Encoder output never lets data inject a field: an id or event name that
// contains CR, LF or NUL is rejected, data is written as one "data: " line per
// LF-separated line and rejected if it contains a CR, and every event ends with
// a blank line. So whatever the input, a stream built from these functions
// parses into exactly the events and retry lines that were appended (the browser
// decodes UTF-8, so bytes that are not valid UTF-8 arrive as U+FFFD).
//
// The Append functions write into the caller's buffer and do not allocate
// when it has room, because every event of every stream goes through them.
package sse

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"time"
)

var (
	// ErrField: a CR or LF would end the line and start a new field; a NUL
	// makes browsers ignore the id.
	ErrField = errors.New("sse: id or event name contains CR, LF or NUL")
	// ErrData: a lone CR is a line break to the parser, so data containing
	// one could not arrive unchanged.
	ErrData = errors.New("sse: data contains CR")
)

// Event is one SSE event. Data is usually one line of compact JSON.
//
// The browser decodes the stream as UTF-8, so bytes that are not valid
// UTF-8 arrive as U+FFFD (only valid UTF-8 arrives byte for byte).
type Event struct {
	// ID, if not empty, is written as an "id:" line and becomes the
	// browser's last event ID (sent back as Last-Event-ID on reconnect).
	ID string
	// Name, if not empty, is written as an "event:" line; without one the
	// browser dispatches the event as "message".
	Name string
	// Data is written as one "data:" line per LF-separated line, and as one
	// empty "data:" line when empty, so the event is always dispatched.
	// A trailing LF survives: it becomes a final empty line.
	Data []byte
	// Retry, if positive, is written as a "retry:" line in whole
	// milliseconds (truncated, but at least 1). Zero or negative: no line.
	Retry time.Duration
}

// Field prefixes. Values always follow one space: the parser strips exactly
// one leading space, so a value that itself starts with a space survives.
const (
	idPrefix     = "id: "
	eventPrefix  = "event: "
	retryPrefix  = "retry: "
	dataPrefix   = "data: "
	maxRetryLine = len(retryPrefix) + 19 + 1 // 19 digits hold any int64
)

// AppendEvent appends ev in wire format (ending with the blank line that
// dispatches it) to dst and returns the extended buffer. It returns dst
// unchanged and ErrField if ev.ID or ev.Name contains CR, LF or NUL, or
// ErrData if ev.Data contains CR.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if !ValidID(ev.ID) || !ValidID(ev.Name) {
		return dst, ErrField
	}
	if bytes.IndexByte(ev.Data, '\r') >= 0 {
		return dst, ErrData
	}

	// Grow once, so a short buffer costs one allocation, not several.
	lines := 1 + bytes.Count(ev.Data, newline)
	n := lines*(len(dataPrefix)+1) + len(ev.Data) + 1
	if ev.ID != "" {
		n += len(idPrefix) + len(ev.ID) + 1
	}
	if ev.Name != "" {
		n += len(eventPrefix) + len(ev.Name) + 1
	}
	if ev.Retry > 0 {
		n += maxRetryLine
	}
	dst = slices.Grow(dst, n)

	if ev.ID != "" {
		dst = append(dst, idPrefix...)
		dst = append(dst, ev.ID...)
		dst = append(dst, '\n')
	}
	if ev.Name != "" {
		dst = append(dst, eventPrefix...)
		dst = append(dst, ev.Name...)
		dst = append(dst, '\n')
	}
	if ev.Retry > 0 {
		dst = AppendRetry(dst, ev.Retry)
	}
	data := ev.Data
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		dst = append(dst, dataPrefix...)
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		data = data[i+1:]
	}
	dst = append(dst, dataPrefix...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n'), nil
}

var newline = []byte{'\n'}

// AppendRetry appends a lone "retry: <ms>\n" line to dst: it sets the
// browser's reconnection delay without dispatching an event. d is written in
// whole milliseconds, truncated but at least 1 if d is positive; a negative
// d is written as 0.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, retryPrefix...)
	dst = strconv.AppendInt(dst, retryMillis(d), 10)
	return append(dst, '\n')
}

// retryMillis rounds d to the milliseconds written on the wire. A positive
// sub-millisecond d becomes 1, not 0, which would mean "reconnect at once".
func retryMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// ValidID reports whether s can be written as an id or event name: it must
// not contain CR or LF (which would end the line and start a new field) or
// NUL (browsers ignore an id that contains one).
func ValidID(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n', 0:
			return false
		}
	}
	return true
}
