package sse_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/sse"
	"github.com/machinedash/sse/internal/ssetest"
)

// FuzzEncode checks that every event is either rejected for a byte it really
// contains, or parses back, alone, into exactly the event that was encoded,
// through exactly the fields the encoder means to write. retry is a
// time.Duration in nanoseconds, so the millisecond rounding is fuzzed too.
func FuzzEncode(f *testing.F) {
	ms := int64(time.Millisecond)
	f.Add("42", "update", []byte(`{"ok":true}`), 3000*ms)
	f.Add(cursorID, "realtime-update", []byte(realtimeJSON), int64(0))
	f.Add("", "system", []byte(`{"kind":"heartbeat","ts":"2026-01-27T12:35:21.789Z"}`), int64(0))
	f.Add("", "", []byte(nil), int64(0))
	f.Add("", "", []byte("\n"), int64(1))
	f.Add(" 1", " a: b", []byte(" lead\n\ntrail\n"), -ms)
	f.Add("a\r\nevent: x", "n", []byte("x"), int64(0))
	f.Add("1", "a\x00", []byte("x"), int64(0))
	f.Add("1", "n", []byte("a\rb"), int64(0))
	f.Add("1", "n", []byte("a\x00b\ndata: c\nid: 2\n\n"), 1999*int64(time.Microsecond))
	f.Add("\uFEFF", "\xE2\x82", []byte("\xFF\xC0\xAF€"), int64(1<<63-1))

	f.Fuzz(func(t *testing.T, id, name string, data []byte, retry int64) {
		ev := sse.Event{ID: id, Name: name, Data: data, Retry: time.Duration(retry)}

		dst := make([]byte, 0, 64)
		dst = append(dst, ": before\n"...)
		before := slices.Clone(dst)
		out, err := sse.AppendEvent(dst, ev)

		var wantErr error
		switch {
		case strings.ContainsAny(id, "\r\n\x00") || strings.ContainsAny(name, "\r\n\x00"):
			wantErr = sse.ErrField
		case bytes.IndexByte(data, '\r') >= 0:
			wantErr = sse.ErrData
		}
		if err != nil || wantErr != nil {
			if !errors.Is(err, wantErr) || err == nil {
				t.Fatalf("AppendEvent(%+v) error = %v, want %v", ev, err, wantErr)
			}
			if !bytes.Equal(out, before) || cap(out) != cap(dst) {
				t.Fatalf("AppendEvent(%+v) returned %q on error, want dst unchanged", ev, out)
			}
			return
		}
		if !bytes.HasPrefix(out, before) {
			t.Fatalf("AppendEvent changed the bytes already in dst: %q", out)
		}

		// Exactly the fields the encoder means to write, and one event.
		p := ssetest.Parser{Trace: true}
		events := p.Feed(out)
		var wantFields []string
		if id != "" {
			wantFields = append(wantFields, "id")
		}
		if name != "" {
			wantFields = append(wantFields, "event")
		}
		if ev.Retry > 0 {
			wantFields = append(wantFields, "retry")
		}
		for range bytes.Count(data, []byte{'\n'}) + 1 {
			wantFields = append(wantFields, "data")
		}
		if !slices.Equal(p.Fields, wantFields) || p.Blanks != 1 {
			t.Fatalf("stream %q has fields %q and %d blank lines, want %q and 1", out, p.Fields, p.Blanks, wantFields)
		}
		if !slices.Equal(events, []ssetest.Event{want(ev)}) {
			t.Fatalf("stream %q parsed as %+v, want [%+v]", out, events, want(ev))
		}

		// Twice into one buffer, with a comment between: two events.
		two, err := sse.AppendEvent(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		two = append(two, ": between\n"...)
		two, err = sse.AppendEvent(two, ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := ssetest.Parse(two); !slices.Equal(got, []ssetest.Event{want(ev), want(ev)}) {
			t.Fatalf("stream %q parsed as %+v, want twice %+v", two, got, want(ev))
		}
	})
}
