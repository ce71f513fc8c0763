package sse_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/sse"
	"github.com/machinedash/sse/internal/ssetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	// realtimeJSON is a realtime-update payload as the service sends it.
	realtimeJSON = `{"deviceId":"C02","data":{"devId":"C02","Data":{"T1":220,"OT":57}},"timestamp":"2026-01-27T12:34:56.789Z"}`
	// cursorID is shaped like a resume cursor: about 60 bytes of [A-Za-z0-9._-].
	cursorID = "v1.u1042.dC02-C07.t1769517296789.s0003.Qm9vLXJlc3VtZS1jdXJzb3I"
)

// want is the event a browser should dispatch for ev, alone on a fresh
// stream. The browser decodes UTF-8, which leaves valid text unchanged.
func want(ev sse.Event) ssetest.Event {
	p := ssetest.Event{
		ID:    ssetest.DecodeUTF8(ev.ID),
		Name:  ssetest.DecodeUTF8(ev.Name),
		Data:  ssetest.DecodeUTF8(string(ev.Data)),
		Retry: -1,
	}
	if p.Name == "" {
		p.Name = "message"
	}
	if ev.Retry > 0 {
		p.Retry = max(ev.Retry.Milliseconds(), 1)
	}
	return p
}

func TestGolden(t *testing.T) {
	t.Parallel()
	event := func(ev sse.Event) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			t.Helper()
			b, err := sse.AppendEvent(nil, ev)
			if err != nil {
				t.Fatalf("AppendEvent(%+v): %v", ev, err)
			}
			if got := ssetest.Parse(b); !slices.Equal(got, []ssetest.Event{want(ev)}) {
				t.Errorf("parsed %+v, want %+v", got, want(ev))
			}
			return b
		}
	}
	// testdata/comment-*.golden have no case here: the service writes no
	// comments, so they are kept by hand, as wire input for the parsers
	// (TestGoldenEvents, the browser client's).
	tests := []struct {
		name   string
		encode func(t *testing.T) []byte
	}{
		{"full", event(sse.Event{ID: "42", Name: "update", Data: []byte(`{"ok":true}`), Retry: 3 * time.Second})},
		{"no-id", event(sse.Event{Name: "update", Data: []byte(`{"ok":true}`)})},
		{"no-name", event(sse.Event{ID: "42", Data: []byte(`{"ok":true}`)})},
		{"multi-line-data", event(sse.Event{ID: "43", Data: []byte("line one\nline two\n\nline four")})},
		{"trailing-lf-data", event(sse.Event{Data: []byte("ends with LF\n")})},
		{"leading-space-data", event(sse.Event{Data: []byte("  two spaces")})},
		{"empty-data", event(sse.Event{Name: "ping"})},
		{"retry", event(sse.Event{Data: []byte("x"), Retry: 2500*time.Millisecond + 999*time.Microsecond})},
		{"retry-alone", func(*testing.T) []byte { return sse.AppendRetry(nil, 10*time.Second) }},
		{"realtime-update", event(sse.Event{ID: cursorID, Name: "realtime-update", Data: []byte(realtimeJSON)})},
		{"heartbeat", event(sse.Event{Name: "system", Data: []byte(`{"kind":"heartbeat","ts":"2026-01-27T12:35:21.789Z"}`)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.encode(t)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, golden) {
				t.Errorf("output differs from %s\n got %q\nwant %q", path, got, golden)
			}
		})
	}
}

func TestAppendEventRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ev      sse.Event
		wantErr error
	}{
		{"id CR", sse.Event{ID: "a\rb", Data: []byte("x")}, sse.ErrField},
		{"id LF", sse.Event{ID: "a\nb", Data: []byte("x")}, sse.ErrField},
		{"id NUL", sse.Event{ID: "a\x00b", Data: []byte("x")}, sse.ErrField},
		{"id injection", sse.Event{ID: "a\r\nevent: x", Data: []byte("x")}, sse.ErrField},
		{"id trailing LF", sse.Event{ID: "a\n", Data: []byte("x")}, sse.ErrField},
		{"name CR", sse.Event{Name: "a\rb", Data: []byte("x")}, sse.ErrField},
		{"name LF", sse.Event{Name: "a\nb", Data: []byte("x")}, sse.ErrField},
		{"name NUL", sse.Event{Name: "a\x00b", Data: []byte("x")}, sse.ErrField},
		{"name injection", sse.Event{Name: "a\r\nevent: x", Data: []byte("x")}, sse.ErrField},
		{"data CR", sse.Event{Data: []byte("a\rb")}, sse.ErrData},
		{"data CRLF", sse.Event{Data: []byte("a\r\nid: 1")}, sse.ErrData},
		{"data trailing CR", sse.Event{Data: []byte("a\r")}, sse.ErrData},
		{"field error first", sse.Event{ID: "\n", Data: []byte("\r")}, sse.ErrField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dst := make([]byte, 0, 256)
			dst = append(dst, "data: before\n\n"...)
			before := slices.Clone(dst)
			got, err := sse.AppendEvent(dst, tt.ev)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("AppendEvent(%+v) error = %v, want %v", tt.ev, err, tt.wantErr)
			}
			if !bytes.Equal(got, before) || &got[0] != &dst[0] || cap(got) != cap(dst) {
				t.Errorf("AppendEvent returned %q (cap %d), want dst unchanged", got, cap(got))
			}
			if spare := dst[len(dst):cap(dst)]; !bytes.Equal(spare, make([]byte, len(spare))) {
				t.Errorf("AppendEvent wrote into dst's spare capacity on error: %q", bytes.TrimRight(spare, "\x00"))
			}
		})
	}
}

func TestAppendEventAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   sse.Event
	}{
		{"NUL in data", sse.Event{Data: []byte("a\x00b")}},
		{"colon and space in name", sse.Event{Name: " a: b", Data: []byte("x")}},
		{"leading space id", sse.Event{ID: " 1", Data: []byte("x")}},
		{"data only LF", sse.Event{Data: []byte("\n")}},
		{"data looks like fields", sse.Event{Data: []byte("\nid: 9\nevent: x\nretry: 1\n\n")}},
		{"sub-millisecond retry", sse.Event{Data: []byte("x"), Retry: time.Microsecond}},
		{"negative retry", sse.Event{Data: []byte("x"), Retry: -time.Second}},
		{"unicode", sse.Event{ID: "é", Name: "ü", Data: []byte("€\u2028𝄞")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := sse.AppendEvent([]byte(": lead\n"), tt.ev)
			if err != nil {
				t.Fatalf("AppendEvent(%+v): %v", tt.ev, err)
			}
			if got := ssetest.Parse(b); !slices.Equal(got, []ssetest.Event{want(tt.ev)}) {
				t.Errorf("stream %q parsed as %+v, want %+v", b, got, want(tt.ev))
			}
		})
	}
}

func TestAppendRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "retry: 0\n"},
		{-time.Second, "retry: 0\n"},
		{time.Nanosecond, "retry: 1\n"},
		{time.Millisecond, "retry: 1\n"},
		{1999 * time.Microsecond, "retry: 1\n"},
		{3 * time.Second, "retry: 3000\n"},
		{time.Duration(1<<63 - 1), "retry: 9223372036854\n"},
	}
	for _, tt := range tests {
		if got := string(sse.AppendRetry([]byte("x"), tt.d)); got != "x"+tt.want {
			t.Errorf("AppendRetry(%v) = %q, want %q", tt.d, got, "x"+tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"": true, "42": true, cursorID: true, "a b:c": true, "é": true,
		"\r": false, "\n": false, "\x00": false, "ok\r\nevent: x": false, "ok\x00": false,
	} {
		if got := sse.ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestAppendEventDoesNotAllocate(t *testing.T) {
	ev := sse.Event{ID: cursorID, Name: "realtime-update", Data: []byte(realtimeJSON), Retry: time.Second}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = sse.AppendEvent(buf[:0], ev)
		buf = sse.AppendRetry(buf, time.Second)
	})
	if allocs != 0 {
		t.Errorf("AppendEvent+AppendRetry into a large enough buffer: %v allocs, want 0", allocs)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	ev := sse.Event{ID: cursorID, Name: "realtime-update", Data: []byte(realtimeJSON)}
	buf, err := sse.AppendEvent(nil, ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = sse.AppendEvent(buf[:0], ev)
	}
}
