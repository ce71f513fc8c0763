package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/ticket"
)

// TestManyStreams runs one real stream bootstrap as Lambda Managed
// Instances does, with AWS_LAMBDA_MAX_CONCURRENCY=200: 200 invocations of
// 200 users at once, each with its own devices (one of its own, one shared
// by 20 users), source address and deadline.
func TestManyStreams(t *testing.T) {
	parallelWithRedis(t)
	bin := lambdatest.Build(t, ".")
	const n = 200
	e := newEnv(t)
	rt := lambdatest.Start(t, lambdatest.MaxConcurrency(n))
	proc := lambdatest.Run(t, bin, rt, e.vars...)

	// Deadlines 12 s + i*15 ms ahead: the streams must end, each by
	// itself, 4 s (the margin) before its own, spread over 3 s.
	start := time.Now()
	streams := make([]*many, n)
	for i := range streams {
		s := &many{i: i, user: "u" + strconv.Itoa(i), own: "D" + strconv.Itoa(i), shared: "S" + strconv.Itoa(i%10)}
		if err := e.rdb.SAdd(lambdatest.Within(t, 3*time.Second), e.keys.UserDevices(s.user), s.own, s.shared).Err(); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.tickets.Issue(lambdatest.Within(t, 3*time.Second), s.user, purpose.Data, ticket.DefaultTTL)
		if err != nil {
			t.Fatal(err)
		}
		ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		ev := lambdatest.Event(t, "stream-request.json", "{{TICKET}}", tok, "C02,C03", s.own+","+s.shared, "203.0.113.7", ip)
		s.inv = rt.Invoke(ev, start.Add(12*time.Second+time.Duration(i)*15*time.Millisecond))
		streams[i] = s
	}
	ctx := lambdatest.Within(t, 40*time.Second)
	for _, s := range streams {
		s.read(ctx)
	}
	for _, s := range streams {
		if ev, err := s.next(ctx); err != nil || ev.Name != "system" || !strings.Contains(ev.Data, `"connected"`) {
			t.Fatalf("stream %d: first event %+v, %v; want system connected", s.i, ev, err)
		}
	}
	t.Logf("%d streams open %s after the first Invoke", n, ms(time.Since(start)))
	leases := func() []int64 {
		t.Helper()
		pipe := e.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, n)
		for i, s := range streams {
			cmds[i] = pipe.ZCard(ctx, e.keys.UserLeases(s.user, purpose.Data))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		out := make([]int64, n)
		for i, c := range cmds {
			out[i] = c.Val()
		}
		return out
	}
	// Each invocation holds its own lease.
	for i, c := range leases() {
		if c != 1 {
			t.Errorf("user of stream %d holds %d leases, want 1", i, c)
		}
	}

	// One pub/sub connection for the whole process; the pool beside it.
	conns := processConns(t, e.rdb, proc.Pid())
	pubsub := 0
	for _, c := range conns {
		if c["sub"] != "0" || c["psub"] != "0" {
			pubsub++
		}
	}
	if pubsub != 1 {
		t.Errorf("%d pub/sub connections of the process, want 1: %v", pubsub, conns)
	}
	t.Logf("Redis connections of the process: %d (1 pub/sub, %d pooled)", len(conns), len(conns)-pubsub)

	// Round 1: one message per own device and per shared device.
	publish := func(round int) {
		t.Helper()
		for i := range n {
			e.publishRealtime(t, "D"+strconv.Itoa(i), round)
		}
		for k := range 10 {
			e.publishRealtime(t, "S"+strconv.Itoa(k), round)
		}
	}
	publish(1)
	for _, s := range streams {
		s.expect(t, ctx, 1)
	}

	// Break the response of stream 0: only it ends.
	if err := streams[0].inv.Cut(); err != nil {
		t.Fatal(err)
	}
	if _, err := streams[0].inv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	publish(2)
	for _, s := range streams[1:] {
		s.expect(t, ctx, 2)
	}

	// Every other stream ends by itself before its own deadline, with a
	// reconnect, having received nothing else.
	for _, s := range streams[1:] {
		rest := s.rest(t, ctx)
		if len(rest) != 1 || rest[0].Name != "system" || !strings.Contains(rest[0].Data, `"reconnect"`) || !digits.MatchString(rest[0].Retry) {
			t.Errorf("stream %d: after its events %+v, want one system reconnect with a retry", s.i, rest)
			continue
		}
		res := s.inv.Result()
		early := s.inv.Deadline.Sub(res.Finished)
		if early < 3*time.Second || early > 5*time.Second {
			t.Errorf("stream %d ended %s before its deadline, want about 4s (the margin)", s.i, ms(early))
		}
		checkWire(t, res)
	}
	if m, err := proc.Memory(); err == nil {
		t.Logf("peak RSS %d KiB for %d streams", m.Peak>>10, n)
	}
	// Every stream that ended by itself released its lease; the broken one
	// too, once its handler saw the failed write.
	if err := proc.WaitLogs(ctx, `"reason":"write-failed"`); err != nil && !strings.Contains(proc.Logs(), `"reason":"client-gone"`) {
		t.Error(err)
	}
	for i, c := range leases() {
		if c != 0 {
			t.Errorf("user of stream %d still holds %d leases after its stream ended", i, c)
		}
	}

	// Each stream's log lines carry its own invocation's request id.
	logs, err := proc.Stop()
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{}
	for _, s := range streams {
		users[s.inv.ID] = s.user
	}
	ends := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Msg, RequestID, User, Reason string
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || (l.Msg != "stream open" && l.Msg != "stream end") {
			continue
		}
		if want, ok := users[l.RequestID]; !ok || want != l.User {
			t.Errorf("%q for user %s has request id %q (user %q)", l.Msg, l.User, l.RequestID, want)
		}
		if l.Msg == "stream end" {
			ends[l.RequestID] = l.Reason
		}
	}
	if len(ends) != n {
		t.Errorf("%d stream end lines with a request id, want %d", len(ends), n)
	}
	if r := ends[streams[0].inv.ID]; r != "write-failed" && r != "client-gone" {
		t.Errorf("broken stream ended with %q, want write-failed or client-gone", r)
	}
}

// TestShutdown: SIGTERM to a process serving several streams at once ends
// every one with a soft retry, then the process exits by itself.
func TestShutdown(t *testing.T) {
	parallelWithRedis(t)
	bin := lambdatest.Build(t, ".")
	const n = 4
	e := newEnv(t)
	e.own(t, "C02", "C03")
	rt := lambdatest.Start(t, lambdatest.MaxConcurrency(n))
	proc := lambdatest.Run(t, bin, rt, e.vars...)
	ctx := lambdatest.Within(t, 20*time.Second)
	var streams []*many
	for i := range n - 1 {
		// One user has one data stream (a second evicts the first): each
		// stream is of its own user.
		user := "sd" + strconv.Itoa(i)
		if err := e.rdb.SAdd(ctx, e.keys.UserDevices(user), "C02").Err(); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.tickets.Issue(ctx, user, purpose.Data, ticket.DefaultTTL)
		if err != nil {
			t.Fatal(err)
		}
		ev := lambdatest.Event(t, "stream-request.json", "{{TICKET}}", tok, "C02,C03", "C02", "203.0.113.7", "10.2.0."+strconv.Itoa(i+1))
		s := &many{i: i, inv: rt.Invoke(ev, time.Now().Add(60*time.Second))}
		s.read(ctx)
		if ev, err := s.next(ctx); err != nil || !strings.Contains(ev.Data, `"connected"`) {
			t.Fatalf("stream %d: first event %+v, %v", i, ev, err)
		}
		streams = append(streams, s)
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		rest := s.rest(t, ctx)
		if len(rest) == 0 {
			t.Fatalf("stream %d ended without a last event", s.i)
		}
		last := rest[len(rest)-1]
		if last.Name != "system" || !strings.Contains(last.Data, `"unavailable"`) || !digits.MatchString(last.Retry) {
			t.Errorf("stream %d: last event %+v, want system unavailable with a retry", s.i, last)
		}
		checkWire(t, s.inv.Result())
	}
	code, err := proc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if err := proc.WaitLogs(ctx, `"allSent":true`); err != nil {
		t.Error(err)
	}
	// Every lease was released before the exit.
	for i := range n - 1 {
		key := e.keys.UserLeases("sd"+strconv.Itoa(i), purpose.Data)
		if c, err := e.rdb.ZCard(ctx, key).Result(); err != nil || c != 0 {
			t.Errorf("%s holds %d leases (%v) after shutdown, want 0", key, c, err)
		}
	}
}

func parallelWithRedis(t *testing.T) {
	t.Helper()
	t.Parallel()
	newEnv(t) // skips (or fails with REQUIRE_REDIS=1) before building
}

// publishRealtime publishes a realtime value of device, marked with round.
func (e env) publishRealtime(t *testing.T, device string, round int) {
	t.Helper()
	msg := fmt.Sprintf(`{"deviceId":%q,"data":{"round":%d}}`, device, round)
	if err := e.rdb.Publish(lambdatest.Within(t, 3*time.Second), e.keys.Channel(channel.Realtime), msg).Err(); err != nil {
		t.Fatal(err)
	}
}

// many is one of many concurrent streams, read by its own goroutine.
type many struct {
	i                 int
	user, own, shared string
	inv               *lambdatest.Invocation
	evs               chan sseEvent
	err               error // after evs is closed
}

func (s *many) read(ctx context.Context) {
	s.evs = make(chan sseEvent, 64)
	go func() {
		defer close(s.evs)
		r := &sseStream{inv: s.inv}
		for {
			evs, err := r.chunk(ctx)
			if err != nil {
				s.err = err
				return
			}
			for _, ev := range evs {
				if !heartbeats([]sseEvent{ev}) {
					s.evs <- ev
				}
			}
		}
	}()
}

// next returns the next event other than a heartbeat.
func (s *many) next(ctx context.Context) (sseEvent, error) {
	select {
	case ev, ok := <-s.evs:
		if !ok {
			return sseEvent{}, s.err
		}
		return ev, nil
	case <-ctx.Done():
		return sseEvent{}, ctx.Err()
	}
}

// expect reads the round's two realtime updates, of its own device and of
// its shared one, in any order, and nothing else.
func (s *many) expect(t *testing.T, ctx context.Context, round int) {
	t.Helper()
	want := map[string]bool{s.own: true, s.shared: true}
	for len(want) > 0 {
		ev, err := s.next(ctx)
		if err != nil {
			t.Fatalf("stream %d, round %d: %v (still waiting for %v)", s.i, round, err, want)
		}
		var m struct {
			DeviceID string `json:"deviceId"`
			Data     struct{ Round int }
		}
		if ev.Name != "realtime-update" || json.Unmarshal([]byte(ev.Data), &m) != nil || !want[m.DeviceID] || m.Data.Round != round {
			t.Fatalf("stream %d (devices %s, %s), round %d: got %s %s", s.i, s.own, s.shared, round, ev.Name, ev.Data)
		}
		delete(want, m.DeviceID)
	}
}

// rest reads the stream to its normal end.
func (s *many) rest(t *testing.T, ctx context.Context) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		ev, err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("stream %d: %v", s.i, err)
		}
		out = append(out, ev)
	}
}

// processConns returns the CLIENT LIST entries of the connections that
// process pid holds to Redis, found by the local ports of its sockets.
func processConns(t testing.TB, rdb *redis.Client, pid int) []map[string]string {
	t.Helper()
	ports := socketPorts(t, pid)
	list, err := rdb.ClientList(lambdatest.Within(t, 3*time.Second)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		c := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			c[k] = v
		}
		if i := strings.LastIndexByte(c["addr"], ':'); i >= 0 && ports[c["addr"][i+1:]] {
			out = append(out, c)
		}
	}
	return out
}

// socketPorts returns the local TCP ports (decimal) of process pid's
// sockets, from /proc (Linux).
func socketPorts(t testing.TB, pid int) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	ports := map[string]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports[strconv.FormatUint(p, 10)] = true
			}
		}
	}
	return ports
}
