package loadbench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Result is the part of one loadcmp JSON line (its internal/loadrun Report) that the issue's
// table reads. Servers[0] is the local server, Servers[1] its redis-server (the order of
// -server-pid).
type Result struct {
	Connect struct {
		OK           int     `json:"ok"`
		Failed       int     `json:"failed"`
		P50ms        float64 `json:"p50_ms"`
		P99ms        float64 `json:"p99_ms"`
		AllConnected float64 `json:"all_connected_s"`
	} `json:"connect"`
	Delivery struct {
		Expected      int64   `json:"expected"`
		Received      int64   `json:"received"`
		Lost          int64   `json:"lost"`
		LossPct       float64 `json:"loss_pct"`
		Nominal       float64 `json:"nominal_per_s"`
		Achieved      float64 `json:"received_per_s"`
		Duplicates    int64   `json:"duplicates"`
		Reordered     int64   `json:"reordered"`
		StreamsFailed int     `json:"streams_failed"`
	} `json:"delivery"`
	Latency struct {
		P50  float64 `json:"p50_ms"`
		P99  float64 `json:"p99_ms"`
		P999 float64 `json:"p999_ms"`
	} `json:"latency"`
	Servers []struct {
		Name             string  `json:"name"`
		IdleKiBPerStream float64 `json:"idle_kib_per_stream"`
		CPUUsPerDelivery float64 `json:"cpu_us_per_delivery"`
	} `json:"servers"`
	MachineBusy struct {
		OtherIdle float64 `json:"other_idle_cores"`
		OtherLoad float64 `json:"other_load_cores"`
	} `json:"machine_busy"`
	// ConnectCPU is loadbench's own: loadcmp does not measure the connect phase's CPU.
	ConnectCPU ConnectCPU `json:"-"`
	// StealCores is loadbench's own too: the cores the hypervisor gave to other guests over
	// the whole run (/proc/stat's steal). loadcmp counts it as busy, so it is part of "other".
	StealCores float64 `json:"-"`
	// Coalesced and Dropped are the server's own counts from its log (serverLog): the part of
	// Delivery.Lost that the service's queues replaced or refused.
	Coalesced, Dropped int64 `json:"-"`
}

// noisyCores is loadcmp's own threshold: CPU charged to neither the servers nor the harness
// above it means another program shared the machine.
const noisyCores = 0.1

// ParseResult reads the last JSON line of a loadcmp run's stdout (its table comes first).
func ParseResult(stdout []byte) (Result, error) {
	var r Result
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "{") {
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				return r, fmt.Errorf("loadbench: loadcmp JSON line: %w", err)
			}
			if len(r.Servers) != 2 {
				return r, fmt.Errorf("loadbench: loadcmp reported %d server processes, want 2 (server, redis)", len(r.Servers))
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("loadbench: no JSON line in loadcmp's output")
}

// Problems says why a run does not count as clean: another program used the machine, or
// streams did not connect or failed. Empty means clean.
func (r Result) Problems() []string {
	var p []string
	if o := max(r.MachineBusy.OtherIdle, r.MachineBusy.OtherLoad); o > noisyCores {
		p = append(p, fmt.Sprintf(`"other" %.2f cores`, o))
	}
	if r.StealCores > noisyCores {
		// Not another program here: a busy host. No figure of such a run is comparable with
		// one on a quiet host, latency least of all.
		p = append(p, fmt.Sprintf("steal %.2f cores (the hypervisor ran other guests)", r.StealCores))
	}
	if r.Connect.Failed > 0 {
		p = append(p, fmt.Sprintf("%d streams did not connect", r.Connect.Failed))
	}
	if r.Delivery.StreamsFailed > 0 {
		p = append(p, fmt.Sprintf("%d streams failed", r.Delivery.StreamsFailed))
	}
	return p
}

// Run is one finished harness run.
type Run struct {
	Binary string // Binary.Name
	Kind   Kind
	Rep    int // 1..Config.Runs
	Result Result
}

// Summary writes the table, each cell the median of the binary's runs of that kind,
// then the runs that were not clean. kinds is the order of the rows' runs; binaries the
// columns.
func Summary(w io.Writer, runs []Run, binaries []string, kinds []Kind) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	header := "figure (median of runs)\t" + strings.Join(binaries, "\t") + "\t"
	fmt.Fprintln(tw, header)
	row := func(name string, cell func(rs []Result) string, kind Kind) {
		cells := []string{name}
		for _, b := range binaries {
			rs := pick(runs, b, kind)
			if len(rs) == 0 {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, cell(rs))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	for _, k := range kinds {
		switch k.Name {
		case KindA:
			label := fmt.Sprintf("(a) %sk/s", kilo(nominalOf(runs, k)))
			row(label+": p50 / p99 / p99.9 ms", func(rs []Result) string {
				return fmt.Sprintf("%.2f / %.2f / %.2f", med(rs, func(r Result) float64 { return r.Latency.P50 }),
					med(rs, func(r Result) float64 { return r.Latency.P99 }), med(rs, func(r Result) float64 { return r.Latency.P999 }))
			}, k)
			row(label+": CPU µs/delivery, service (+ Redis)", func(rs []Result) string {
				svc := med(rs, func(r Result) float64 { return r.Servers[0].CPUUsPerDelivery })
				all := med(rs, func(r Result) float64 { return r.Servers[0].CPUUsPerDelivery + r.Servers[1].CPUUsPerDelivery })
				return fmt.Sprintf("%.1f (%.1f)", svc, all)
			}, k)
			row(label+": lost (coalesced by the server), dup, reordered (max of runs)", func(rs []Result) string {
				return fmt.Sprintf("%.0f (%.0f), %.0f, %.0f", maxOf(rs, func(r Result) float64 { return float64(r.Delivery.Lost) }),
					maxOf(rs, func(r Result) float64 { return float64(r.Coalesced) }),
					maxOf(rs, func(r Result) float64 { return float64(r.Delivery.Duplicates) }),
					maxOf(rs, func(r Result) float64 { return float64(r.Delivery.Reordered) }))
			}, k)
			row(label+": connect all up s / p99 ms", connectCell, k)
			row(label+": "+connectCPULabel, connectCPUCell, k)
		case KindIdle:
			row("idle: RSS per idle stream KiB", func(rs []Result) string {
				return fmt.Sprintf("%.1f", med(rs, func(r Result) float64 { return r.Servers[0].IdleKiBPerStream }))
			}, k)
			row("idle: connect all up s / p99 ms", connectCell, k)
			row("idle: "+connectCPULabel, connectCPUCell, k)
		case KindSweep:
			label := fmt.Sprintf("sweep %sk/s nominal", kilo(nominalOf(runs, k)))
			row(label+": achieved k/s, loss %", func(rs []Result) string {
				return fmt.Sprintf("%.1f, %.2f %%", med(rs, func(r Result) float64 { return r.Delivery.Achieved })/1000,
					med(rs, func(r Result) float64 { return r.Delivery.LossPct }))
			}, k)
			row(label+": CPU µs/delivery (+ Redis)", func(rs []Result) string {
				return fmt.Sprintf("%.1f (%.1f)", med(rs, func(r Result) float64 { return r.Servers[0].CPUUsPerDelivery }),
					med(rs, func(r Result) float64 { return r.Servers[0].CPUUsPerDelivery + r.Servers[1].CPUUsPerDelivery }))
			}, k)
		}
	}
	sat := []string{"saturation: highest sweep rate, all delivered"}
	for _, b := range binaries {
		sat = append(sat, saturation(runs, b, kinds))
	}
	fmt.Fprintln(tw, strings.Join(sat, "\t")+"\t")
	if err := tw.Flush(); err != nil {
		return err
	}
	var dirty []string
	for _, r := range runs {
		if p := r.Result.Problems(); len(p) > 0 {
			dirty = append(dirty, fmt.Sprintf("  %s %s run %d: %s", r.Binary, r.Kind, r.Rep, strings.Join(p, ", ")))
		}
	}
	if len(dirty) > 0 {
		fmt.Fprintf(w, "\nWARNING: %d of %d runs were not clean (repeat them with the machine idle):\n%s\n",
			len(dirty), len(runs), strings.Join(dirty, "\n"))
	} else {
		fmt.Fprintf(w, "\nAll %d runs clean (\"other\" <= %.1f cores, every stream connected).\n", len(runs), noisyCores)
	}
	return nil
}

func connectCell(rs []Result) string {
	return fmt.Sprintf("%.2f / %.1f", med(rs, func(r Result) float64 { return r.Connect.AllConnected }),
		med(rs, func(r Result) float64 { return r.Connect.P99ms }))
}

const connectCPULabel = "connect CPU µs/connect server / Redis / loadcmp (busy, other cores)"

// connectCPUCell is the medians of the connect phase's CPU; "-" when it was not measured (no
// /proc).
func connectCPUCell(rs []Result) string {
	if med(rs, func(r Result) float64 { return r.ConnectCPU.Seconds }) == 0 {
		return "-"
	}
	c := func(f func(ConnectCPU) float64) float64 {
		return med(rs, func(r Result) float64 { return f(r.ConnectCPU) })
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f (%.2f, %.2f)", c(func(c ConnectCPU) float64 { return c.Server }),
		c(func(c ConnectCPU) float64 { return c.Redis }), c(func(c ConnectCPU) float64 { return c.Harness }),
		c(func(c ConnectCPU) float64 { return c.BusyCores }), c(func(c ConnectCPU) float64 { return c.OtherCores }))
}

// saturation is the highest sweep rate whose median run lost nothing, as deliveries/s nominal,
// with the first rate above it and its median loss; "-" when there was no sweep.
func saturation(runs []Run, binary string, kinds []Kind) string {
	best, next := "", ""
	for _, k := range kinds {
		if k.Name != KindSweep {
			continue
		}
		rs := pick(runs, binary, k)
		if len(rs) == 0 {
			continue
		}
		nominal := kilo(med(rs, func(r Result) float64 { return r.Delivery.Nominal }))
		if med(rs, func(r Result) float64 { return float64(r.Delivery.Lost) }) == 0 {
			best = fmt.Sprintf(">= %sk/s", nominal)
		} else if next == "" {
			next = fmt.Sprintf("%sk/s loses %.2f %%", nominal, med(rs, func(r Result) float64 { return r.Delivery.LossPct }))
		}
	}
	switch {
	case best == "" && next == "":
		return "-"
	case best == "":
		return "none; " + next
	case next == "":
		return best
	}
	return best + "; " + next
}

// kilo writes v/1000 with up to 4 significant digits (150000 -> 150, 1500 -> 1.5).
func kilo(v float64) string { return strconv.FormatFloat(v/1000, 'g', 4, 64) }

func pick(runs []Run, binary string, k Kind) []Result {
	var rs []Result
	for _, r := range runs {
		if r.Binary == binary && r.Kind == k {
			rs = append(rs, r.Result)
		}
	}
	return rs
}

func nominalOf(runs []Run, k Kind) float64 {
	for _, r := range runs {
		if r.Kind == k {
			return r.Result.Delivery.Nominal
		}
	}
	return 0
}

// med is the median of f over rs (the mean of the middle two for an even count).
func med(rs []Result, f func(Result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return Median(v)
}

func maxOf(rs []Result, f func(Result) float64) float64 {
	m := math.Inf(-1)
	for _, r := range rs {
		m = max(m, f(r))
	}
	return m
}

// Median of v (NaN when empty); v is not modified.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
