package loadbench

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestConnectCPU: the phase runs from the first open less a median connect time to the last
// open; each process's CPU and the machine's busy share are interpolated at both ends, and
// what none of the watched processes (loadbench included) ran is "other".
func TestConnectCPU(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	// Every 100 ms: server +60 ms, Redis +20 ms, loadcmp +50 ms, loadbench +10 ms of CPU; the
	// machine (2 cores, 20 jiffies per 100 ms) 16 busy jiffies = 1.6 cores, 0.2 of them other.
	var samples []cpuSample
	for i := range 11 {
		d := time.Duration(i)
		samples = append(samples, cpuSample{at: t0.Add(d * 100 * time.Millisecond),
			cpu:  []time.Duration{d * 60 * time.Millisecond, d * 20 * time.Millisecond, d * 50 * time.Millisecond, d * 10 * time.Millisecond},
			busy: int64(i) * 16, total: int64(i) * 20})
	}
	// 100 connects: the first opened at 300 ms after a 50 ms connect, the last at 750 ms.
	opens := []time.Time{t0.Add(300 * time.Millisecond), t0.Add(500 * time.Millisecond), t0.Add(750 * time.Millisecond)}
	c := connectCPU(samples, opens, 50*time.Millisecond, 100, 2)
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6 }
	// 0.5 s: server 300 ms, Redis 100 ms, loadcmp 250 ms of CPU over 100 connects.
	if !near(c.Seconds, 0.5) || !near(c.Server, 3000) || !near(c.Redis, 1000) || !near(c.Harness, 2500) ||
		!near(c.BusyCores, 1.6) || !near(c.OtherCores, 0.2) {
		t.Fatalf("%+v", c)
	}
	// A phase the samples do not cover is not measured.
	if c := connectCPU(samples, []time.Time{t0.Add(2 * time.Second)}, 0, 100, 2); c != (ConnectCPU{}) {
		t.Fatalf("phase outside the samples: %+v", c)
	}
}

// TestReadServerLog reads the "stream open" and "stream end" lines of a server log, whatever
// else it holds.
func TestReadServerLog(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "server.log")
	err := os.WriteFile(log, []byte(`machinedash SSE - local server
{"time":"2026-12-02T04:13:28.907977284Z","level":"INFO","msg":"stream open","user":"18"}
{"time":"2026-12-02T04:13:28.800000000Z","level":"INFO","msg":"ticket issued","note":"not \"stream open\""}
{"time":"2026-12-02T04:13:28.904018537Z","level":"INFO","msg":"stream open","user":"1"}
{"time":"2026-12-02T04:14:01Z","level":"INFO","msg":"stream end","reason":"client-gone","events":1752,"dropped":0,"coalesced":3}
{"time":"2026-12-02T04:14:01Z","level":"INFO","msg":"stream end","reason":"overflow","events":12,"dropped":40,"coalesced":2}
{"time":"2026-12-02T04:14:01Z","level":"INFO","msg":"stream ended early","coalesced":100}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readServerLog(log)
	if err != nil || len(got.Opens) != 2 || got.Opens[0].Nanosecond() != 904018537 || got.Opens[1].Nanosecond() != 907977284 {
		t.Fatalf("%+v, %v", got, err)
	}
	if got.Ends != 2 || got.Coalesced != 5 || got.Dropped != 40 {
		t.Fatalf("ends %d, coalesced %d, dropped %d; want 2, 5, 40", got.Ends, got.Coalesced, got.Dropped)
	}
}

// TestProcessCPU reads this process's CPU from /proc (Linux) after it has spent some.
func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc")
	}
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
	}
	if got := processCPU(os.Getpid()); got < 10*time.Millisecond {
		t.Fatalf("processCPU = %v after 20 ms of spinning", got)
	}
	if busy, steal, total := machineJiffies(); busy <= 0 || total < busy || steal < 0 || steal > busy {
		t.Fatalf("machine jiffies busy %d of %d", busy, total)
	}
}
