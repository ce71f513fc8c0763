package stream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
)

// Another user's connects, each reset by its client at a random point of
// the handshake (mid-request, during admission or subscribe, right after
// the first bytes), must not disturb user A's open streams: no
// "unavailable", and the next published messages arrive.
func TestConnectsResetMidHandshakeLeaveOtherStreamsAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.MaxStreamsPerIP = 1000 })
	e.own("1", "C01")
	e.own("2", "D01")
	data := e.open("/sse/stream?deviceId=C01&ticket=" + url.QueryEscape(e.ticket("1", purpose.Data)))
	data.expect("system", "")
	alerts := e.open("/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts)))
	alerts.expect("system", "")

	req := "GET /sse/stream?deviceId=D01&ticket=" + url.QueryEscape(e.ticket("2", purpose.Data)) +
		" HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
	addr := e.srv.Listener.Addr().String()
	const connects = 200
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range connects {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			tc := c.(*net.TCPConn)
			_ = tc.SetLinger(0) // close sends RST
			defer tc.Close()
			switch i % 4 {
			case 0: // part of the request only
				_, _ = io.WriteString(tc, req[:rand.N(len(req))])
			case 1: // the whole request, then gone within 0-5 ms
				_, _ = io.WriteString(tc, req)
				time.Sleep(time.Duration(rand.N(5000)) * time.Microsecond)
			case 2: // gone as soon as the request is out
				_, _ = io.WriteString(tc, req)
			default: // gone after the first bytes of the answer
				_, _ = io.WriteString(tc, req)
				_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = tc.Read(make([]byte, 1+rand.N(200)))
			}
		}()
	}
	wg.Wait()

	e.publish(e.keys.Channel(channel.Realtime), `{"deviceId":"C01","data":"after"}`)
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C01","alert":"after"}`)
	if ev := data.next(); ev.Name != "realtime-update" || !strings.Contains(ev.Data, "after") {
		t.Fatalf("data stream after %d reset connects: %s %s", connects, ev.Name, ev.Data)
	}
	if ev := alerts.next(); ev.Name != "machine-alert" || !strings.Contains(ev.Data, "after") {
		t.Fatalf("alerts stream after %d reset connects: %s %s", connects, ev.Name, ev.Data)
	}
	if st := e.app.Hub.Stats(); st.Resets != 0 {
		t.Fatalf("%d subscription resets", st.Resets)
	}
}

// Fifty simultaneous connects of one user under evict-oldest: whatever the
// interleaving of admissions and subscriptions, every stream but the one
// holding the lease ends by its eviction notice, with no heartbeat (the
// fake clock never fires one). Both on a fresh process, whose first
// connects read their lease back after joining, and on one whose hub was
// already listening, where a notice that came before its stream joined is
// the hub's to remember.
func TestRacingConnectsEndEveryEvictedStream(t *testing.T) {
	t.Parallel()
	for _, listening := range []bool{false, true} {
		t.Run(fmt.Sprintf("hub listening before=%v", listening), func(t *testing.T) {
			t.Parallel()
			racingConnects(t, listening)
		})
	}
}

func racingConnects(t *testing.T, listening bool) {
	e := newEnv(t, func(c *config.Config) { c.MaxStreamsPerIP = 100 })
	e.own("1", "C01")
	if listening {
		e.own("2", "C02")
		other := e.open("/sse/stream?deviceId=C02&ticket=" + url.QueryEscape(e.ticket("2", purpose.Data)))
		other.expect("system", "")
	}
	tk := url.QueryEscape(e.ticket("1", purpose.Data))
	const n = 50
	start := make(chan struct{})
	ended := make(chan struct{}, n)
	var answered sync.WaitGroup
	answered.Add(n)
	for range n {
		go func() {
			<-start
			defer func() { ended <- struct{}{} }()
			resp, err := e.srv.Client().Get(e.srv.URL + "/sse/stream?deviceId=C01&ticket=" + tk)
			answered.Done()
			if err != nil {
				t.Errorf("connect failed: %v", errors.Unwrap(err))
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				_, _ = io.Copy(io.Discard, resp.Body) // until the server ends it
			case 204: // superseded before its first byte
			default:
				t.Errorf("connect: %d", resp.StatusCode)
			}
		}()
	}
	close(start)
	answered.Wait() // every connect has its answer: no later one evicts the winner
	wait, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	gone := 0
	for gone < n-1 && wait.Err() == nil {
		select {
		case <-ended:
			gone++
		case <-wait.Done():
		}
	}
	counts, _, err := e.app.Registry.List(t.Context(), "1", e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if gone != n-1 || counts.Data != 1 {
		t.Fatalf("%d streams still open after eviction, %d leases in Redis; want 1 and 1", n-gone, counts.Data)
	}
}

// One alert stamped far in the future (a publisher's clock gone wrong)
// must not stop replay: the watermark believes a stamp only up to the
// service's clock plus StampSkew, and the future entry is not replayed.
func TestFutureStampedAlertDoesNotStopReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.own("1", "C01")
	path := "/sse/alerts?ticket=" + url.QueryEscape(e.ticket("1", purpose.Alerts))
	c := e.open(path)
	c.expect("system", "")
	e.alert("C01", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), "from 2099", true)
	c.expect("machine-alert", "C01")
	e.clock.Advance(10 * time.Second)
	e.alert("C01", e.clock.Now(), "sane", true)
	last := c.expect("machine-alert", "C01")
	c.resp.Body.Close() // the network drops
	c.ended()

	e.clock.Advance(2 * time.Second)
	e.alert("C01", e.clock.Now(), "missed", true)
	e.clock.Advance(3 * time.Second)
	r := e.open(path, "Last-Event-ID", last.ID)
	r.expect("system", "")
	if m := r.expect("machine-alert", "C01").json(t)["alert"].(map[string]any)["message"]; m != "missed" {
		t.Fatalf("replayed %v, want missed", m)
	}
	e.alert("C01", e.clock.Now(), "live", true)
	if m := r.expect("machine-alert", "C01").json(t)["alert"].(map[string]any)["message"]; m != "live" {
		t.Fatalf("after replay got %v, want live (the 2099 alert again?)", m)
	}
}
