package stream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Where a stream's bytes go.
//
// Through net/http's ResponseWriter, a stream costs net/http's connection
// for as long as it is open: the goroutine that served the request (its
// stack grown by the connect), the background read that tells when the
// client leaves, the connection's 4 KiB read and write buffers and the
// response's 2 KiB buffer; and every flush goes through that buffer,
// net/http's chunk writer (the chunk size by fmt), a copy into the
// connection's buffer and a lock (docs/benchmarks.md, "the stream's hot
// path"). So a handler that serves many streams from one process (the
// local server, the test harnesses: Handler.TakeConns) lets each stream
// take its connection over from net/http, where the writer can hand it
// (HTTP/1.1 on a net/http server), once net/http has sent the head and the
// first events (its own bytes, as for any stream: the status line, the
// headers, Date, Transfer-Encoding: chunked, the first chunk). The stream
// then goes on as net/http would: every later flush one chunk, framed in
// the stream's own buffer (room kept in front of it for the size line) and
// sent with one write; the terminating chunk at a normal end. Then the
// connection closes (the client reconnects on a new one, as EventSource
// does).
//
// The takeover comes only once the stream is admitted and its first
// events are out, so every refusal is still net/http's answer. HTTP/1.0
// (no chunks), a request with a body and any writer that cannot be
// hijacked (HTTP/2) keep net/http's path. A goroutine reading the
// connection stands in for net/http's background read: the client's EOF
// or an error cancels the stream's context (client-gone); bytes after the
// request (a pipelined request, which this connection does not serve) are
// read and dropped, so that closing the connection does not reset it under
// the stream's last bytes. The request handler returns at once and the
// stream runs on a goroutine of its own, which frees net/http's.
//
// The Lambda functions never call TakeConns (urlfn's writer cannot be
// hijacked anyway), and all of the takeover is reached only through the
// interfaces conns and rawWriter, whose implementations only TakeConns
// creates: their binaries do not carry it.

// out is a stream's writer. session.write (watchdog.go) is its one user:
// the write deadline and the watchdog stay there.
type out struct {
	w  http.ResponseWriter // nil once taken over
	rc *http.ResponseController

	raw  rawWriter // the connection once taken over (rawConn)
	room int       // bytes every flush keeps free in front of its buffer (chunkRoom once taken over)
}

// rawWriter is a connection taken over from net/http.
type rawWriter interface {
	// write sends b[room:] as one chunk, framed in place.
	write(b []byte, room int) error
	setWriteDeadline(t time.Time) error
}

func httpOut(w http.ResponseWriter) out { return out{w: w, rc: http.NewResponseController(w)} }

// write sends b[o.room:] and flushes it.
func (o *out) write(b []byte) error {
	if o.raw != nil {
		return o.raw.write(b, o.room)
	}
	// A writer without Flush sends every Write at once (urlfn.Streaming's
	// Flush only sends the head).
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	if err := o.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (o *out) setWriteDeadline(t time.Time) error {
	if o.raw != nil {
		return o.raw.setWriteDeadline(t)
	}
	return o.rc.SetWriteDeadline(t)
}

// conns serves streams on connections taken over from net/http.
type conns interface {
	// take takes s's connection over once the head and the first chunk
	// are flushed (net/http clears the connection's deadlines then). It
	// reports false, having changed nothing, where s stays on net/http's
	// writer.
	take(s *session, r *http.Request) bool
	// serve runs the taken-over stream s on its own goroutine (Handler.run)
	// and ends its response.
	serve(s *session, malformed int64)
}

// TakeConns lets this handler's streams take their connections over from
// the net/http server that serves them, where it can hand them over; see
// out.go. Call it before serving. Wait and Cut are for a graceful stop.
func (h *Handler) TakeConns() { h.conns = &hijacked{} }

// rawConn is a stream's connection taken over from net/http.
type rawConn struct {
	net.Conn
	failed bool // a write failed: the response cannot be ended cleanly
	// ctx is the stream's context: net/http cancels the request's when
	// the handler returns, and no longer when the client leaves.
	ctx    context.Context
	cancel context.CancelFunc
}

// chunkRoom fits a chunk's size line: 16 hex digits and CRLF.
const chunkRoom = 16 + 2

// lastChunk ends a chunked body without trailers.
var lastChunk = []byte("0\r\n\r\n")

// write frames b as one chunk in place: the size line goes into the room
// in front, the CRLF after (into b's spare capacity when it has some).
func (c *rawConn) write(b []byte, room int) error {
	_, err := c.Write(frameChunk(b, room))
	if err != nil {
		c.failed = true
	}
	return err
}

// frameChunk turns b[room:] into an HTTP/1.1 chunk that starts inside the
// room: the size in lowercase hex (as net/http writes it) and CRLF before
// the data, CRLF after it.
func frameChunk(b []byte, room int) []byte {
	var size [16]byte
	hex := strconv.AppendUint(size[:0], uint64(len(b)-room), 16)
	start := room - len(hex) - 2
	copy(b[start:], hex)
	b[room-2], b[room-1] = '\r', '\n'
	return append(b[start:], '\r', '\n')
}

func (c *rawConn) setWriteDeadline(t time.Time) error { return c.SetWriteDeadline(t) }

// end ends the response once the stream is over: the terminating chunk
// within by, unless a write failed, then the connection's close.
func (c *rawConn) end(by time.Time) {
	if !c.failed && c.SetWriteDeadline(by) == nil {
		_, _ = c.Write(lastChunk)
	}
	_ = c.Close()
	c.cancel()
}

// hijacked is conns through http.ResponseController.Hijack. It tracks the
// streams it took over, which net/http's Shutdown neither waits for nor
// closes: Wait and Cut do. A stream is counted from before its hijack, so
// that a Shutdown that no longer sees its connection cannot miss it here
// either.
type hijacked struct {
	mu    sync.Mutex
	conns map[*session]net.Conn // nil until the hijack succeeded
	none  chan struct{}         // closed when the last one ends; nil while none is open
}

func (t *hijacked) take(s *session, r *http.Request) bool {
	if !r.ProtoAtLeast(1, 1) || r.ContentLength != 0 {
		return false
	}
	t.add(s)
	conn, _, err := s.out.rc.Hijack()
	if err != nil {
		t.remove(s)
		return false
	}
	t.set(s, conn)
	// What net/http read past the request (the bufio.Reader dropped here)
	// is a pipelined request: not served, the connection closes after
	// the stream. net/http's response and connection can go.
	c := &rawConn{Conn: conn}
	c.ctx, c.cancel = detach(r.Context())
	if r.Context().Err() != nil {
		c.cancel() // the client left before the hijack: net/http saw it
	}
	s.out = out{raw: c, room: chunkRoom}
	go watchClient(conn, c.cancel)
	return true
}

func (t *hijacked) serve(s *session, malformed int64) {
	c := s.out.raw.(*rawConn)
	go func() {
		defer t.remove(s) // last: the response is over
		defer func() {
			// net/http's guard (web.Wrap, its own recover) is no longer
			// around this goroutine.
			if v := recover(); v != nil {
				s.h.d.Log.ErrorContext(c.ctx, "stream panic", slog.Any("panic", v))
			}
		}()
		defer func() { c.end(time.Now().Add(s.writeBudget())) }()
		s.h.run(c.ctx, s, malformed)
	}()
}

// detach is the stream's context after a hijack: the request's values (a
// logger's request id), its deadline if it had one, and a cancel of its
// own.
func detach(req context.Context) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(req)
	if dl, ok := req.Deadline(); ok {
		return context.WithDeadline(ctx, dl)
	}
	return context.WithCancel(ctx)
}

// watchClient cancels the stream when the client leaves (EOF) or the
// connection fails, as net/http's background read does until the hijack;
// it returns then, or when the stream closes the connection. What the
// client sends meanwhile is dropped.
func watchClient(conn net.Conn, cancel context.CancelFunc) {
	defer cancel()
	b := make([]byte, 1) // an idle stream's client sends nothing
	for {
		if _, err := conn.Read(b); err != nil {
			return
		}
		if len(b) == 1 {
			b = make([]byte, 512)
		}
	}
}

func (t *hijacked) add(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[*session]net.Conn{}
	}
	if t.none == nil {
		t.none = make(chan struct{})
	}
	t.conns[s] = nil
}

func (t *hijacked) set(s *session, c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conns[s] = c
}

func (t *hijacked) remove(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, s)
	if len(t.conns) == 0 && t.none != nil {
		close(t.none)
		t.none = nil
	}
}

// Wait waits until every stream served on a connection taken over
// (TakeConns) has ended (lease released, end logged, connection closed),
// or ctx ends. A graceful stop drains (Drain), stops its HTTP server
// (http.Server.Shutdown waits for the other streams) and then waits here.
func (h *Handler) Wait(ctx context.Context) error {
	t, _ := h.conns.(*hijacked)
	if t == nil {
		return nil
	}
	for {
		t.mu.Lock()
		none := t.none
		t.mu.Unlock()
		if none == nil {
			return nil
		}
		select {
		case <-none:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Cut closes the connections of the streams served on connections taken
// over (TakeConns), which then end at once, as http.Server.Close cuts the
// others.
func (h *Handler) Cut() {
	t, _ := h.conns.(*hijacked)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}
