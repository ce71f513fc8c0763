package loadbench

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ConnectCPU is where the CPU of a run's connect phase went: per connect, what the server,
// its Redis and loadcmp (its client) ran, and the machine's busy cores over the phase with the
// part charged to none of them (loadbench's own sampling is taken out). loadcmp reports CPU
// for the idle hold and the load window only; the connect burst is what issue 14's connect
// goal is about, and whether it is CPU-bound (busy near the cores) and whose CPU it is.
type ConnectCPU struct {
	Seconds                float64 // the phase: first connect's start .. last "stream open"
	Server, Redis, Harness float64 // µs per connect
	BusyCores, OtherCores  float64
}

// cpuSample is one reading: CPU time of each watched process, the machine's busy and total
// jiffies (/proc/stat), at a time.
type cpuSample struct {
	at          time.Time
	cpu         []time.Duration // server, redis, loadcmp, loadbench itself
	busy, total int64
}

// sampleEvery is the sampling period: the phase lasts 0.2-1 s, and an edge of the window falls
// within one period of a sample.
const sampleEvery = 10 * time.Millisecond

// sampleConnect reads the CPU of pids (and of this process) every sampleEvery from now until
// the server's log, which grows with each "stream open" line, has grown and then stayed still
// for quietFor, or stop is closed. Sampling ends with the connect burst so that the idle hold,
// where loadcmp measures "other", does not carry it.
func sampleConnect(serverLog string, pids []int, stop <-chan struct{}) <-chan []cpuSample {
	const quietFor = 300 * time.Millisecond
	out := make(chan []cpuSample, 1)
	go func() {
		var samples []cpuSample
		pids := append(pids, os.Getpid())
		var size int64 = -1
		var grew time.Time
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			s := cpuSample{at: time.Now(), cpu: make([]time.Duration, len(pids))}
			for i, pid := range pids {
				s.cpu[i] = processCPU(pid)
			}
			s.busy, _, s.total = machineJiffies()
			samples = append(samples, s)
			if st, err := os.Stat(serverLog); err == nil {
				if size >= 0 && st.Size() != size {
					grew = s.at
				}
				size = st.Size()
			}
			if !grew.IsZero() && s.at.Sub(grew) > quietFor {
				break
			}
			select {
			case <-stop:
				out <- samples
				return
			case <-t.C:
			}
		}
		out <- samples
	}()
	return out
}

// processCPU is the CPU time of pid's threads (/proc/PID/task/*/schedstat, in ns), 0 when it
// cannot be read.
func processCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			n += v
		}
	}
	return time.Duration(n)
}

// machineJiffies reads /proc/stat's cpu line: busy (all but idle and iowait), steal (what the
// hypervisor gave to other guests while this one had work; part of busy) and total.
func machineJiffies() (busy, steal, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, 0
	}
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
		if i == 7 {
			steal = v
		}
	}
	return busy, steal, total
}

// stealCores is the cores the hypervisor took between two readings of machineJiffies.
func stealCores(steal0, total0, steal1, total1 int64, cpus int) float64 {
	if total1 <= total0 {
		return 0
	}
	return float64(steal1-steal0) / float64(total1-total0) * float64(cpus)
}

// serverLog is what a run's server log (the server's JSON log) says of its streams.
type serverLog struct {
	Opens []time.Time // the "stream open" lines' times, sorted
	Ends  int         // "stream end" lines
	// Coalesced and Dropped sum the "stream end" lines' counts: realtime updates a newer one
	// replaced in a stream's queue before it was written (the service's per-device coalescing,
	// which a stall of one device's period triggers even at REALTIME_MIN_INTERVAL=0), and
	// messages refused after a queue overflowed. Both show up in loadcmp's "lost".
	Coalesced, Dropped int64
}

// readServerLog reads path, whatever else it holds.
func readServerLog(path string) (serverLog, error) {
	var out serverLog
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"stream `) {
			continue
		}
		var l struct {
			Time      time.Time `json:"time"`
			Msg       string    `json:"msg"`
			Coalesced int64     `json:"coalesced"`
			Dropped   int64     `json:"dropped"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		switch l.Msg {
		case "stream open":
			out.Opens = append(out.Opens, l.Time)
		case "stream end":
			out.Ends++
			out.Coalesced += l.Coalesced
			out.Dropped += l.Dropped
		}
	}
	sort.Slice(out.Opens, func(i, j int) bool { return out.Opens[i].Before(out.Opens[j]) })
	return out, sc.Err()
}

// connectCPU is the phase's CPU from the samples: from the first stream's open less a median
// connect time (its request was sent about that long before) to the last stream's open, each
// process's CPU interpolated at both ends. cores is the machine's CPU count. It is zero when
// the samples do not cover the phase.
func connectCPU(samples []cpuSample, opens []time.Time, p50 time.Duration, connects, cores int) ConnectCPU {
	if len(opens) == 0 || len(samples) < 2 || connects == 0 {
		return ConnectCPU{}
	}
	t0, t1 := opens[0].Add(-p50), opens[len(opens)-1]
	if t0.Before(samples[0].at) || t1.After(samples[len(samples)-1].at) || !t1.After(t0) {
		return ConnectCPU{}
	}
	// at interpolates v (a counter of the samples) at t.
	at := func(t time.Time, v func(cpuSample) float64) float64 {
		i := sort.Search(len(samples), func(i int) bool { return !samples[i].at.Before(t) })
		if i == 0 {
			return v(samples[0])
		}
		a, b := samples[i-1], samples[i]
		f := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
		return v(a) + f*(v(b)-v(a))
	}
	delta := func(v func(cpuSample) float64) float64 { return at(t1, v) - at(t0, v) }
	proc := func(i int) float64 {
		return delta(func(s cpuSample) float64 { return float64(s.cpu[i]) }) // ns
	}
	d := float64(t1.Sub(t0))
	c := ConnectCPU{Seconds: d / 1e9}
	perConnect := func(ns float64) float64 { return ns / 1e3 / float64(connects) }
	c.Server, c.Redis, c.Harness = perConnect(proc(0)), perConnect(proc(1)), perConnect(proc(2))
	if total := delta(func(s cpuSample) float64 { return float64(s.total) }); total > 0 {
		c.BusyCores = float64(cores) * delta(func(s cpuSample) float64 { return float64(s.busy) }) / total
	}
	ours := proc(0) + proc(1) + proc(2) + proc(3)
	c.OtherCores = max(c.BusyCores-ours/d, 0)
	return c
}
