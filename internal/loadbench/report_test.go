package loadbench

import (
	"math"
	"os"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %g, want %g", in, got, tc.want)
		}
		if tc.in[0] != in[0] {
			t.Errorf("Median(%v) reordered its input", in)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

// TestParseResult reads a real loadcmp run's stdout (its table, then its JSON line), so a
// renamed field in loadcmp's report shows up here as a zero.
func TestParseResult(t *testing.T) {
	t.Parallel()
	out, err := os.ReadFile("testdata/loadcmp-a.out")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connect.OK != 100 || r.Connect.P99ms != 88.862253 || r.Connect.AllConnected != 0.103778616 {
		t.Errorf("connect = %+v", r.Connect)
	}
	if r.Delivery.Received != 15000 || r.Delivery.Nominal != 5000 || r.Delivery.Achieved < 5000 {
		t.Errorf("delivery = %+v", r.Delivery)
	}
	if r.Latency.P50 != 0.224256 || r.Latency.P99 != 1.384448 || r.Latency.P999 != 3.948544 {
		t.Errorf("latency = %+v", r.Latency)
	}
	if r.Servers[0].CPUUsPerDelivery < 23.3 || r.Servers[1].CPUUsPerDelivery < 7.3 || r.Servers[0].IdleKiBPerStream != 43.48 {
		t.Errorf("servers = %+v", r.Servers)
	}
	// That run shared the machine with compiles: loadcmp's own warning, and ours.
	if p := r.Problems(); len(p) != 1 || !strings.Contains(p[0], `"other" 1.99 cores`) {
		t.Errorf("Problems() = %q", p)
	}
	if _, err := ParseResult([]byte("target ...\n")); err == nil {
		t.Error("output without a JSON line parsed")
	}
}

func result(p99, cpu, redisCPU float64, lost int64, nominal, other float64) Result {
	var r Result
	r.Latency.P99 = p99
	r.Delivery.Lost, r.Delivery.Nominal, r.Delivery.Achieved = lost, nominal, nominal-float64(lost)
	if nominal > 0 {
		r.Delivery.LossPct = 100 * float64(lost) / nominal
	}
	r.Servers = make([]struct {
		Name             string  `json:"name"`
		IdleKiBPerStream float64 `json:"idle_kib_per_stream"`
		CPUUsPerDelivery float64 `json:"cpu_us_per_delivery"`
	}, 2)
	r.Servers[0].CPUUsPerDelivery, r.Servers[1].CPUUsPerDelivery = cpu, redisCPU
	r.MachineBusy.OtherLoad = other
	return r
}

func TestSummary(t *testing.T) {
	t.Parallel()
	a := Kind{Name: KindA, Rate: 1000}
	s1, s2 := Kind{Name: KindSweep, Rate: 3000}, Kind{Name: KindSweep, Rate: 4000}
	runs := []Run{
		{"before", a, 1, result(5, 14, 1, 0, 50000, 0)},
		{"before", a, 2, result(7, 13, 1, 0, 50000, 0)},
		{"before", a, 3, result(6, 90, 1, 0, 50000, 0.5)}, // a noisy run: in the median, and named
		{"after", a, 1, result(2, 7, 1, 0, 50000, 0)},
		{"before", s1, 1, result(9, 12, 1, 0, 150000, 0)},
		{"before", s2, 1, result(9, 12, 1, 9400, 200000, 0)},
		{"after", s1, 1, result(3, 6, 1, 0, 150000, 0)},
		{"after", s2, 1, result(3, 6, 1, 0, 200000, 0)},
	}
	runs[3].Result.ConnectCPU = ConnectCPU{Seconds: 0.3, Server: 250, Redis: 90, Harness: 200, BusyCores: 1.9, OtherCores: 0.05}
	var b strings.Builder
	if err := Summary(&b, runs, []string{"before", "after"}, []Kind{a, s1, s2}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"0.00 / 6.00 / 0.00|",              // before's p99: the median of 5, 7 and 6
		"14.0 (15.0)|",                     // before's CPU: median 14 without Redis, 15 with it
		"7.0 (8.0)|",                       // after: its one run
		"-|  250 / 90 / 200 (1.90, 0.05)|", // the connect phase's CPU: not measured before
		"sweep 150k/s nominal", "sweep 200k/s nominal",
		">= 150k/s; 200k/s loses 4.70 %|", // before saturates between the two rates
		">= 200k/s|",                      // after does not within the sweep
		"1 of 8 runs were not clean", `before a run 3: "other" 0.50 cores`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestParseBinary(t *testing.T) {
	t.Parallel()
	b, err := ParseBinary("w2=HEAD,STREAM_FLUSH_INTERVAL=2ms,LOG_LEVEL=warn")
	if err != nil || b.Name != "w2" || b.Spec != "HEAD" || len(b.Env) != 2 || b.Env[0] != "STREAM_FLUSH_INTERVAL=2ms" || b.Env[1] != "LOG_LEVEL=warn" {
		t.Fatalf("%+v, %v", b, err)
	}
	if b, err := ParseBinary("HEAD"); err != nil || b.Name != "HEAD" || b.Spec != "HEAD" || b.Env != nil {
		t.Fatalf("%+v, %v", b, err)
	}
	for _, bad := range []string{"=HEAD", "w=", "w=HEAD,NOVALUE", "w=HEAD,=1"} {
		if _, err := ParseBinary(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestProblemsNamesSteal: a run on a host whose hypervisor took CPU is not clean, and says
// why, apart from "other".
func TestProblemsNamesSteal(t *testing.T) {
	t.Parallel()
	var r Result
	r.Servers = make([]struct {
		Name             string  `json:"name"`
		IdleKiBPerStream float64 `json:"idle_kib_per_stream"`
		CPUUsPerDelivery float64 `json:"cpu_us_per_delivery"`
	}, 2)
	if p := r.Problems(); len(p) != 0 {
		t.Fatalf("a quiet run: %q", p)
	}
	r.StealCores = 0.47
	if p := r.Problems(); len(p) != 1 || !strings.Contains(p[0], "steal 0.47 cores") {
		t.Fatalf("Problems() = %q", p)
	}
	if got := stealCores(100, 1000, 150, 1200, 2); got != 0.5 {
		t.Fatalf("stealCores = %v, want 0.5 (50 of 200 jiffies of 2 CPUs)", got)
	}
}
