package devserver_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/devserver"
)

// A header block of 1.5 MiB gets the seed's JSON 431 from the local
// server, not net/http's plain text.
func TestOversizedHeadersGetJSON431(t *testing.T) {
	t.Parallel()
	s := start(t, nil, devserver.Options{})
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	go func() {
		_, _ = io.WriteString(c, "GET /sse/stream?deviceId=C01 HTTP/1.1\r\nHost: x\r\n")
		for range 24 { // 1.5 MiB
			_, _ = io.WriteString(c, "X-Junk: "+strings.Repeat("j", 64<<10)+"\r\n")
		}
		_, _ = io.WriteString(c, "\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if resp.StatusCode != 431 || json.NewDecoder(resp.Body).Decode(&body) != nil || body["statusCode"] != 431.0 {
		t.Fatalf("%d %v %v", resp.StatusCode, resp.Header, body)
	}
}
