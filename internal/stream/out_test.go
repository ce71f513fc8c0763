package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/ssetest"
)

// rawClient is an HTTP/1.x client on a bare TCP connection, so a test
// sees the response's bytes as they are on the wire.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	got  []byte
}

// rawGet sends GET target with the given protocol and header pairs on a
// new connection; every read after is bounded.
func rawGet(t *testing.T, addr, target, proto string, hdr ...string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ssetest.Wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(ssetest.Wait)); err != nil {
		t.Fatal(err)
	}
	req := "GET " + target + " " + proto + "\r\nHost: stream.test\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, conn: conn}
}

// rawData opens user's data stream of C01 on the server at addr with
// rawGet.
func (e *env) rawData(addr, user, proto string, hdr ...string) *rawClient {
	e.t.Helper()
	return rawGet(e.t, addr, "/sse/stream?deviceId=C01&ticket="+url.QueryEscape(e.ticket(user, purpose.Data)), proto, hdr...)
}

// hijacked waits until the stream of c runs on its hijacked connection: an
// update published now comes through the stream's loop, which starts after
// the hijack (the connected event comes before it).
func (e *env) hijacked(c *rawClient) {
	e.t.Helper()
	c.until(`"connected"`) // subscribed: the update cannot miss the stream
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":{"T1":220}}`)
	c.until("realtime-update")
}

// until reads until what came contains s.
func (c *rawClient) until(s string) {
	c.t.Helper()
	buf := make([]byte, 4096)
	for !bytes.Contains(c.got, []byte(s)) {
		n, err := c.conn.Read(buf)
		c.got = append(c.got, buf[:n]...)
		if err != nil {
			c.t.Fatalf("before %q: %v after %q", s, err, c.got)
		}
	}
}

// toEOF reads until the server closes the connection.
func (c *rawClient) toEOF() {
	c.t.Helper()
	rest, err := io.ReadAll(c.conn)
	c.got = append(c.got, rest...)
	if err != nil {
		c.t.Fatalf("the server did not close the connection: %v after %q", err, c.got)
	}
}

// noHijack hides Hijack from the stream handler (no Unwrap either), so a
// stream stays on net/http's writer, as where the writer cannot be
// hijacked; flushes and write deadlines still reach net/http's.
type noHijack struct{ http.ResponseWriter }

func (w noHijack) FlushError() error { return http.NewResponseController(w.ResponseWriter).Flush() }
func (w noHijack) SetWriteDeadline(d time.Time) error {
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(d)
}

// wire splits a chunked HTTP/1.1 response into its head (Date's value
// checked and replaced) and its chunks' data (each chunk's size line
// checked: lowercase hex, as net/http writes it), through the terminating
// chunk, after which nothing may follow.
func wire(t *testing.T, b []byte) (head string, chunks []string) {
	t.Helper()
	h, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no head in %q", b)
	}
	lines := strings.Split(string(h), "\r\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "Date: "); ok {
			if _, err := http.ParseTime(v); err != nil || !strings.HasSuffix(v, " GMT") {
				t.Errorf("Date %q: %v", v, err)
			}
			lines[i] = "Date: (now)"
		}
	}
	for {
		size, rest, ok := bytes.Cut(body, []byte("\r\n"))
		n, err := strconv.ParseUint(string(size), 16, 32)
		if !ok || err != nil || strings.ToLower(string(size)) != string(size) {
			t.Fatalf("chunk size line %q (%v) in %q", size, err, body)
		}
		if n == 0 {
			if string(rest) != "\r\n" {
				t.Fatalf("after the last chunk: %q, want CRLF and nothing more", rest)
			}
			return strings.Join(lines, "\r\n"), chunks
		}
		if uint64(len(rest)) < n+2 || string(rest[n:n+2]) != "\r\n" {
			t.Fatalf("chunk of %d bytes not ended by CRLF: %q", n, rest)
		}
		chunks = append(chunks, string(rest[:n]))
		body = rest[n+2:]
	}
}

// What differs between two streams of the same events: their ids (lease,
// sequence) and their jittered retries.
var streamOwn = regexp.MustCompile(`(?m)^(id|retry): .*$`)

// TestHijackedStreamIsNetHTTPsResponse: a stream served on the hijacked
// connection (out.go) puts on the wire what net/http puts there for the
// same stream: the same status line and headers (CORS and Vary of the
// middleware, Date, Transfer-Encoding: chunked, Connection: close when the
// request asked for it), one chunk per flush, the terminating chunk at a
// normal end; and then the connection closes, where net/http keeps it.
func TestHijackedStreamIsNetHTTPsResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"keep-alive", nil},
		{"request asks to close", []string{"Connection", "close"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const origin = "http://app.test"
			e := newEnv(t, func(c *config.Config) { c.CORSAllowedOrigins = []string{origin} })
			mux := e.app.Mux()
			viaNetHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mux.ServeHTTP(noHijack{w}, r) }))
			t.Cleanup(viaNetHTTP.Close)
			e.own("1", "C01")
			e.own("2", "C01")
			hdr := append([]string{"Origin", origin}, tc.hdr...)
			raw := e.rawData(e.srv.Listener.Addr().String(), "1", "HTTP/1.1", hdr...)
			ref := e.rawData(viaNetHTTP.Listener.Addr().String(), "2", "HTTP/1.1", hdr...)
			ref.until(`"connected"`)
			e.hijacked(raw)
			ref.until("realtime-update")
			e.app.Streams.Drain()
			raw.toEOF()
			if tc.hdr == nil {
				ref.until("\r\n0\r\n\r\n") // net/http keeps the connection for the next request
			} else {
				ref.toEOF()
			}

			rawHead, rawChunks := wire(t, raw.got)
			refHead, refChunks := wire(t, ref.got)
			if rawHead != refHead {
				t.Errorf("head\n%s\nwant net/http's\n%s", rawHead, refHead)
			}
			if !strings.Contains(rawHead, "\r\nAccess-Control-Allow-Origin: "+origin+"\r\n") || !strings.Contains(rawHead, "\r\nTransfer-Encoding: chunked") {
				t.Errorf("head without the middleware's or net/http's headers:\n%s", rawHead)
			}
			if len(rawChunks) != 3 || len(rawChunks) != len(refChunks) {
				t.Fatalf("%d chunks %q, net/http's %d %q; want 3 (first events, the update, the drain)", len(rawChunks), rawChunks, len(refChunks), refChunks)
			}
			for i := range rawChunks {
				if got, want := streamOwn.ReplaceAllString(rawChunks[i], "$1: *"), streamOwn.ReplaceAllString(refChunks[i], "$1: *"); got != want {
					t.Errorf("chunk %d: %q, net/http's %q", i, got, want)
				}
			}
		})
	}
}

// TestHijackedStreamSeesItsClientLeave: once the connection is the
// stream's, net/http no longer tells when the client leaves; the stream's
// own read does, at once (the fake clock never moves, so no heartbeat's
// write could find it out instead), and the lease is freed.
func TestHijackedStreamSeesItsClientLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.rawData(e.srv.Listener.Addr().String(), "1", "HTTP/1.1")
	e.hijacked(c)
	c.conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), ssetest.Wait)
	defer cancel()
	if err := e.app.Streams.Wait(ctx); err != nil {
		t.Fatalf("the stream did not end when its client left: %v", err)
	}
	if ends := e.logLines("stream end"); len(ends) != 1 || ends[0]["reason"] != "client-gone" {
		t.Fatalf("stream end lines %v, want one with reason client-gone", ends)
	}
	if counts, _, err := e.app.Registry.List(t.Context(), "1", e.clock.Now()); err != nil || counts.Total != 0 {
		t.Fatalf("lease not released: %+v %v", counts, err)
	}
}

// TestCutEndsHijackedStreams: Cut closes the streams' connections (as
// http.Server.Close cuts the others, which Shutdown and Close no longer
// see once hijacked), and Wait returns when they have ended.
func TestCutEndsHijackedStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.rawData(e.srv.Listener.Addr().String(), "1", "HTTP/1.1")
	e.hijacked(c)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := e.app.Streams.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a stream open: %v, want its deadline", err)
	}
	e.app.Streams.Cut()
	if _, err := io.ReadAll(c.conn); err != nil {
		t.Fatalf("stream not ended by Cut: %v", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), ssetest.Wait)
	defer cancel()
	if err := e.app.Streams.Wait(ctx); err != nil {
		t.Fatalf("Wait after Cut: %v", err)
	}
	if e.app.Streams.Open() != 0 || len(e.logLines("stream end")) != 1 {
		t.Fatalf("%d streams open, end lines %v", e.app.Streams.Open(), e.logLines("stream end"))
	}
}

// TestHTTP10StreamStaysOnNetHTTP: an HTTP/1.0 client cannot take chunks;
// its stream is net/http's (no chunking, the end of the body is the
// connection's close), as before the hijack existed.
func TestHTTP10StreamStaysOnNetHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.rawData(e.srv.Listener.Addr().String(), "1", "HTTP/1.0")
	c.until(`"connected"`)
	e.app.Streams.Drain()
	c.toEOF()
	head, body, _ := strings.Cut(string(c.got), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.0 200 OK\r\n") || strings.Contains(head, "Transfer-Encoding") || !strings.Contains(head, "\r\nContent-Type: text/event-stream") {
		t.Fatalf("head %q", head)
	}
	if !strings.HasPrefix(body, "retry: ") || !strings.HasSuffix(body, `"}`+"\n\n") {
		t.Fatalf("body %q, want the events unchunked", body)
	}
}

// TestBytesAfterTheRequestAreNotServed: what a client sends after its
// stream request (a pipelined request) is not answered on the hijacked
// connection: the stream ends as usual, terminating chunk included, and
// the connection closes after it, with nothing more. What came while the
// stream was open is read and dropped, so the close does not reset the
// connection under the stream's last bytes.
func TestBytesAfterTheRequestAreNotServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	c := e.rawData(e.srv.Listener.Addr().String(), "1", "HTTP/1.1")
	e.hijacked(c)
	if _, err := io.WriteString(c.conn, "GET /health HTTP/1.1\r\nHost: stream.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":2}`)
	c.until(`"data":2`) // the stream goes on
	e.app.Streams.Drain()
	c.toEOF()
	if _, chunks := wire(t, c.got); len(chunks) != 4 {
		t.Fatalf("%d chunks %q, want 4", len(chunks), chunks)
	}
}
