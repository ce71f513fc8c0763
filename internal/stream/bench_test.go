//go:build unix

package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
)

// Benchmarks of the whole service in one process: real Redis, the app as
// deployed (app.New with the real clock), httptest over loopback, HTTP/1.1,
// and 1,000 raw-socket SSE clients. docs/benchmarks.md has the numbers,
// the targets, and what each number includes.

const (
	benchStreams   = 1000
	benchDevices   = 100                   // so 10 streams per device
	benchUsers     = 100                   // user i owns device i
	benchOpenConc  = 8                     // streams opened concurrently during setup
	fanoutTick     = 10 * time.Millisecond // one pipeline per tick
	fanoutWarmup   = time.Second           // traffic before measuring
	fanoutWindow   = 3 * time.Second       // one op of BenchmarkFanout
	fanoutDrainMax = 10 * time.Second      // a delivery later than this is lost
)

// benchService is the service as app.New assembles it, with limits high
// enough that 1,000 streams from one address and 100 users are admitted
// (and refused loudly, not evicted, if they were not).
type benchService struct {
	rdb     *redis.Client // setup and publishing; not the service's client
	keys    config.Keys
	app     *app.App
	srv     *httptest.Server
	addr    string
	tickets []string // by user
}

func newBenchService(b *testing.B) *benchService {
	b.Helper()
	rdb, prefix := redistest.Client(b)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	cfg.Keys = config.DefaultKeys().WithPrefix(prefix)
	cfg.StreamTicketSecret.Value = strings.Repeat("t", 32)
	cfg.RealtimeMinInterval = 0
	cfg.MaxDataStreams = benchStreams
	cfg.MaxStreamsPerIP = 10 * benchStreams
	cfg.ConnectionLimitPolicy = config.PolicyReject
	// The service has a client of its own, with the deployed settings.
	cfg.RedisURL = redistest.URL(b)
	svc, err := app.NewRedis(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close() })
	a, err := app.New(cfg, svc, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	a.LoadScripts(context.Background()) // as the stream function and the local server do at start
	a.Streams.TakeConns()               // as the local server
	s := &benchService{rdb: rdb, keys: cfg.Keys, app: a, srv: httptest.NewServer(a.Mux())}
	s.addr = s.srv.Listener.Addr().String()
	b.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
		a.Streams.Cut() // the hijacked ones, which the server no longer closes
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Streams.Wait(ctx); err != nil {
			b.Errorf("streams still open: %v", err)
		}
		a.Hub.Close()
	})
	ctx := context.Background()
	for u := range benchUsers {
		user := benchUser(u)
		if err := rdb.SAdd(ctx, cfg.Keys.UserDevices(user), benchDevice(u%benchDevices)).Err(); err != nil {
			b.Fatal(err)
		}
		tk, _, err := a.Tickets.Issue(ctx, user, purpose.Data, 10*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		s.tickets = append(s.tickets, tk)
	}
	return s
}

func benchUser(i int) string   { return fmt.Sprintf("u%03d", i) }
func benchDevice(i int) string { return fmt.Sprintf("C%03d", i) }

// path is the data stream URL of the i-th stream: device i%100, by its
// owner, without the status snapshot.
func (s *benchService) path(i int) string {
	d := i % benchDevices
	return "/sse/stream?includeStatus=false&deviceId=" + benchDevice(d) + "&ticket=" + url.QueryEscape(s.tickets[d])
}

// sseConn is the cheapest client that still speaks HTTP/1.1 properly: a raw
// socket, one small read buffer, the chunked decoder of net/http (no
// transport goroutines) and a line reader over the body.
type sseConn struct {
	conn net.Conn
	body *bufio.Reader
}

const clientBuf = 1024

func dialSSE(addr, path string) (*sseConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	// Until the first event, every read is bounded: a stream that is never
	// admitted fails the benchmark instead of hanging it.
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		conn.Close()
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, clientBuf), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		conn.Close()
		return nil, fmt.Errorf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseConn{conn: conn, body: bufio.NewReaderSize(resp.Body, clientBuf)}
	// The first event (connected) proves the stream is live.
	for {
		line, err := c.line()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("first event: %w", err)
		}
		if len(line) == 1 {
			// The readers then run as long as the benchmark.
			if err := conn.SetDeadline(time.Time{}); err != nil {
				conn.Close()
				return nil, err
			}
			return c, nil
		}
	}
}

// line returns the next line including its '\n', valid until the next
// call. A line longer than the buffer is skipped and comes back empty (the
// benchmarks need only short ones).
func (c *sseConn) line() ([]byte, error) {
	line, err := c.body.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = c.body.ReadSlice('\n')
	}
	return nil, err
}

// openAll opens n streams, benchOpenConc at a time.
func openAll(addr string, n int, path func(int) string) ([]*sseConn, error) {
	conns := make([]*sseConn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, benchOpenConc)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) {
				conns[i], errs[i] = dialSSE(addr, path(i))
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

func closeAll(conns []*sseConn) {
	for _, c := range conns {
		if c != nil {
			c.conn.Close()
		}
	}
}

// raiseFDLimit makes sure the process may hold need descriptors (each
// stream costs two here: client and server side).
func raiseFDLimit(b *testing.B, need uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		b.Skipf("RLIMIT_NOFILE hard limit %d < %d descriptors needed", lim.Max, need)
	}
	old := lim
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("raise RLIMIT_NOFILE to %d: %v", need, err)
	}
	b.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fanoutReader is one stream's client: it checks that its device's
// messages arrive complete and in order, and records publish->receive
// latencies.
type fanoutReader struct {
	c        *sseConn
	dev      int
	received *atomic.Int64 // shared: data events, all streams

	mu      sync.Mutex
	next    int64 // next sequence number expected
	got     int64
	bad     int64 // gaps, duplicates, unreadable stamps
	lat     []time.Duration
	lastRcv int64 // unix nanos of the newest receipt

	closing atomic.Bool
	ended   atomic.Bool // the server ended the stream
}

var (
	seqKey = []byte(`"seq":`)
	pubKey = []byte(`,"pub":`)
)

func (r *fanoutReader) run() {
	for {
		line, err := r.c.line()
		if err != nil {
			if !r.closing.Load() {
				r.ended.Store(true)
			}
			return
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		now := time.Now().UnixNano()
		i := bytes.Index(line, seqKey)
		if i < 0 {
			continue // a system event
		}
		seq, rest := leadingInt(line[i+len(seqKey):])
		pub := int64(-1)
		if bytes.HasPrefix(rest, pubKey) {
			pub, _ = leadingInt(rest[len(pubKey):])
		}
		r.mu.Lock()
		switch {
		case pub < 0 || seq < 0:
			r.bad++
		case seq != r.next:
			r.bad++
			r.next = seq + 1
		default:
			r.next++
		}
		r.got++
		r.lat = append(r.lat, time.Duration(now-pub))
		r.lastRcv = max(r.lastRcv, now)
		r.mu.Unlock()
		r.received.Add(1)
	}
}

// leadingInt parses the decimal digits at the start of b (-1 if none).
func leadingInt(b []byte) (int64, []byte) {
	n, i := int64(0), 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return -1, b
	}
	return n, b[i:]
}

// fanoutPayload is a realtime-shaped message (the simulator's eight tags)
// carrying its per-device sequence number and publish time.
func fanoutPayload(dst []byte, dev string, seq, pub int64, cycn int) []byte {
	dst = append(dst, `{"deviceId":"`...)
	dst = append(dst, dev...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"pub":`...)
	dst = strconv.AppendInt(dst, pub, 10)
	dst = append(dst, `,"data":{"devId":"`...)
	dst = append(dst, dev...)
	dst = append(dst, `","Data":{"CYCN":`...)
	dst = strconv.AppendInt(dst, int64(cycn), 10)
	dst = append(dst, `,"MT":45.1,"OPM":3,"OT":52.3,"T1":220.1,"T2":215.4,"T3":210.2,"T4":205.7}},"timestamp":"2026-01-27T12:34:56.789Z"}`...)
	return dst
}

// publisher paces channel messages: every tick, one pipeline of perTick
// messages, round-robin over the devices, on the SPC channel (a FIFO
// kind: never coalesced, so every message must reach every stream).
type publisher struct {
	rdb     *redis.Client
	channel string
	perTick int
	seq     [benchDevices]int64 // messages published per device
	k       int
	buf     []byte
}

// run publishes for d at the target rate; it catches up (without
// sleeping) when a tick is late, so a slow service shows as a lower
// achieved rate or a higher latency, not as fewer messages.
func (p *publisher) run(b *testing.B, d time.Duration) (start time.Time, msgs int) {
	ctx := context.Background()
	ticks := int(d / fanoutTick)
	start = time.Now()
	for t := range ticks {
		if wait := time.Until(start.Add(time.Duration(t) * fanoutTick)); wait > 0 {
			time.Sleep(wait)
		}
		pipe := p.rdb.Pipeline()
		pub := time.Now().UnixNano()
		for range p.perTick {
			d := p.k % benchDevices
			p.k++
			p.buf = fanoutPayload(p.buf[:0], benchDevice(d), p.seq[d], pub, p.k)
			p.seq[d]++
			pipe.Publish(ctx, p.channel, string(p.buf))
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			b.Fatalf("publish: %v", err)
		}
		for _, c := range cmds {
			if n := c.(*redis.IntCmd).Val(); n != 1 {
				b.Fatalf("a message reached %d subscribers, want the service's one", n)
			}
		}
		msgs += p.perTick
	}
	return start, msgs
}

// BenchmarkFanout measures the whole delivery path: a Redis publisher ->
// the service's one subscription -> hub -> 1,000 open SSE streams over
// loopback HTTP/1.1 (10 per device) -> clients. The publisher sends rate
// messages/s (10 deliveries each) in one pipeline per 10 ms; rate=5000 is
// the product target (50,000 deliveries/s), rate=1000 shows the floor at
// a fifth of it. One op is a 3 s window of traffic (after 1 s of warm-up),
// so ns/op is the window plus the time the last delivery took;
// -benchtime=5x measures 5 windows. Any lost, duplicated or reordered
// delivery, and any stream the server ended (queue overflow), fails the
// benchmark.
//
// cpu-µs/delivery is the whole process's CPU time (user+sys) over the
// windows divided by the deliveries: it includes the 1,000 clients and
// the publisher, so it is an upper bound for the server. Redis runs in its
// own process and is not included.
func BenchmarkFanout(b *testing.B) {
	for _, rate := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchFanout(b, rate) })
	}
}

func benchFanout(b *testing.B, rate int) {
	raiseFDLimit(b, 2*benchStreams+256)
	s := newBenchService(b)
	conns, err := openAll(s.addr, benchStreams, s.path)
	if err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	readers := make([]*fanoutReader, benchStreams)
	var wg sync.WaitGroup
	for i, c := range conns {
		readers[i] = &fanoutReader{c: c, dev: i % benchDevices, received: &received, lat: make([]time.Duration, 0, 256)}
		// The label lets a CPU profile split the clients' share from the
		// server's: go tool pprof -tags cpu.out.
		wg.Go(func() {
			pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) { readers[i].run() })
		})
	}
	b.Cleanup(func() {
		for _, r := range readers {
			r.closing.Store(true)
		}
		closeAll(conns)
		wg.Wait()
	})
	if n := s.app.Streams.Open(); n != benchStreams {
		b.Fatalf("%d streams open, want %d", n, benchStreams)
	}

	p := &publisher{rdb: s.rdb, channel: s.keys.Channel(channel.SPC), perTick: rate * int(fanoutTick) / int(time.Second)}
	published := 0
	// settle publishes for d and waits until every stream has every
	// message; it returns when the window started and the newest receipt.
	settle := func(d time.Duration) (start time.Time, last time.Time, msgs int) {
		pprof.Do(context.Background(), pprof.Labels("side", "publisher"), func(context.Context) { start, msgs = p.run(b, d) })
		published += msgs
		want := int64(published) * (benchStreams / benchDevices)
		deadline := time.Now().Add(fanoutDrainMax)
		for received.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := received.Load(); got != want {
			ended := 0
			for _, r := range readers {
				if r.ended.Load() {
					ended++
				}
			}
			b.Fatalf("%d of %d deliveries arrived within %v: %d lost; %d streams ended by the server",
				got, want, fanoutDrainMax, want-got, ended)
		}
		var lastRcv int64
		for _, r := range readers {
			r.mu.Lock()
			lastRcv = max(lastRcv, r.lastRcv)
			r.mu.Unlock()
		}
		return start, time.Unix(0, lastRcv), msgs
	}
	collect := func(into []time.Duration) []time.Duration {
		for _, r := range readers {
			r.mu.Lock()
			into = append(into, r.lat...)
			r.lat = r.lat[:0]
			r.mu.Unlock()
		}
		return into
	}

	settle(fanoutWarmup)
	collect(nil)
	hubBefore := s.app.Hub.Stats()

	var (
		lats       []time.Duration
		cpu        time.Duration
		busy       time.Duration
		deliveries int
		mallocs    uint64
		ms         runtime.MemStats
	)
	for b.Loop() {
		runtime.ReadMemStats(&ms)
		m0, c0 := ms.Mallocs, cpuTime()
		start, last, msgs := settle(fanoutWindow)
		cpu += cpuTime() - c0
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - m0
		busy += last.Sub(start)
		deliveries += msgs * (benchStreams / benchDevices)
		lats = collect(lats)
	}

	var bad, ended int64
	for _, r := range readers {
		r.mu.Lock()
		bad += r.bad
		if r.got != p.seq[r.dev] {
			bad++
		}
		r.mu.Unlock()
		if r.ended.Load() {
			ended++
		}
	}
	if hub := s.app.Hub.Stats(); hub.Deliveries-hubBefore.Deliveries != int64(deliveries) || hub.Malformed != 0 || hub.Resets != 0 {
		b.Errorf("hub counted %d deliveries (%d malformed, %d resets), want %d",
			hub.Deliveries-hubBefore.Deliveries, hub.Malformed, hub.Resets, deliveries)
	}
	if bad > 0 || ended > 0 || len(lats) != deliveries {
		b.Fatalf("%d deliveries out of order, duplicated or missing; %d streams ended by the server; %d latencies for %d deliveries",
			bad, ended, len(lats), deliveries)
	}
	if n := s.app.Streams.Open(); n != benchStreams {
		b.Fatalf("%d streams open at the end, want %d", n, benchStreams)
	}

	slices.Sort(lats)
	pct := func(q float64) float64 {
		return float64(lats[min(len(lats)-1, int(q*float64(len(lats))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lats[len(lats)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(deliveries), "cpu-µs/delivery")
	b.ReportMetric(float64(mallocs)/float64(deliveries), "allocs/delivery")
	b.ReportMetric(float64(deliveries)/busy.Seconds(), "deliveries/s")
	b.ReportMetric(0, "lost")
}

// heapAndStacks returns the memory held by live Go objects' spans and by
// goroutine stacks, after two collections (the second frees what the
// first's finalizers and pool clean-up released).
func heapAndStacks() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// waitGoroutines waits until at most n goroutines run, so that what
// closed streams leave behind is gone before the next measurement.
func waitGoroutines(b *testing.B, n int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			b.Fatalf("%d goroutines still running, want at most %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstEvent is what the stand-in servers send before idling, shaped like
// the service's first event (retry, id, connected).
const firstEvent = "retry: 3000\nid: x0000000000000000000000000000000000000000000000\nevent: system\ndata: {\"kind\":\"connected\",\"ts\":\"2026-01-27T12:00:00.000Z\"}\n\n"

// holdListener accepts connections, answers each with an SSE response
// head and first event, and holds the socket with no goroutine and no
// buffer: what stays in the process per connection is the client (and
// the accepted socket's small descriptor object).
type holdListener struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newHoldListener(b *testing.B) *holdListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &holdListener{ln: ln, done: make(chan struct{})}
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(firstEvent), firstEvent)
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(head)); err != nil {
				c.Close()
				continue
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *holdListener) close() {
	h.ln.Close()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// idleStreamBytes opens n streams with open, has each client wait for
// more in a goroutine (as a browser's EventSource would), and returns the
// heap+stack growth per stream while they are open.
func idleStreamBytes(b *testing.B, n int, addr string, path func(int) string) float64 {
	b.Helper()
	before := heapAndStacks()
	conns, err := openAll(addr, n, path)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for {
				if _, err := c.line(); err != nil {
					return
				}
			}
		})
	}
	after := heapAndStacks()
	closeAll(conns)
	wg.Wait()
	return float64(after-before) / float64(n)
}

// BenchmarkIdleStreamMemory measures what an idle stream costs in Go heap
// and goroutine stacks (runtime HeapInuse+StackInuse, after GC). Clients
// and servers share the process, so it measures three things with the
// same 1,000 cheap clients and subtracts:
//
//   - client-KiB/stream: clients against a listener that only holds the
//     accepted sockets;
//   - nethttp-KiB/stream: a bare net/http handler that sends one event and
//     blocks, minus the clients (the floor for any net/http SSE server);
//   - KiB/idle-stream: this service's data stream (lease, subscription,
//     queue, timers, net/http connection), minus the clients.
//
// Kernel socket buffers and the Redis side (lease keys) are not included.
func BenchmarkIdleStreamMemory(b *testing.B) {
	raiseFDLimit(b, 2*benchStreams+256)
	s := newBenchService(b)
	// Warm the lazy parts: the hub's Redis subscription, the Redis pool at
	// the open concurrency, net/http's pools. These stay open throughout.
	warm, err := openAll(s.addr, benchOpenConc, s.path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeAll(warm) })

	var client, nethttp, service float64
	for b.Loop() {
		base := runtime.NumGoroutine()

		hold := newHoldListener(b)
		a := idleStreamBytes(b, benchStreams, hold.ln.Addr().String(), func(int) string { return "/" })
		hold.close()
		waitGoroutines(b, base)

		bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(firstEvent))
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}))
		bb := idleStreamBytes(b, benchStreams, bare.Listener.Addr().String(), func(int) string { return "/" })
		bare.Close()
		waitGoroutines(b, base)

		c := idleStreamBytes(b, benchStreams, s.addr, s.path)
		// Closed streams release their leases in the background.
		deadline := time.Now().Add(10 * time.Second)
		for s.app.Streams.Open() > int64(len(warm)) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		waitGoroutines(b, base)

		client += a
		nethttp += bb - a
		service += c - a
	}
	n := float64(b.N) * 1024
	b.ReportMetric(service/n, "KiB/idle-stream")
	b.ReportMetric(nethttp/n, "nethttp-KiB/stream")
	b.ReportMetric(client/n, "client-KiB/stream")
}
