package stream

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/registry"
)

// BenchmarkDeliver is a stream's own work for one delivered message once
// the hub has queued it: the event (id line and frame) appended to the
// stream's buffer and flushed to a writer that takes everything at once,
// with no socket under it. cpu-ns/delivery is process CPU time (user+sys)
// per op, which a busy shared machine inflates less than wall time. The
// watched case writes as on lambdaurl's writer, which takes no write
// deadline: each write on its own goroutine under the watchdog's timer;
// the hijacked case as on the local server's connection: each flush framed
// as its chunk (out.go), the writer under it a connection.
func BenchmarkDeliver(b *testing.B) {
	for _, tc := range []struct {
		name              string
		p                 purpose.Purpose
		kind              *channel.Kind
		watched, hijacked bool
	}{
		{"data", purpose.Data, channel.SPC, false, false}, {"alerts", purpose.Alerts, channel.Alert, false, false},
		{"data-watched", purpose.Data, channel.SPC, true, false}, {"data-hijacked", purpose.Data, channel.SPC, false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, w := sinkSession(New(Deps{}), tc.p, nil)
			s.noDeadline = tc.watched
			if tc.hijacked {
				s.out = out{raw: &rawConn{Conn: sinkConn{w: w}}, room: chunkRoom}
				s.resetBuf()
			}
			m, err := pubsub.Parse(tc.kind, []byte(`{"deviceId":"C042","data":{"devId":"C042","Data":{"CYCN":8810,"ECYCT":36.61,"T1":220,"T2":221,"OT":57,"OPM":3}},"seq":1234,"timestamp":"2026-01-27T12:34:56.789Z"}`), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			deliverLoop(b, s, m)
			s.stopWatch()
			if w.written() == 0 {
				b.Fatal("nothing written")
			}
		})
	}
}

// BenchmarkDeliverTCP is BenchmarkDeliver's data case over a real
// loopback connection of a net/http server, written through net/http's
// ResponseWriter or on the connection hijacked from it (out.go), with a
// client that reads everything (net/http's chunked reader into
// io.Discard). Its CPU is in cpu-ns/delivery too, the same in both cases,
// so their difference is the writer's.
func BenchmarkDeliverTCP(b *testing.B) {
	for _, hijack := range []bool{false, true} {
		name := "nethttp"
		if hijack {
			name = "hijacked"
		}
		b.Run(name, func(b *testing.B) {
			h := New(Deps{})
			h.TakeConns()
			m, err := pubsub.Parse(channel.SPC, []byte(`{"deviceId":"C042","data":{"devId":"C042","Data":{"CYCN":8810,"ECYCT":36.61,"T1":220,"T2":221,"OT":57,"OPM":3}},"seq":1234,"timestamp":"2026-01-27T12:34:56.789Z"}`), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			opened, done := make(chan *session), make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := &session{h: h, out: httpOut(w), purpose: purpose.Data, lease: registry.Lease{ID: newLeaseID()}}
				writeStreamHeader(w)
				if err := s.out.rc.Flush(); err != nil {
					b.Error(err)
				}
				if hijack && !h.conns.take(s, r) {
					b.Error("not hijacked")
				}
				s.resetBuf()
				opened <- s
				<-done
			}))
			defer srv.Close()
			read := make(chan error, 1)
			go func() {
				resp, err := srv.Client().Get(srv.URL)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				read <- err
			}()
			s := <-opened
			deliverLoop(b, s, m)
			if hijack {
				s.out.raw.(*rawConn).end(time.Now().Add(time.Second))
			}
			close(done)
			if err := <-read; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sinkWriter is a ResponseWriter that takes every write at once and
// supports what the stream asks of the local server's writer (flush, write
// deadline), so the stream writes as it does there.
type sinkWriter struct {
	header http.Header
	events atomic.Int64 // events written ("\n\n" ends each)
	writes atomic.Int64 // Write calls
}

func (w *sinkWriter) written() int { return int(w.events.Load()) }

func (w *sinkWriter) Header() http.Header { return w.header }
func (w *sinkWriter) WriteHeader(int)     {}
func (w *sinkWriter) Write(p []byte) (int, error) {
	w.events.Add(int64(bytes.Count(p, []byte("\n\n"))))
	w.writes.Add(1)
	return len(p), nil
}
func (w *sinkWriter) FlushError() error                { return nil }
func (w *sinkWriter) SetWriteDeadline(time.Time) error { return nil }

// sinkConn is a connection that takes every write at once into w.
type sinkConn struct {
	net.Conn // nil: only what a stream's write uses is there
	w        *sinkWriter
}

func (c sinkConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c sinkConn) SetWriteDeadline(time.Time) error { return nil }

// sinkSession is a stream of h with purpose p writing to a sinkWriter, as
// the tests and benchmarks of the stream's own work build it (no HTTP
// request, no admission); sub may be nil when nothing drains a queue.
func sinkSession(h *Handler, p purpose.Purpose, sub *pubsub.Subscription) (*session, *sinkWriter) {
	w := &sinkWriter{header: http.Header{}}
	return &session{h: h, out: httpOut(w), purpose: p, sub: sub,
		lease: registry.Lease{ID: newLeaseID()}, end: h.d.Clock.Now().Add(time.Hour)}, w
}

// spcHub is a hub on real Redis (the test's own prefix) that routes one
// SPC channel, returned with its client and the channel's name.
func spcHub(tb testing.TB) (*pubsub.Hub, *redis.Client, string) {
	rdb, prefix := redistest.Client(tb)
	ch := prefix + "spc"
	hub := pubsub.NewHub(rdb, pubsub.Channels{Kinds: map[string]*channel.Kind{ch: channel.SPC}}, slog.New(slog.DiscardHandler), nil)
	tb.Cleanup(hub.Close)
	return hub, rdb, ch
}

// appendBase36 writes what strconv writes in base 36.
func TestAppendBase36(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 35, 36, 37, 1295, 1296, 1769515200000, 1<<63 - 1, 1<<64 - 1} {
		if got, want := string(appendBase36([]byte("x"), v)), "x"+strconv.FormatUint(v, 36); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}

// BenchmarkWake is the stream loop's work per delivery past the hub: 200
// streams of one device, each in its own loop (its select, the drain of
// its queue, the event, the flush to a sinkWriter), and one Redis message
// per op reaching all of them through the real hub. cpu-ns/delivery is
// process CPU time per delivery; the hub's read and parse of a message are
// shared by its 200 deliveries.
func BenchmarkWake(b *testing.B) {
	const streams = 200
	hub, rdb, ch := spcHub(b)
	h := New(Deps{Hub: hub, Clock: clockwork.NewFakeClock()})
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	sinks := make([]*sinkWriter, streams)
	for i := range sinks {
		sub, err := hub.Subscribe(ctx, "", pubsub.Filter{Devices: []string{"C042"}, Purpose: purpose.Data}, pubsub.QueueLimits{Capacity: 1 << 20}) // never overflows
		if err != nil {
			b.Fatal(err)
		}
		s, w := sinkSession(h, purpose.Data, sub)
		sinks[i] = w
		done.Go(func() { s.loop(ctx); sub.Close() })
	}
	payload := `{"deviceId":"C042","data":{"devId":"C042","Data":{"CYCN":8810,"ECYCT":36.61,"T1":220,"T2":221,"OT":57,"OPM":3}},"timestamp":"2026-01-27T12:34:56.789Z"}`
	written := func() (n int) {
		for _, w := range sinks {
			n += w.written()
		}
		return n
	}
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		if err := rdb.Publish(ctx, ch, payload).Err(); err != nil {
			b.Fatal(err)
		}
	}
	// Every stream has written every message before the clock stops.
	for written() < b.N*streams {
		time.Sleep(time.Millisecond)
	}
	cpu := processCPU() - start
	cancel()
	done.Wait()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*streams), "cpu-ns/delivery")
}

// A buffer grown past maxKeptBuf (a replay, a burst) is let go after its
// write; a small one is kept for the next wake-up.
func TestFlushLetsLargeBuffersGo(t *testing.T) {
	t.Parallel()
	w := &sinkWriter{header: http.Header{}}
	s := &session{h: New(Deps{}), out: httpOut(w)}
	s.buf = append(make([]byte, 0, 512), "data: x\n\n"...)
	if !s.flush() || cap(s.buf) != 512 {
		t.Fatalf("small buffer: cap %d after flush, want 512 kept", cap(s.buf))
	}
	s.buf = append(make([]byte, 0, 2*maxKeptBuf), "data: x\n\n"...)
	if !s.flush() || s.buf != nil || w.written() != 2 {
		t.Fatalf("large buffer kept (cap %d), %d events written", cap(s.buf), w.written())
	}
}

// deliverLoop is the timed part of the delivery benchmarks: m delivered
// and flushed once per op, reported as process CPU per delivery.
func deliverLoop(b *testing.B, s *session, m *pubsub.Message) {
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		s.deliver(m)
		if !s.flush() {
			b.Fatal("flush failed")
		}
	}
	b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/delivery")
}
