//go:build unix

package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// connectConc is how many connects are in flight at once, as in issue 14's figure (loadcmp's
// default -connect-concurrency).
const connectConc = 50

// BenchmarkConnect measures the connect path: 1,000 data streams (10 per device, 100 users,
// includeStatus=false), 50 connects in flight, each from dial to its first event, against the
// app as deployed with real Redis. One op opens all 1,000 and then closes them, and waits
// until the service has ended every stream (the release is outside the measured window).
//
// all-up-s is first dial -> last stream up; p50-ms and p99-ms are per stream.
// cpu-µs/connect is the whole process (the clients included) over the opening, so an upper
// bound for the server. redis-rtt/connect counts what the service's pooled client sent (a
// pipeline or a script is one round trip), and redis-ping/connect the barriers the hub sent on
// its pub/sub connection, both per connect; pool-wait-µs/connect is how long a connect waited
// for one of the pool's connections. docs/benchmarks.md has the numbers.
func BenchmarkConnect(b *testing.B) {
	raiseFDLimit(b, 2*benchStreams+256)
	s := newBenchService(b)
	var rtts atomic.Int64
	s.app.Redis.AddHook(countHook{&rtts})
	pings := func() int64 { return commandCalls(b, s.rdb, "ping") }
	redisPID := redisProcess(b, s.rdb)

	var allUp, cpu time.Duration
	var lat []time.Duration
	var rtt, ping int64
	var redisCPU, poolWait time.Duration
	for b.Loop() {
		rtt0, ping0, cpu0, rcpu0, wait0 := rtts.Load(), pings(), cpuTime(), procCPU(redisPID), s.app.Redis.PoolStats().WaitDurationNs
		conns, times, up, err := openTimed(s.addr, benchStreams, s.path)
		cpu += cpuTime() - cpu0
		redisCPU += procCPU(redisPID) - rcpu0
		poolWait += time.Duration(s.app.Redis.PoolStats().WaitDurationNs - wait0)
		rtt += rtts.Load() - rtt0
		ping += pings() - ping0
		if err != nil {
			b.Fatal(err)
		}
		allUp += up
		lat = append(lat, times...)
		b.StopTimer()
		closeAll(conns)
		deadline := time.Now().Add(10 * time.Second)
		for s.app.Streams.Open() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := s.app.Streams.Open(); n > 0 {
			b.Fatalf("%d streams still open 10 s after their clients left", n)
		}
		// A stream counts as closed before its lease is released: wait
		// until the releases are done, so the next window has none.
		for last := int64(-1); last != rtts.Load(); {
			last = rtts.Load()
			time.Sleep(50 * time.Millisecond)
		}
		b.StartTimer()
	}
	if testing.Verbose() {
		info, _ := s.rdb.Info(context.Background(), "commandstats").Result()
		b.Log(info)
	}
	n := float64(b.N)
	connects := n * benchStreams
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(allUp.Seconds()/n, "all-up-s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/connects, "cpu-µs/connect")
	if redisPID > 0 {
		b.ReportMetric(float64(redisCPU.Microseconds())/connects, "redis-cpu-µs/connect")
	}
	b.ReportMetric(float64(rtt)/connects, "redis-rtt/connect")
	// Time a connect waited for one of the service's pooled Redis
	// connections (go-redis's PoolStats), whatever it then did with it.
	b.ReportMetric(float64(poolWait.Microseconds())/connects, "pool-wait-µs/connect")
	b.ReportMetric(float64(ping)/connects, "redis-ping/connect")
}

// openTimed opens n streams, connectConc at a time, and returns each one's time from dial
// to its first event and the time until the last was up.
func openTimed(addr string, n int, path func(int) string) ([]*sseConn, []time.Duration, time.Duration, error) {
	conns := make([]*sseConn, n)
	times := make([]time.Duration, n)
	errs := make([]error, n)
	sem := make(chan struct{}, connectConc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) {
				t0 := time.Now()
				conns[i], errs[i] = dialSSE(addr, path(i))
				times[i] = time.Since(t0)
			})
		})
	}
	wg.Wait()
	up := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, nil, 0, err
	}
	return conns, times, up, nil
}

// countHook counts the round trips of a go-redis client: a command, or a whole pipeline. It
// counts one when it has come back, so that a count that stopped moving means that nothing is
// left in flight or waiting for a pooled connection (the benchmark waits for that before the
// next op: 1,000 releases at once queue for the pool's connections).
type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		defer h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		defer h.n.Add(1)
		return next(ctx, cmds)
	}
}

// redisProcess is the pid of the redis-server, when it runs on this machine (0 otherwise:
// its CPU is then not reported).
func redisProcess(b *testing.B, rdb *redis.Client) int {
	b.Helper()
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ := strconv.Atoi(rest)
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
				return pid
			}
		}
	}
	return 0
}

// procCPU is a process's user+system time from /proc (0 when unreadable).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// commandCalls is Redis's own count of a command's calls (INFO commandstats), all clients.
func commandCalls(b *testing.B, rdb *redis.Client, name string) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	prefix := "cmdstat_" + name + ":calls="
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return v
		}
	}
	return 0
}
