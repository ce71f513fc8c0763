package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/ticket"
)

// BenchmarkProcess measures one real stream bootstrap process serving
// many invocations at once (Lambda Managed Instances,
// AWS_LAMBDA_MAX_CONCURRENCY=streams) against the fake Runtime API, and,
// for comparison, the classic mode's process with its one stream. The
// traffic is the same in every case: 100 devices publishing 10 SPC
// messages/s each (never coalesced) for a 3 s window per op; stream i
// carries device i%100, so 1,000 streams are 10 per device. The cases
// with devices=5 are the load harness's workload (a) instead: stream i
// carries devices 5i..5i+4 (mod 100), and the devices publish one after
// another, 1 ms apart, so that a stream's five events come as a burst
// over 4 ms (50k deliveries/s at 1,000 streams); flush=5ms runs them with
// STREAM_FLUSH_INTERVAL=5ms.
//
// Metrics: peak-RSS-MiB (VmHWM of the process), RSS-KiB/stream (peak minus
// the idle process's RSS, per stream), cpu-µs/delivery (the process's
// user+system time over the windows / deliveries), redis-conns (CLIENT
// LIST entries of the process, the pub/sub one included), deliveries/s.
// docs/benchmarks.md has the numbers.
func BenchmarkProcess(b *testing.B) {
	newEnv(b) // skip (or fail with REQUIRE_REDIS=1) before building
	bin := lambdatest.Build(b, ".")
	for _, tc := range []struct {
		name                     string
		streams, conc, perStream int
		env                      []string
	}{
		{"classic/streams=1", 1, 1, 1, nil},
		{"managed/streams=200", 200, 200, 1, nil},
		{"managed/streams=1000", 1000, 1000, 1, nil},
		{"managed/streams=1000/devices=5", 1000, 1000, 5, nil},
		{"managed/streams=1000/devices=5/flush=5ms", 1000, 1000, 5, []string{"STREAM_FLUSH_INTERVAL=5ms"}},
	} {
		b.Run(tc.name, func(b *testing.B) { benchProcess(b, bin, tc.streams, tc.conc, tc.perStream, tc.env) })
	}
}

const (
	benchDevices = 100
	benchRate    = 10 // messages per device and second
	benchWindow  = 3 * time.Second
)

func benchProcess(b *testing.B, bin string, streams, conc, perStream int, env []string) {
	e := newEnv(b, append([]string{"MAX_STREAMS_PER_IP=100000", "HEARTBEAT_INTERVAL=25s", "LOG_LEVEL=warn"}, env...)...)
	rt := lambdatest.Start(b, lambdatest.MaxConcurrency(conc))
	proc := lambdatest.Run(b, bin, rt, e.vars...)
	ctx := lambdatest.Within(b, 2*time.Minute)

	// The idle process: started, every runtime loop waiting in GET next.
	for rt.Busy() < conc {
		select {
		case <-ctx.Done():
			b.Fatal("the process never polled for invocations")
		case <-time.After(5 * time.Millisecond):
		}
	}
	idle, err := proc.Memory()
	if err != nil {
		b.Fatal(err)
	}

	// Every stream connects at once, as after a deploy: the pool grows
	// to what that burst needs.
	var deliveries atomic.Int64
	var wg sync.WaitGroup
	invs := make([]*lambdatest.Invocation, streams)
	for i := range invs {
		user := "b" + strconv.Itoa(i)
		devs := make([]string, perStream)
		for j := range devs {
			devs[j] = "D" + strconv.Itoa((i*perStream+j)%benchDevices)
		}
		if err := e.rdb.SAdd(ctx, e.keys.UserDevices(user), devs).Err(); err != nil {
			b.Fatal(err)
		}
		tok, _, err := e.tickets.Issue(ctx, user, purpose.Data, ticket.DefaultTTL)
		if err != nil {
			b.Fatal(err)
		}
		invs[i] = rt.Invoke(lambdatest.Event(b, "stream-request.json", "{{TICKET}}", tok, "C02,C03", strings.Join(devs, ",")), time.Now().Add(10*time.Minute))
	}
	for _, inv := range invs {
		if p, err := inv.Prelude(ctx); err != nil || p.StatusCode != 200 {
			b.Fatalf("prelude %+v, %v", p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := inv.Next(ctx)
				if err != nil {
					return
				}
				deliveries.Add(int64(bytes.Count(c.Data, []byte("event: spc-update\n"))))
			}
		}()
	}
	conns := len(processConns(b, e.rdb, proc.Pid()))

	payloads := make([][]byte, benchDevices)
	for d := range payloads {
		payloads[d] = fmt.Appendf(nil, `{"deviceId":"D%d","data":{"value":%d,"pad":"%0200d"}}`, d, d, 0)
	}
	publish := func(d time.Duration) {
		end := time.Now().Add(d)
		if perStream > 1 { // one device per tick, in order
			tick := time.NewTicker(time.Second / benchRate / benchDevices)
			defer tick.Stop()
			for i := 0; time.Now().Before(end); i++ {
				<-tick.C
				if err := e.rdb.Publish(ctx, e.keys.Channel(channel.SPC), payloads[i%benchDevices]).Err(); err != nil {
					b.Fatal(err)
				}
			}
			return
		}
		tick := time.NewTicker(time.Second / benchRate)
		defer tick.Stop()
		for time.Now().Before(end) {
			<-tick.C
			pipe := e.rdb.Pipeline()
			for _, p := range payloads {
				pipe.Publish(ctx, e.keys.Channel(channel.SPC), p)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	publish(time.Second) // warm-up
	b.ResetTimer()
	var cpu time.Duration
	var delivered int64
	for range b.N {
		before, d0 := cpuOf(b, proc), deliveries.Load()
		publish(benchWindow)
		time.Sleep(200 * time.Millisecond) // the last tick's deliveries arrive
		cpu += cpuOf(b, proc) - before
		delivered += deliveries.Load() - d0
	}
	b.StopTimer()
	m, err := proc.Memory()
	if err != nil {
		b.Fatal(err)
	}
	if delivered == 0 {
		b.Fatal("no deliveries")
	}
	want := int64(b.N) * int64(benchWindow/time.Second) * benchRate * int64(streams*perStream)
	b.ReportMetric(float64(streams), "streams")
	b.ReportMetric(float64(m.Peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(m.Peak-idle.Current)/1024/float64(streams), "RSS-KiB/stream")
	b.ReportMetric(float64(cpu.Microseconds())/float64(delivered), "cpu-µs/delivery")
	b.ReportMetric(float64(conns), "redis-conns")
	b.ReportMetric(float64(delivered)/(float64(b.N)*benchWindow.Seconds()), "deliveries/s")
	b.ReportMetric(float64(delivered)/float64(want), "delivered/offered")
	proc.Stop()
	wg.Wait()
}

func cpuOf(b *testing.B, p *lambdatest.Process) time.Duration {
	d, err := p.CPU()
	if err != nil {
		b.Fatal(err)
	}
	return d
}
