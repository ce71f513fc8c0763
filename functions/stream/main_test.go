package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/ssetest"
	"github.com/machinedash/sse/internal/ticket"
)

const (
	ticketSecret = "stream-test-ticket-secret-0123456789abcdef"
	userID       = "42"
	origin       = "https://dash.example.com" // the fixtures' Origin header
)

// TestStream runs the real stream bootstrap against the fake Runtime API
// and a real Redis: what a browser would receive through a RESPONSE_STREAM
// function URL, chunk by chunk.
func TestStream(t *testing.T) {
	redistest.URL(t) // skip (or fail with REQUIRE_REDIS=1) before building
	bin := lambdatest.Build(t, ".")

	t.Run("data stream delivers each publish as its own chunk and ends before the deadline", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.own(t, "C02", "C03")
		status := lambdatest.Event(t, "status.json")
		if err := e.rdb.Set(lambdatest.Within(t, 3*time.Second), e.keys.Status("C02"), status, 0).Err(); err != nil {
			t.Fatal(err)
		}
		tok := e.issue(t, purpose.Data)
		rt := lambdatest.Start(t)
		proc := lambdatest.Run(t, bin, rt, e.vars...)

		// The handler keeps a 3 s margin before the deadline and, with
		// STREAM_ROTATION_WINDOW=0s, no jitter: it must end at about
		// deadline-3s, by itself.
		deadline := time.Now().Add(8 * time.Second)
		inv := rt.Invoke(lambdatest.Event(t, "stream-request.json", "{{TICKET}}", tok), deadline)
		p, err := inv.Prelude(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		checkStreamPrelude(t, p)
		res := inv.Result()
		t.Logf("cold start: event fetched %s after Invoke, prelude %s after Invoke",
			ms(res.Fetched.Sub(res.Queued)), ms(p.At.Sub(res.Queued)))

		s := &sseStream{inv: inv}
		first := s.events(t, lambdatest.Within(t, 3*time.Second), 2)
		if ev := first[0]; ev.Name != "system" || kind(t, ev) != "connected" || !digits.MatchString(ev.Retry) || ev.ID == "" {
			t.Errorf("first event = %+v, want system connected with an id and a retry", ev)
		}
		ms0 := first[1]
		if ms0.Name != "machine-status" {
			t.Fatalf("second event = %+v, want machine-status", ms0)
		}
		var st struct {
			DeviceID string          `json:"deviceId"`
			Data     json.RawMessage `json:"data"`
			Source   string          `json:"source"`
		}
		if err := json.Unmarshal([]byte(ms0.Data), &st); err != nil {
			t.Fatal(err)
		}
		if st.DeviceID != "C02" || st.Source != "cache" || !bytes.Equal(compact(t, st.Data), compact(t, status)) {
			t.Errorf("machine-status = %s, want C02 from cache with %s", ms0.Data, status)
		}
		t.Logf("first events: %d chunk(s), %d bytes", len(s.chunks), len(s.raw()))

		realtime := lambdatest.Event(t, "realtime.json")
		for i, m := range []struct {
			payload []byte
			channel string
			event   string
		}{
			{realtime, e.keys.Channel(channel.Realtime), "realtime-update"},
			{bytes.Replace(realtime, []byte(`"T1":220`), []byte(`"T1":221`), 1), e.keys.Channel(channel.Realtime), "realtime-update"},
			{lambdatest.Event(t, "spc.json"), e.keys.Channel(channel.SPC), "spc-update"},
			{lambdatest.Event(t, "spc-series.json"), e.keys.Channel(channel.SPCSeries), "spc-series-update"},
		} {
			before := len(s.chunks)
			evs, latency := s.publish(t, e.rdb, m.channel, m.payload)
			if len(s.chunks) != before+1 || len(evs) != 1 {
				t.Fatalf("publish %d: %d new chunk(s) with %d event(s), want 1 chunk with 1 event", i, len(s.chunks)-before, len(evs))
			}
			if evs[0].Name != m.event {
				t.Fatalf("publish %d: event %q, want %q", i, evs[0].Name, m.event)
			}
			checkPayload(t, evs[0].Data, m.payload)
			select {
			case <-inv.Done():
				t.Fatalf("publish %d: the response is complete; it must still be open", i)
			default:
			}
			t.Logf("publish %d (%s): chunk %d received %s after PUBLISH", i, m.event, len(s.chunks)-1, ms(latency))
		}

		// The stream ends by itself, well before the deadline.
		rest := s.drain(t, lambdatest.Within(t, time.Until(deadline)+2*time.Second))
		if len(rest) == 0 {
			t.Fatal("the stream ended without a last event")
		}
		last := rest[len(rest)-1]
		if last.Name != "system" || kind(t, last) != "reconnect" || !digits.MatchString(last.Retry) {
			t.Errorf("last event = %+v, want system reconnect with a retry", last)
		}
		res = inv.Result()
		early := deadline.Sub(res.Finished)
		if early < 3*time.Second || early > 5*time.Second {
			t.Errorf("response ended %s before the deadline, want about 4s (margin)", ms(early))
		}
		checkWire(t, res)
		t.Logf("stream: %d chunks, %d bytes; ended %s before the deadline", len(res.Chunks), len(res.Body()), ms(early))

		if m, err := proc.Memory(); err != nil {
			t.Logf("memory: %v", err)
		} else {
			t.Logf("stream bootstrap pid %d: peak RSS (VmHWM) %d KiB, RSS now %d KiB", proc.Pid(), m.Peak>>10, m.Current>>10)
		}
		if err := proc.WaitLogs(lambdatest.Within(t, 3*time.Second), `"reason":"rotate"`); err != nil {
			t.Errorf("logs do not say the stream rotated: %v", err)
		}
		// The stream's end as an EMF line for CloudWatch (internal/metrics).
		if err := proc.WaitLogs(lambdatest.Within(t, 3*time.Second), `"Reason":"rotate","StreamSeconds":`); err != nil {
			t.Errorf("no EMF end line: %v", err)
		}
		checkNoSecret(t, proc, tok, ticketSecret)
	})

	t.Run("warm process serves the next stream without what was published between", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.own(t, "C02", "C03")
		rt := lambdatest.Start(t)
		proc := lambdatest.Run(t, bin, rt, e.vars...)
		realtime := lambdatest.Event(t, "realtime.json")
		var toks []string
		for i, t1 := range []string{"301", "302"} {
			tok := e.issue(t, purpose.Data)
			toks = append(toks, tok)
			// Short streams: 4.5 s to the deadline leaves 1.5 s after the margin.
			deadline := time.Now().Add(4500 * time.Millisecond)
			inv := rt.Invoke(lambdatest.Event(t, "stream-request.json", "{{TICKET}}", tok), deadline)
			p, err := inv.Prelude(lambdatest.Within(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			checkStreamPrelude(t, p)
			s := &sseStream{inv: inv}
			if ev := s.events(t, lambdatest.Within(t, 3*time.Second), 1)[0]; kind(t, ev) != "connected" {
				t.Fatalf("invocation %d: first event %+v, want system connected", i, ev)
			}
			payload := bytes.Replace(realtime, []byte(`"T1":220`), []byte(`"T1":`+t1), 1)
			evs, latency := s.publish(t, e.rdb, e.keys.Channel(channel.Realtime), payload)
			if len(evs) != 1 || evs[0].Name != "realtime-update" {
				t.Fatalf("invocation %d: events %+v, want one realtime-update", i, evs)
			}
			// The second stream gets T1 302, never 999 published between.
			checkPayload(t, evs[0].Data, payload)
			rest := s.drain(t, lambdatest.Within(t, time.Until(deadline)+2*time.Second))
			if len(rest) == 0 || kind(t, rest[len(rest)-1]) != "reconnect" {
				t.Fatalf("invocation %d ended with %+v, want system reconnect", i, rest)
			}
			res := inv.Result()
			t.Logf("invocation %d: prelude %s after Invoke, realtime chunk %s after PUBLISH, %d chunks",
				i, ms(p.At.Sub(res.Queued)), ms(latency), len(res.Chunks))
			if i == 0 {
				// Between invocations: the process is idle in GET next.
				stale := bytes.Replace(realtime, []byte(`"T1":220`), []byte(`"T1":999`), 1)
				if err := e.rdb.Publish(lambdatest.Within(t, 3*time.Second), e.keys.Channel(channel.Realtime), stale).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkNoSecret(t, proc, append(toks, ticketSecret)...)
	})

	t.Run("alerts stream delivers owned alerts and alarms incrementally", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "HEARTBEAT_INTERVAL=1s")
		e.own(t, "C02")
		tok := e.issue(t, purpose.Alerts)
		rt := lambdatest.Start(t)
		proc := lambdatest.Run(t, bin, rt, e.vars...)
		inv := rt.Invoke(lambdatest.Event(t, "alerts-request.json", "{{TICKET}}", tok), time.Now().Add(8*time.Second))
		p, err := inv.Prelude(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		checkStreamPrelude(t, p)
		s := &sseStream{inv: inv}
		if ev := s.events(t, lambdatest.Within(t, 3*time.Second), 1)[0]; ev.Name != "system" || kind(t, ev) != "connected" {
			t.Fatalf("first event = %+v, want system connected", ev)
		}

		// An alert of a device the user does not own is published first; on
		// one Redis connection order holds, so had it leaked it would come
		// before the owned one.
		alert := lambdatest.Event(t, "alert.json")
		foreign := bytes.Replace(alert, []byte(`"deviceId":"C02"`), []byte(`"deviceId":"C99"`), 1)
		if err := e.rdb.Publish(lambdatest.Within(t, 3*time.Second), e.keys.Channel(channel.Alert), foreign).Err(); err != nil {
			t.Fatal(err)
		}
		for i, m := range []struct {
			payload []byte
			channel string
			event   string
		}{
			{alert, e.keys.Channel(channel.Alert), "machine-alert"},
			{lambdatest.Event(t, "alarm.json"), e.keys.Channel(channel.Alarm), "alarm-update"},
		} {
			evs, latency := s.publish(t, e.rdb, m.channel, m.payload)
			if len(evs) != 1 || evs[0].Name != m.event {
				t.Fatalf("publish %d: events %+v, want one %s", i, evs, m.event)
			}
			checkPayload(t, evs[0].Data, m.payload)
			select {
			case <-inv.Done():
				t.Fatalf("publish %d: the response is complete; it must still be open", i)
			default:
			}
			t.Logf("publish %d (%s): chunk %d received %s after PUBLISH", i, m.event, len(s.chunks)-1, ms(latency))
		}
		// Heartbeats (every 1 s here) renew the lease and reach the client.
		evs, err := s.chunk(lambdatest.Within(t, 3*time.Second))
		if err != nil {
			t.Fatalf("waiting for a heartbeat: %v", err)
		}
		if !heartbeats(evs) {
			t.Fatalf("events %+v, want a heartbeat", evs)
		}
		checkNoSecret(t, proc, tok, ticketSecret)
	})

	t.Run("bad ticket is a 401 with the seed body", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.own(t, "C02", "C03")
		// A well-formed ticket signed with another secret.
		other, err := ticket.New([]byte("another-secret-0123456789abcdefghijkl"), e.rdb, e.keys.Ticket(""), nil)
		if err != nil {
			t.Fatal(err)
		}
		forged, _, err := other.Issue(lambdatest.Within(t, 3*time.Second), userID, purpose.Data, ticket.DefaultTTL)
		if err != nil {
			t.Fatal(err)
		}
		rt := lambdatest.Start(t)
		proc := lambdatest.Run(t, bin, rt, e.vars...)
		inv := rt.Invoke(lambdatest.Event(t, "stream-request.json", "{{TICKET}}", forged), time.Now().Add(8*time.Second))
		p, err := inv.Prelude(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if p.StatusCode != 401 || !strings.HasPrefix(p.Headers["Content-Type"], "application/json") {
			t.Errorf("prelude = %d %v, want 401 application/json", p.StatusCode, p.Headers)
		}
		if got := p.Headers["Access-Control-Allow-Origin"]; got != origin {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q (a browser hides errors without it)", got, origin)
		}
		res, err := inv.Wait(lambdatest.Within(t, 3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		const want = `{"error":"Unauthorized","message":"Invalid or expired stream ticket","statusCode":401}`
		if got := string(bytes.TrimSuffix(res.Body(), []byte("\n"))); got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		checkWire(t, res)
		checkNoSecret(t, proc, forged, ticketSecret)
	})

	t.Run("invalid configuration exits at start and names the problems", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		const short = "too-short-secret-value"
		proc := lambdatest.Run(t, bin, rt, "REDIS_URL=redis://"+redistest.DeadAddr(t)+"/0", "STREAM_TICKET_SECRET="+short,
			"HEARTBEAT_INTERVAL=0s", "MAX_DEVICES_PER_STREAM=0")
		code, err := proc.Wait(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		logs, _ := proc.Stop()
		if code != 1 || !strings.Contains(logs, "HEARTBEAT_INTERVAL") || !strings.Contains(logs, "MAX_DEVICES_PER_STREAM") {
			t.Errorf("exit code %d, logs %q; want 1 and both problems named", code, logs)
		}
		checkNoSecret(t, proc, short)
		// aws-lambda-go never posts to init/error: the main exits, which
		// Lambda reports as Runtime.ExitError.
		t.Logf("init errors posted: %d; logs: %s", len(rt.InitErrors()), strings.TrimSpace(logs))
	})
}

// env is one test's Redis namespace and the function's environment for it.
type env struct {
	rdb     *redis.Client
	keys    config.Keys
	tickets *ticket.Service
	vars    []string
}

func newEnv(t testing.TB, extra ...string) env {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	tickets, err := ticket.New([]byte(ticketSecret), rdb, keys.Ticket(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	vars := []string{
		"REDIS_URL=" + redistest.URL(t),
		"STREAM_TICKET_SECRET=" + ticketSecret,
		"CORS_ALLOWED_ORIGINS=" + origin,
		"STREAM_ROTATION_WINDOW=0s", // no jitter: the end is predictable
		"REALTIME_MIN_INTERVAL=0s",  // two updates of one device in a row both go out
		"LOG_LEVEL=debug",           // the most logging, for the no-secret checks
	}
	vars = append(vars, lambdatest.KeyEnv(keys)...)
	return env{rdb: rdb, keys: keys, tickets: tickets, vars: append(vars, extra...)}
}

// own makes the test user the owner of devices (the main app's set).
func (e env) own(t *testing.T, devices ...string) {
	t.Helper()
	if err := e.rdb.SAdd(lambdatest.Within(t, 3*time.Second), e.keys.UserDevices(userID), devices).Err(); err != nil {
		t.Fatal(err)
	}
}

func (e env) issue(t *testing.T, p purpose.Purpose) string {
	t.Helper()
	tok, _, err := e.tickets.Issue(lambdatest.Within(t, 3*time.Second), userID, p, ticket.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func checkStreamPrelude(t *testing.T, p lambdatest.Prelude) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Type":                "text/event-stream",
		"Cache-Control":               "no-cache",
		"X-Accel-Buffering":           "no",
		"Access-Control-Allow-Origin": origin,
	} {
		if got := p.Headers[k]; got != want {
			t.Errorf("prelude header %s = %q, want %q", k, got, want)
		}
	}
	if p.StatusCode != 200 {
		t.Errorf("prelude status %d, want 200", p.StatusCode)
	}
}

// checkWire: the response went out as aws-lambda-go streams it, and ended
// without a function error.
func checkWire(t *testing.T, res lambdatest.Result) {
	t.Helper()
	if !res.Streaming || len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
		t.Errorf("response POST: Content-Type %q, Transfer-Encoding %v; want %s, chunked",
			res.Header.Get("Content-Type"), res.TransferEncoding, lambdatest.StreamingContentType)
	}
	if res.Err != nil || res.ReadErr != nil {
		t.Errorf("response ended with %v / %v", res.Err, res.ReadErr)
	}
}

// checkNoSecret stops the process and checks its complete logs.
func checkNoSecret(t *testing.T, proc *lambdatest.Process, secrets ...string) {
	t.Helper()
	logs, err := proc.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs contain a secret (%.12s...)", s)
		}
	}
}

// checkPayload: an event's data is the published JSON, compacted, with a
// timestamp added when the publisher left it out.
func checkPayload(t *testing.T, data string, published []byte) {
	t.Helper()
	want := compact(t, published)
	if bytes.Equal([]byte(data), want) {
		return
	}
	var pub, got map[string]json.RawMessage
	if err := json.Unmarshal(published, &pub); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatalf("event data %q: %v", data, err)
	}
	if _, had := pub["timestamp"]; had || len(got["timestamp"]) == 0 {
		t.Fatalf("event data = %s, want %s", data, want)
	}
	delete(got, "timestamp")
	for k, v := range pub {
		if !bytes.Equal(compact(t, got[k]), compact(t, v)) {
			t.Fatalf("event data field %s = %s, want %s", k, got[k], v)
		}
	}
	if len(got) != len(pub) {
		t.Fatalf("event data = %s has other fields than %s", data, published)
	}
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.Bytes()
}

var digits = regexp.MustCompile(`^[0-9]+$`)

func kind(t *testing.T, ev sseEvent) string {
	t.Helper()
	var v struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
		t.Fatalf("system event data %q: %v", ev.Data, err)
	}
	return v.Kind
}

func ms(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

// sseEvent is one dispatched SSE event as a browser parses it.
type sseEvent struct {
	ID, Name, Data string
	Retry          string // the retry field sent with this event, if any
	Chunk          int    // index of the chunk that completed it
}

// sseStream reads an invocation's body chunk by chunk and parses events
// (internal/ssetest, as a browser does).
type sseStream struct {
	inv    *lambdatest.Invocation
	chunks []lambdatest.Chunk
	buf    string
	p      ssetest.Parser
}

func (s *sseStream) raw() []byte {
	var b []byte
	for _, c := range s.chunks {
		b = append(b, c.Data...)
	}
	return b
}

// chunk reads one chunk and returns the events it completed.
func (s *sseStream) chunk(ctx context.Context) ([]sseEvent, error) {
	c, err := s.inv.Next(ctx)
	if err != nil {
		return nil, err
	}
	s.chunks = append(s.chunks, c)
	s.buf += string(c.Data)
	var evs []sseEvent
	// The service ends each event with a blank line (LF LF); a block is
	// parsed by the stream's parser, and again alone to see whether it
	// carried a retry field of its own.
	for {
		block, rest, ok := strings.Cut(s.buf, "\n\n")
		if !ok {
			break
		}
		s.buf = rest
		var own ssetest.Parser
		own.Feed([]byte(block + "\n\n"))
		retry := ""
		if r := own.Retry(); r >= 0 {
			retry = strconv.FormatInt(r, 10)
		}
		for _, ev := range s.p.Feed([]byte(block + "\n\n")) {
			evs = append(evs, sseEvent{ID: ev.ID, Name: ev.Name, Data: ev.Data, Retry: retry, Chunk: len(s.chunks) - 1})
		}
	}
	return evs, nil
}

// events reads chunks until n events have arrived.
func (s *sseStream) events(t *testing.T, ctx context.Context, n int) []sseEvent {
	t.Helper()
	var all []sseEvent
	for len(all) < n {
		evs, err := s.chunk(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(all), n, err)
		}
		all = append(all, evs...)
	}
	return all
}

// publish publishes payload and reads the next chunk that is not only
// heartbeats, which must hold the delivery; it returns that chunk's events
// other than heartbeats and the time from PUBLISH to its arrival.
func (s *sseStream) publish(t *testing.T, rdb *redis.Client, channel string, payload []byte) ([]sseEvent, time.Duration) {
	t.Helper()
	ctx := lambdatest.Within(t, 3*time.Second)
	sent := time.Now()
	n, err := rdb.Publish(ctx, channel, payload).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("PUBLISH %s reached %d subscribers, want 1 (the function)", channel, n)
	}
	for {
		evs, err := s.chunk(ctx)
		if err != nil {
			t.Fatalf("waiting for the chunk after PUBLISH %s: %v", channel, err)
		}
		if !heartbeats(evs) {
			var out []sseEvent
			for _, ev := range evs {
				if !heartbeats([]sseEvent{ev}) {
					out = append(out, ev)
				}
			}
			return out, s.chunks[len(s.chunks)-1].At.Sub(sent)
		}
	}
}

// heartbeats reports whether evs are heartbeats only (they may come
// between any two chunks).
func heartbeats(evs []sseEvent) bool {
	for _, ev := range evs {
		if ev.Name != "system" || !strings.Contains(ev.Data, `"kind":"heartbeat"`) {
			return false
		}
	}
	return len(evs) > 0
}

// drain reads the rest of the response and returns its events.
func (s *sseStream) drain(t *testing.T, ctx context.Context) []sseEvent {
	t.Helper()
	var all []sseEvent
	for {
		evs, err := s.chunk(ctx)
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatalf("reading to the end: %v", err)
		}
		all = append(all, evs...)
	}
}
