package urlfn

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Streaming serves an http.Handler on a RESPONSE_STREAM function URL, in
// lambdaurl.Wrap's place, with a cheaper writer.
//
// lambdaurl's writer is an io.Pipe to the Runtime API client's POST: every
// Write waits until the client's copy has read it (two goroutine
// hand-offs), and it takes no write deadline, so a stream's watchdog runs
// each write on a goroutine of its own with a timer (two more). Here a
// Write appends to the response's buffer and returns; the client's copy
// (events' Read after the prelude) takes everything buffered at once, so
// under load several writes go as one chunk. Past streamLimit buffered
// bytes a Write waits for the copy to drain, at most until the write
// deadline (SetWriteDeadline, through http.ResponseController), and then
// fails with os.ErrDeadlineExceeded, as a net/http connection's write
// does. Once the client closes the body (its POST ended, sent or failed)
// every Write fails at once.
//
// As lambdaurl: the handler runs on a goroutine of its own and the
// response (status, headers, Set-Cookie as cookies, the other headers'
// values joined by ",") goes at its first Write, WriteHeader or Flush,
// 200 if it returns without any; the body ends when it returns. Unlike
// lambdaurl, the request is Buffered's (cookies included), there is no
// content-type detection and no lambdaurl.RequestFromContext.
func Streaming(h http.Handler) StreamHandler {
	return func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		r, serve := prepare(ctx, *req, h)
		w := &streamWriter{
			resp:  &events.LambdaFunctionURLStreamingResponse{},
			ready: make(chan struct{}),
			body:  &streamBody{},
		}
		w.body.readable.L = &w.body.mu
		w.resp.Body = w.body
		go func() {
			defer w.body.end()
			defer w.writeHeader(http.StatusOK) // a handler that wrote nothing: 200
			serve.ServeHTTP(w, r)
		}()
		<-w.ready
		return w.resp, nil
	}
}

// StreamHandler is what lambda.Start takes for a RESPONSE_STREAM function
// URL (lambdaurl.Wrap's type).
type StreamHandler func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)

// streamLimit is how many buffered bytes a Write waits below: two of the
// Runtime API client's 32 KiB reads. A Write is taken whole, so the buffer
// may hold one write more.
const streamLimit = 64 << 10

// streamWriter is the handler's ResponseWriter.
type streamWriter struct {
	header http.Header
	sent   bool // the response's status and headers are taken
	resp   *events.LambdaFunctionURLStreamingResponse
	ready  chan struct{} // closed once resp has its status and headers
	body   *streamBody
}

func (w *streamWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *streamWriter) WriteHeader(code int) { w.writeHeader(code) }

func (w *streamWriter) Write(p []byte) (int, error) {
	w.writeHeader(http.StatusOK)
	return w.body.write(p)
}

// FlushError sends the response's head if it has not gone; the bytes of
// every Write are already on their way to the client.
func (w *streamWriter) FlushError() error {
	w.writeHeader(http.StatusOK)
	return nil
}

// SetWriteDeadline bounds how long a Write waits for room (a zero t: no
// bound). A Write after t that finds room still succeeds, as
// http.ResponseController allows for buffered data.
func (w *streamWriter) SetWriteDeadline(t time.Time) error {
	w.body.setDeadline(t)
	return nil
}

// writeHeader takes the response's status and headers, once, as
// lambdaurl's does. The header map is converted here, on the handler's
// goroutine, so that a later change to it does not race with the prelude.
func (w *streamWriter) writeHeader(code int) {
	if w.sent {
		return
	}
	w.sent = true
	w.resp.StatusCode = code
	if len(w.header) > 0 {
		w.resp.Headers = make(map[string]string, len(w.header))
		for k, v := range w.header {
			if k == "Set-Cookie" {
				w.resp.Cookies = v
			} else {
				w.resp.Headers[k] = strings.Join(v, ",")
			}
		}
	}
	close(w.ready)
}

var (
	// errSent is what a Write returns once the client has closed the body.
	errSent = fmt.Errorf("urlfn: response body closed by the Runtime API client: %w", io.ErrClosedPipe)
	// errWriteTimeout is what a Write returns that found no room by its
	// deadline.
	errWriteTimeout = fmt.Errorf("urlfn: write: %w", os.ErrDeadlineExceeded)
)

// streamBody is the response's body: what the handler wrote and the
// client's copy has not read yet.
type streamBody struct {
	mu       sync.Mutex
	buf      *[]byte // nil when empty: an idle stream holds no buffer (bufs)
	ended    bool    // the handler returned: EOF once buf is read
	closed   bool    // the client closed the body: writes fail
	deadline time.Time

	readable   sync.Cond // Read waits on it for bytes or the end
	readWaits  bool
	room       chan struct{} // a Write waiting for room takes a token (made on first wait)
	writeWaits bool
}

// bufs holds the buffers of the streams that have nothing buffered, so that
// many idle streams share a few buffers. Larger than bufKeep is dropped.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const bufKeep = 256 << 10

func (b *streamBody) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.buf != nil && len(*b.buf) >= streamLimit && !b.closed {
		if err := b.waitRoom(); err != nil {
			return 0, err
		}
	}
	if b.closed {
		return 0, errSent
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.buf == nil {
		b.buf = bufs.Get().(*[]byte)
	}
	*b.buf = append(*b.buf, p...)
	if b.readWaits {
		b.readable.Signal()
	}
	return len(p), nil
}

// waitRoom waits, with b.mu held, until a Read or Close or a new deadline
// wakes it, or the deadline passes.
func (b *streamBody) waitRoom() error {
	dl := b.deadline
	var expired <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return errWriteTimeout
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	if b.room == nil {
		b.room = make(chan struct{}, 1)
	}
	b.writeWaits = true
	b.mu.Unlock()
	var err error
	select {
	case <-b.room:
	case <-expired:
		err = errWriteTimeout
	}
	b.mu.Lock()
	b.writeWaits = false
	return err
}

// wakeWriter wakes a waiting Write, with b.mu held.
func (b *streamBody) wakeWriter() {
	if b.writeWaits {
		select {
		case b.room <- struct{}{}:
		default:
		}
	}
}

func (b *streamBody) setDeadline(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deadline = t
	b.wakeWriter() // a waiting Write takes the new deadline
}

// Read takes up to len(p) of what is buffered, waiting until there is
// some; io.EOF once the handler has returned and all is read, or after
// Close.
func (b *streamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.buf == nil {
		if b.ended || b.closed {
			return 0, io.EOF
		}
		b.readWaits = true
		b.readable.Wait()
		b.readWaits = false
	}
	n := copy(p, *b.buf)
	if rest := len(*b.buf) - n; rest > 0 {
		*b.buf = (*b.buf)[:copy(*b.buf, (*b.buf)[n:])]
	} else {
		b.release()
	}
	b.wakeWriter()
	return n, nil
}

// release gives the buffer back, with b.mu held.
func (b *streamBody) release() {
	if b.buf == nil {
		return
	}
	if cap(*b.buf) <= bufKeep {
		*b.buf = (*b.buf)[:0]
		bufs.Put(b.buf)
	}
	b.buf = nil
}

// end is the handler's return: the client reads what is left, then EOF.
func (b *streamBody) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	if b.readWaits {
		b.readable.Signal()
	}
}

// Close is the Runtime API client's, after its POST ended: what is left is
// dropped, and every Write fails from now on.
func (b *streamBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.release()
	b.readable.Broadcast()
	b.wakeWriter()
	return nil
}
