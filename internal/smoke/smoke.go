// Package smoke checks a deployed service from outside, as a dashboard tab
// would: it gets a ticket for each stream with an access token, opens the
// alerts and the data stream at once through the edge, and watches them
// for a while.
//
// Invariants: a stream passes only if its first event arrives within
// FirstEventMax, events arrive spread over the watch (not in one burst:
// buffered), and no gap between heartbeats, nor from the request to the
// first heartbeat, nor from the last one to the end of the watch,
// exceeds Heartbeat+Slack. The token and tickets never appear in a report.
package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config says what to check and what counts as late.
type Config struct {
	URL    string // base URL of the distribution (or the local server)
	Token  string // access token of the existing app, for POST /sse/stream-ticket
	Device string // a device of the token's user, for the data stream

	Heartbeat     time.Duration // the service's HEARTBEAT_INTERVAL; default 25s
	Slack         time.Duration // a heartbeat later than Heartbeat+Slack is late; default 5s
	Watch         time.Duration // how long each stream is read; default 2*Heartbeat+Slack
	FirstEventMax time.Duration // first event later than this: buffered or slow; default 5s
	Client        *http.Client  // default: a client without a timeout (streams are long)
}

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 25 * time.Second
	}
	if c.Slack <= 0 {
		c.Slack = 5 * time.Second
	}
	if c.Watch <= 0 {
		c.Watch = 2*c.Heartbeat + c.Slack
	}
	if c.FirstEventMax <= 0 {
		c.FirstEventMax = 5 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	c.URL = strings.TrimRight(c.URL, "/")
	return c
}

// Stream is what was seen of one stream.
type Stream struct {
	Path        string
	Status      int
	Headers     time.Duration   // request sent -> response headers
	FirstByte   time.Duration   // request sent -> first body byte
	FirstEvent  time.Duration   // request sent -> first complete event
	Events      int             // complete events seen
	Heartbeats  []time.Duration // arrival of each heartbeat, from the request
	MaxGap      time.Duration   // the longest wait for a heartbeat (see the package invariants)
	Arrivals    int             // distinct reads that completed at least one event
	Incremental bool            // events arrived spread over the watch, not in one burst
	Problems    []string
}

// Report is the outcome of a Run.
type Report struct {
	Streams  []Stream
	Problems []string // every stream's problems, and those before any stream
}

// OK reports whether nothing was wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// String is a short human-readable report.
func (r Report) String() string {
	var b strings.Builder
	for _, s := range r.Streams {
		fmt.Fprintf(&b, "%s: status %d, headers %s, first byte %s, first event %s, %d events in %d arrivals, heartbeats at %v (longest wait %s), incremental %v\n",
			s.Path, s.Status, ms(s.Headers), ms(s.FirstByte), ms(s.FirstEvent), s.Events, s.Arrivals, roundAll(s.Heartbeats), ms(s.MaxGap), s.Incremental)
	}
	if r.OK() {
		b.WriteString("OK\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "FAIL: %s\n", p)
	}
	return b.String()
}

// Run performs the check. It returns an error only for a configuration it
// cannot start with; what it finds wrong is in the report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Report{}, errors.New("smoke: URL must be https://host (or http:// for a local server)")
	}
	if cfg.Token == "" || cfg.Device == "" {
		return Report{}, errors.New("smoke: an access token and a device of its user are required")
	}
	var rep Report
	paths := map[string]string{"alerts": "/sse/alerts", "data": "/sse/stream"}
	tickets := map[string]string{}
	for _, purpose := range []string{"alerts", "data"} {
		tk, err := ticket(ctx, cfg, purpose)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("ticket for %s: %v", purpose, err))
			continue
		}
		tickets[purpose] = tk
	}
	if len(rep.Problems) > 0 {
		return rep, nil
	}
	rep.Streams = make([]Stream, 2)
	var wg sync.WaitGroup
	for i, purpose := range []string{"alerts", "data"} {
		q := url.Values{"ticket": {tickets[purpose]}}
		if purpose == "data" {
			q.Set("deviceId", cfg.Device)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Streams[i] = watch(ctx, cfg, paths[purpose], q)
		}()
	}
	wg.Wait()
	for _, s := range rep.Streams {
		for _, p := range s.Problems {
			rep.Problems = append(rep.Problems, s.Path+": "+p)
		}
	}
	return rep, nil
}

// ticket gets a stream ticket of purpose.
func ticket(ctx context.Context, cfg Config, purpose string) (string, error) {
	body, _ := json.Marshal(map[string]string{"purpose": purpose})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL+"/sse/stream-ticket", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out struct {
		Ticket  string `json:"ticket"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK || out.Ticket == "" {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, out.Message)
	}
	return out.Ticket, nil
}

// watch reads one stream for cfg.Watch and judges it.
func watch(ctx context.Context, cfg Config, path string, q url.Values) Stream {
	s := Stream{Path: path}
	ctx, cancel := context.WithTimeout(ctx, cfg.Watch)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
		return s
	}
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := cfg.Client.Do(req)
	if err != nil {
		s.Problems = append(s.Problems, "no response: "+redact(err))
		return s
	}
	defer resp.Body.Close()
	s.Status, s.Headers = resp.StatusCode, time.Since(start)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		s.Problems = append(s.Problems, fmt.Sprintf("status %d, Content-Type %q; want 200 text/event-stream", resp.StatusCode, ct))
		return s
	}

	// Each Read is an arrival; the events it completes share its time.
	var (
		pending   []byte
		lastBeat  time.Duration // the request counts as the beat before the first
		firstSeen bool
		ended     bool
	)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		at := time.Since(start)
		if n > 0 && s.FirstByte == 0 {
			s.FirstByte = at
		}
		pending = append(pending, buf[:n]...)
		completed := 0
		for {
			i := bytes.Index(pending, []byte("\n\n"))
			if i < 0 {
				break
			}
			block := pending[:i]
			pending = pending[i+2:]
			completed++
			s.Events++
			if !firstSeen {
				firstSeen, s.FirstEvent = true, at
			}
			if isHeartbeat(block) {
				s.Heartbeats = append(s.Heartbeats, at)
				s.MaxGap = max(s.MaxGap, at-lastBeat)
				lastBeat = at
			}
		}
		if completed > 0 {
			s.Arrivals++
		}
		if err != nil {
			ended = !errors.Is(ctx.Err(), context.DeadlineExceeded)
			break
		}
	}
	end := time.Since(start)
	if !ended {
		s.MaxGap = max(s.MaxGap, end-lastBeat)
	}
	// Spread over the watch: the first and the last event at least one
	// heartbeat apart, in separate reads. A buffering hop delivers them
	// in one burst, or not at all within the watch.
	s.Incremental = s.Arrivals >= 2 && len(s.Heartbeats) > 0 && s.Heartbeats[len(s.Heartbeats)-1]-s.FirstEvent >= cfg.Heartbeat/2
	late := cfg.Heartbeat + cfg.Slack
	switch {
	case !firstSeen:
		s.Problems = append(s.Problems, fmt.Sprintf("no complete event within %s: the stream is buffered (or the service is down)", ms(cfg.Watch)))
	case s.FirstEvent > cfg.FirstEventMax:
		s.Problems = append(s.Problems, fmt.Sprintf("first event after %s (limit %s): buffered or slow", ms(s.FirstEvent), ms(cfg.FirstEventMax)))
	}
	if firstSeen && !s.Incremental {
		s.Problems = append(s.Problems, fmt.Sprintf("events arrived in %d burst(s), not spread over the watch: buffered", s.Arrivals))
	}
	if s.MaxGap > late {
		s.Problems = append(s.Problems, fmt.Sprintf("a heartbeat was late: waited %s (limit %s)", ms(s.MaxGap), ms(late)))
	}
	if ended {
		s.Problems = append(s.Problems, fmt.Sprintf("the stream ended after %s, before the watch did", ms(end)))
	}
	return s
}

// isHeartbeat reports whether an event block is a system heartbeat.
func isHeartbeat(block []byte) bool {
	var system, beat bool
	for _, line := range bytes.Split(block, []byte("\n")) {
		switch {
		case bytes.Equal(line, []byte("event: system")):
			system = true
		case bytes.HasPrefix(line, []byte("data:")) && bytes.Contains(line, []byte(`"kind":"heartbeat"`)):
			beat = true
		}
	}
	return system && beat
}

// redact drops a URL (with its ticket) from an error text.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func roundAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}
