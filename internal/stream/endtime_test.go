package stream

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/ticket"
	"github.com/machinedash/sse/internal/web"
)

func TestEndTimeBounds(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name             string
		timing           Timing
		deadline         time.Duration // from now; 0 = none
		earliest, latest time.Duration
	}{
		{"local default", Timing{RotationWindow: time.Minute}, 0, 14 * time.Minute, 15 * time.Minute},
		{"max duration", Timing{MaxDuration: 2 * time.Minute, RotationWindow: time.Minute}, 0, 90 * time.Second, 2 * time.Minute},
		{"window clamped to a quarter", Timing{MaxDuration: 20 * time.Second, RotationWindow: time.Minute}, 0, 15 * time.Second, 20 * time.Second},
		// Lambda: 15 min deadline, 4 s margin, 60 s window.
		{"invocation deadline", Timing{RotationWindow: time.Minute}, 15 * time.Minute, 15*time.Minute - 4*time.Second - time.Minute, 15*time.Minute - 4*time.Second},
		{"deadline before max duration", Timing{MaxDuration: time.Hour, RotationWindow: 0}, 10 * time.Second, 6 * time.Second, 6 * time.Second},
	} {
		for _, jitter := range []string{"none", "max", "random"} {
			d := Deps{Timing: tc.timing}
			switch jitter {
			case "none":
				d.Jitter = func(time.Duration) time.Duration { return 0 }
			case "max":
				d.Jitter = func(m time.Duration) time.Duration { return m }
			}
			h := New(d)
			s := &session{h: h}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, time.Now().Add(tc.deadline))
				defer cancel()
			}
			end := s.endTime(ctx, start).Sub(start)
			slack := 50 * time.Millisecond // the real deadline moves while the test runs
			if end < tc.earliest-slack || end > tc.latest+slack {
				t.Errorf("%s/%s: ends at %v, want %v..%v", tc.name, jitter, end, tc.earliest, tc.latest)
			}
		}
	}
}

func TestEndTimeJitterSpreads(t *testing.T) {
	t.Parallel()
	h := New(Deps{Timing: Timing{MaxDuration: 10 * time.Minute, RotationWindow: time.Minute}})
	s := &session{h: h}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		seen[s.endTime(context.Background(), start).Sub(start).Truncate(time.Second)] = true
	}
	// 200 streams over a 60 s window: far from one synchronized wave.
	if len(seen) < 30 {
		t.Fatalf("200 rotations fell on only %d distinct seconds", len(seen))
	}
}

func TestCursorRoundTripAndLimits(t *testing.T) {
	t.Parallel()
	lease := newLeaseID()
	at := time.UnixMilli(1769515200123)
	id := string(appendCursor(nil, lease, at, 12345))
	if len(id) > 64 {
		t.Fatalf("id %d bytes", len(id))
	}
	c, ok := parseCursor(id)
	if !ok || c.Lease != lease || !c.At.Equal(at) || c.Seq != 12345 {
		t.Fatalf("%+v %v", c, ok)
	}
	for _, bad := range []string{"", "x", lease, lease + ".1", lease + ".1.2.3", lease[:21] + "!.1.1", lease + ".-1.1", lease + ".+1.1", lease + "..1"} {
		if _, ok := parseCursor(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add(string(appendCursor(nil, newLeaseID(), time.UnixMilli(1), 1)))
	f.Add("abc.def.ghi")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseCursor(s)
		if !ok {
			return
		}
		// Whatever parses is a cursor of ours and prints back CORS-safe.
		out := string(appendCursor(nil, c.Lease, c.At, c.Seq))
		if len(out) > 128 {
			t.Fatalf("%d bytes", len(out))
		}
		for i := 0; i < len(out); i++ {
			ch := out[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
				t.Fatalf("unsafe byte %q in %q", ch, out)
			}
		}
	})
}

type panicTickets struct{}

func (panicTickets) Parse(string) (ticket.Claims, error) { panic("boom") }
func (panicTickets) Key(string) string                   { return "" }

func TestPanicDuringAdmissionReachesTheHandlersGuard(t *testing.T) {
	t.Parallel()
	h := New(Deps{Tickets: panicTickets{}, MaxDevices: 10})
	srv := web.Wrap(h.Alerts(), web.Options{})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/sse/alerts?ticket=x", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
