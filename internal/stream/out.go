package stream

import (
	"context"
	"errors"
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
// path"). So where the writer can be hijacked (the local server, any
// net/http server on HTTP/1.1) an admitted stream takes its connection
// over once net/http has sent the head and the first events (its own
// bytes, as for any stream: the status line, the headers, Date,
// Transfer-Encoding: chunked, the first chunk), and goes on as net/http
// would: every later flush one chunk, framed in the stream's own buffer
// (room kept in front of it for the size line) and sent with one write;
// the terminating chunk at a normal end. Then the connection closes (the
// client reconnects on a new one, as EventSource does).
//
// The hijack comes only once the stream is admitted and its first events
// are out, so every refusal is still net/http's answer. HTTP/1.0 (no
// chunks), a request with a body and any writer that cannot be hijacked
// (lambdaurl's, HTTP/2) keep net/http's path. A goroutine reading the
// connection stands in for net/http's background read: the client's EOF or
// an error cancels the stream's context (client-gone); bytes after the
// request (a pipelined request, which this connection does not serve) are
// read and dropped, so that closing the connection does not reset it under
// the stream's last bytes. The request handler returns at once and the
// stream runs on a goroutine of its own, which frees net/http's.

// out is a stream's writer. session.write (watchdog.go) is its one user:
// the write deadline and the watchdog stay there.
type out struct {
	w  http.ResponseWriter // nil once hijacked
	rc *http.ResponseController

	// Once hijacked:
	conn   net.Conn
	room   int  // bytes every flush keeps free in front of its buffer (chunkRoom)
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

func httpOut(w http.ResponseWriter) out { return out{w: w, rc: http.NewResponseController(w)} }

// write sends b[o.room:] and flushes it. Hijacked, it frames b as one
// chunk in place: the size line goes into the room in front, the CRLF
// after (into b's spare capacity when it has some).
func (o *out) write(b []byte) error {
	if o.conn == nil {
		// A writer without Flush (lambdaurl) sends every Write at once.
		if _, err := o.w.Write(b); err != nil {
			return err
		}
		if err := o.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	_, err := o.conn.Write(frameChunk(b, o.room))
	if err != nil {
		o.failed = true
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

func (o *out) setWriteDeadline(t time.Time) error {
	if o.conn != nil {
		return o.conn.SetWriteDeadline(t)
	}
	return o.rc.SetWriteDeadline(t)
}

// hijack takes the connection over from net/http once the head and the
// first chunk are flushed. It reports false, having changed nothing, where
// the stream stays on net/http's writer. net/http clears the connection's
// deadlines.
func (o *out) hijack(r *http.Request, t *hijacked) bool {
	if !r.ProtoAtLeast(1, 1) || r.ContentLength != 0 {
		return false
	}
	t.add(o)
	conn, _, err := o.rc.Hijack()
	if err != nil {
		t.remove(o)
		return false
	}
	t.set(o, conn)
	// What net/http read past the request (the bufio.Reader dropped here)
	// is a pipelined request: not served, the connection closes after
	// the stream.
	o.w, o.rc = nil, nil // net/http's response and connection can go
	o.conn, o.room = conn, chunkRoom
	o.ctx, o.cancel = detach(r.Context())
	if r.Context().Err() != nil {
		o.cancel() // the client left before the hijack: net/http saw it
	}
	go watchClient(conn, o.cancel)
	return true
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

// end ends a hijacked response once the stream is over: the terminating
// chunk within by, unless a write failed, then the connection's close.
func (o *out) end(by time.Time) {
	if o.conn == nil {
		return
	}
	if !o.failed && o.conn.SetWriteDeadline(by) == nil {
		_, _ = o.conn.Write(lastChunk)
	}
	_ = o.conn.Close()
	o.cancel()
}

// hijacked tracks the streams on hijacked connections, which net/http's
// Shutdown neither waits for nor closes: Wait and Cut do. A stream is
// counted from before its hijack, so that a Shutdown that no longer sees
// its connection cannot miss it here either.
type hijacked struct {
	mu    sync.Mutex
	conns map[*out]net.Conn // nil until the hijack succeeded
	none  chan struct{}     // closed when the last one ends; nil while none is open
}

func (t *hijacked) add(o *out) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[*out]net.Conn{}
	}
	if t.none == nil {
		t.none = make(chan struct{})
	}
	t.conns[o] = nil
}

func (t *hijacked) set(o *out, c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conns[o] = c
}

func (t *hijacked) remove(o *out) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, o)
	if len(t.conns) == 0 && t.none != nil {
		close(t.none)
		t.none = nil
	}
}

// Wait waits until every stream served on a hijacked connection has ended
// (lease released, end logged, connection closed), or ctx ends. A graceful
// stop drains (Drain), stops its HTTP server (http.Server.Shutdown waits
// for the other streams) and then waits here.
func (h *Handler) Wait(ctx context.Context) error {
	for {
		h.raw.mu.Lock()
		none := h.raw.none
		h.raw.mu.Unlock()
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

// Cut closes the connections of the streams served on hijacked
// connections, which then end at once, as http.Server.Close cuts the
// others.
func (h *Handler) Cut() {
	h.raw.mu.Lock()
	defer h.raw.mu.Unlock()
	for _, c := range h.raw.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}
