package ssetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Wait is how long a Stream waits for an event or its end by default.
const Wait = 5 * time.Second

// Stream reads an event stream in the background and queues its events;
// the reader never blocks on a slow test. Every wait is bounded.
type Stream struct {
	// Wait bounds Next, NextRaw and Ended (Wait by default).
	Wait time.Duration

	body io.Closer
	mu   sync.Mutex
	wake chan struct{} // closed and replaced on every change
	evs  []Event
	raw  []byte
	done bool
	err  error // why the stream ended: nil at a clean end of stream
	p    Parser
}

// Read starts reading r. The test's cleanup closes r (if it is an
// io.Closer), which ends the reader.
func Read(t testing.TB, r io.Reader) *Stream {
	s := &Stream{Wait: Wait, wake: make(chan struct{})}
	if c, ok := r.(io.Closer); ok {
		s.body = c
		t.Cleanup(func() { c.Close() })
	}
	go s.read(r)
	return s
}

// Open performs req with client, checks that it is admitted as a stream
// (200, text/event-stream) and reads it. Waiting for the response headers
// is bounded as well.
func Open(t testing.TB, client *http.Client, req *http.Request) (*Stream, *http.Response) {
	t.Helper()
	resp := Do(t, client, req)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b := Body(t, resp)
		t.Fatalf("%s %s: %d %s %s, want a stream", req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return Read(t, resp.Body), resp
}

func (s *Stream) read(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		s.mu.Lock()
		if n > 0 {
			s.raw = append(s.raw, buf[:n]...)
			s.evs = append(s.evs, s.p.Feed(buf[:n])...)
		}
		if err != nil {
			s.done = true
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
		}
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// NextCtx returns the next event, io.EOF once the stream has ended and
// every event was taken (or the read error that ended it), or ctx's error.
func (s *Stream) NextCtx(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.evs) > 0 {
			ev := s.evs[0]
			s.evs = s.evs[1:]
			s.mu.Unlock()
			return ev, nil
		}
		if s.done {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return Event{}, err
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// NextRaw returns the next event, heartbeats included; it fails the test
// if none arrives within s.Wait or the stream ends first.
func (s *Stream) NextRaw(t testing.TB) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Wait)
	defer cancel()
	ev, err := s.NextCtx(ctx)
	if err != nil {
		t.Fatalf("no event within %s: %v", s.Wait, err)
	}
	return ev
}

// Next returns the next event other than a heartbeat (a system event of
// kind heartbeat), failing as NextRaw does.
func (s *Stream) Next(t testing.TB) Event {
	t.Helper()
	for {
		if ev := s.NextRaw(t); !IsHeartbeat(ev) {
			return ev
		}
	}
}

// IsHeartbeat reports whether ev is the service's heartbeat.
func IsHeartbeat(ev Event) bool {
	return ev.Name == "system" && strings.Contains(ev.Data, `"kind":"heartbeat"`)
}

// Ended waits until the stream has ended (its events stay queued); it
// fails the test if the stream is still open after s.Wait.
func (s *Stream) Ended(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Wait)
	defer cancel()
	if err := s.EndedCtx(ctx); err != nil {
		t.Fatalf("stream did not end within %s", s.Wait)
	}
}

// EndedCtx waits until the stream has ended or ctx is done.
func (s *Stream) EndedCtx(ctx context.Context) error {
	for {
		s.mu.Lock()
		done, wake := s.done, s.wake
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Rest waits for the end of the stream and returns the events not taken
// yet, failing the test after s.Wait.
func (s *Stream) Rest(t testing.TB) []Event {
	t.Helper()
	s.Ended(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.evs
	s.evs = nil
	return evs
}

// Close closes the body: the client leaves, as a browser closing the tab.
func (s *Stream) Close() {
	if s.body != nil {
		s.body.Close()
	}
}

// Retry is the reconnection time in ms the stream has set so far, -1 if
// none.
func (s *Stream) Retry() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Retry()
}

// Raw returns every byte read so far.
func (s *Stream) Raw() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.raw...)
}

// Do performs req with client and fails the test on a transport error. The
// wait for the response headers is bounded by Wait, through a transport
// that has ResponseHeaderTimeout set when client's has none.
func Do(t testing.TB, client *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := bounded(client).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp
}

var (
	boundedMu sync.Mutex
	boundedOf = map[*http.Client]*http.Client{}
)

// bounded returns client with a response header timeout (one copy per
// client, so connections are reused).
func bounded(client *http.Client) *http.Client {
	if client == nil {
		client = http.DefaultClient
	}
	boundedMu.Lock()
	defer boundedMu.Unlock()
	if c, ok := boundedOf[client]; ok {
		return c
	}
	tr, _ := client.Transport.(*http.Transport)
	if client.Transport == nil {
		tr = http.DefaultTransport.(*http.Transport)
	}
	if tr == nil || tr.ResponseHeaderTimeout != 0 {
		boundedOf[client] = client
		return client
	}
	tr = tr.Clone()
	tr.ResponseHeaderTimeout = Wait
	c := *client
	c.Transport = tr
	boundedOf[client] = &c
	return &c
}

// Body reads a whole response body and closes it, failing the test if it
// has not ended within Wait (a stream admitted where a refusal was
// expected, say).
func Body(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading the body of a %d: %v", resp.StatusCode, r.err)
		}
		return string(r.b)
	case <-time.After(Wait):
		resp.Body.Close()
		t.Fatalf("the body of a %d (%s) did not end within %s", resp.StatusCode, resp.Header.Get("Content-Type"), Wait)
		return ""
	}
}

// String is an event as a test failure shows it.
func (ev Event) String() string {
	return fmt.Sprintf("%s id=%q %s", ev.Name, ev.ID, ev.Data)
}
