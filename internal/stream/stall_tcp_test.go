package stream

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
)

// TestStalledWriteOverTCPEndsTheStream: README's "a write that stalls for
// WriteTimeout ends the stream (write-stalled)" through the writer of a
// real server, which takes write deadlines: the client is a TCP
// connection that reads the first events and then stops reading, so once
// the socket buffers are full the server's write blocks in the kernel.
// The stream must end by itself, log why and free its lease.
func TestStalledWriteOverTCPEndsTheStream(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond // Timing.WriteTimeout (10s by default)
	u := newUnitWith(t, 1024, func(d *Deps) { d.Timing.WriteTimeout = stall })
	srv := httptest.NewServer(u.h.Alerts())
	t.Cleanup(srv.Close)
	tk := u.ticket("1", "C01")

	// A small receive buffer, so the buffers fill with little data.
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	conn, err := dialer.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil { // every read below is bounded
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "GET /sse/alerts?ticket=%s HTTP/1.1\r\nHost: test\r\n\r\n", url.QueryEscape(tk)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v %v", resp, err)
	}
	for line := ""; !strings.Contains(line, `"connected"`); {
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatalf("before the connected event: %v", err)
		}
	}
	// From here on the client reads nothing. Alerts of 48 KiB, far more than
	// the socket buffers hold and fewer than the stream's queue (so the
	// stream cannot end as overflow instead).
	payload := fmt.Sprintf(`{"deviceId":"C01","alert":{"pad":%q}}`, strings.Repeat("x", 48<<10))
	for range 300 {
		if err := u.rdb.Publish(t.Context(), u.keys.Channel(channel.Alert), payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(5 * time.Second)
	for u.h.Open() != 0 || !strings.Contains(u.logs.String(), `"reason":"write-stalled"`) {
		select {
		case <-deadline:
			t.Fatalf("stream still open with a client that stopped reading (%d open):\n%.2000s", u.h.Open(), u.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if counts, _, err := u.reg.List(t.Context(), "1", u.clock.Now()); err != nil || counts.Alerts != 0 {
		t.Fatalf("lease not released: %+v %v", counts, err)
	}
}
