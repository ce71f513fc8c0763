package devserver_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/logtest"
)

// TestCloseWaitsForHijackedStreams: the local server's streams run on
// connections taken over from net/http (internal/stream, out.go), which
// http.Server.Shutdown no longer tracks. Close still drains them (the
// client gets "unavailable" and the end) and returns only once each has
// logged its end and released its lease, before Redis stops.
func TestCloseWaitsForHijackedStreams(t *testing.T) {
	t.Parallel()
	logs := &logtest.Log{}
	s := start(t, map[string]string{"LOG_LEVEL": "info"}, devserver.Options{Log: logs})
	token, _ := login(t, s, "1")
	var streams []<-chan event
	for _, path := range []string{"/sse/stream?deviceId=C01&ticket=" + ticketFor(t, s, token, "data"), "/sse/alerts?ticket=" + ticketFor(t, s, token, "alerts")} {
		events := open(t, s.URL+path)
		next(t, events, "system")
		streams = append(streams, events)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ends := logs.Lines("stream end")
	if len(ends) != 2 || ends[0]["reason"] != "draining" || ends[1]["reason"] != "draining" {
		t.Fatalf("stream end lines when Close returned: %v, want two with reason draining", ends)
	}
	if strings.Contains(logs.String(), "lease release failed") {
		t.Fatalf("a lease was released after Redis stopped:\n%s", logs.String())
	}
	for _, events := range streams {
		if e := next(t, events, "system"); !strings.Contains(e.data, `"unavailable"`) {
			t.Fatalf("stream ended with %s, want system unavailable (drain)", e.data)
		}
		for ended, timeout := false, time.After(wait); !ended; {
			select {
			case _, open := <-events:
				ended = !open
			case <-timeout:
				t.Fatalf("stream still open %s after Close", wait)
			}
		}
	}
}

// TestStreamsTakeTheirConnections: the local server's streams run on
// connections taken over from net/http (TakeConns): when a stream ends its
// connection closes, where net/http would keep it for the next request.
func TestStreamsTakeTheirConnections(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{})
	token, _ := login(t, s, "1")
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /sse/stream?deviceId=C01&ticket="+ticketFor(t, s, token, "data")+" HTTP/1.1\r\nHost: local.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for buf := make([]byte, 4096); !bytes.Contains(got, []byte(`"connected"`)); {
		n, err := conn.Read(buf)
		if got = append(got, buf[:n]...); err != nil {
			t.Fatalf("before the connected event: %v after %q", err, got)
		}
	}
	s.App.Streams.Drain()
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection still open after the stream ended: %v", err)
	}
	if !bytes.HasSuffix(rest, []byte("\r\n0\r\n\r\n")) {
		t.Fatalf("stream's last bytes %q, want its terminating chunk", rest)
	}
}
