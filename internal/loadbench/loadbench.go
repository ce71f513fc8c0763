// Package loadbench drives the fan-out load harness (../shared/loadcmp, target redis-sse)
// against builds of the local server and prints issue 14's table: for each binary, side by
// side, the median of N runs of each figure of workload (a), an idle run and a saturation sweep.
//
// Every run starts from nothing: its own redis-server on a free port, seeded with the users'
// devices, a fresh server process, one ticket per stream minted through the server, then one
// loadcmp run. Runs alternate between the binaries (before, after, before, ...), so a slow
// drift of the machine touches both sides alike. A run that another program shared ("other"
// CPU above 0.1 cores, loadcmp's own threshold) or whose streams failed is reported, never
// dropped: the medians include it. Every process it starts dies with it (parent-death signal)
// and is stopped at the end of its run.
package loadbench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kinds of run.
const (
	KindA     = "a"     // workload (a): latency, CPU per delivery, loss, connect under the workload's setup
	KindIdle  = "idle"  // -rate 0: RSS per idle stream, connect all-up and p99
	KindSweep = "sweep" // one rate of the saturation sweep
)

// Kind is one run's workload: its name and publish rate (updates/s over all devices).
type Kind struct {
	Name string
	Rate float64
}

func (k Kind) String() string {
	if k.Name == KindSweep {
		return fmt.Sprintf("sweep-%g", k.Rate)
	}
	return k.Name
}

// Binary is one column of the table: a local-server binary, given as a path or built from a
// git revision of Config.Repo.
type Binary struct {
	Name string   // column header
	Spec string   // an executable file, or a git revision
	Env  []string // VAR=VALUE added to the server's environment
	path string   // the executable, once resolved
}

// ParseBinary reads NAME=PATH-OR-REVISION[,VAR=VALUE...] (a bare value is its own name):
// the same binary can then be a column per setting, e.g. w2=HEAD,STREAM_FLUSH_INTERVAL=2ms.
func ParseBinary(s string) (Binary, error) {
	head, vars, _ := strings.Cut(s, ",")
	name, spec, ok := strings.Cut(head, "=")
	if !ok {
		name, spec = head, head
	}
	if name == "" || spec == "" {
		return Binary{}, fmt.Errorf("loadbench: binary %q: want NAME=PATH or NAME=REVISION", s)
	}
	b := Binary{Name: name, Spec: spec}
	if vars != "" {
		for _, v := range strings.Split(vars, ",") {
			if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
				return Binary{}, fmt.Errorf("loadbench: binary %q: %q is not VAR=VALUE", s, v)
			}
			b.Env = append(b.Env, v)
		}
	}
	return b, nil
}

// Config is what to run. Zero values are not defaults: the command's flags give them.
type Config struct {
	Repo     string // the git repository revisions are built from
	Harness  string // loadcmp's source folder (its scripts/ seed Redis and mint tickets)
	Work     string // binaries, logs and results.jsonl go here
	Binaries []Binary
	Runs     int // repetitions of every kind, per binary

	Streams, Devices, PerStream int
	Rate                        float64       // workload (a)
	Duration, Warmup            time.Duration // workload (a)
	Idle                        time.Duration // the idle hold of every run (the idle run's RSS is read at its end)
	Sweep                       []float64     // saturation sweep rates; none: no sweep
	SweepDuration, SweepWarmup  time.Duration
	Kinds                       []string // which of KindA, KindIdle, KindSweep to run

	Log io.Writer // progress, one line per run
}

// kinds lists the runs of one repetition in the order they run.
func (c Config) kinds() []Kind {
	var ks []Kind
	for _, name := range []string{KindA, KindIdle, KindSweep} {
		if !contains(c.Kinds, name) {
			continue
		}
		switch name {
		case KindA:
			ks = append(ks, Kind{Name: KindA, Rate: c.Rate})
		case KindIdle:
			ks = append(ks, Kind{Name: KindIdle})
		case KindSweep:
			for _, r := range c.Sweep {
				ks = append(ks, Kind{Name: KindSweep, Rate: r})
			}
		}
	}
	return ks
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Check reports every problem of c at once.
func (c Config) Check() error {
	var errs []error
	if len(c.Binaries) == 0 {
		errs = append(errs, errors.New("no binary to measure (NAME=PATH or NAME=REVISION arguments)"))
	}
	seen := map[string]bool{}
	for _, b := range c.Binaries {
		if seen[b.Name] {
			errs = append(errs, fmt.Errorf("binary name %q given twice", b.Name))
		}
		seen[b.Name] = true
	}
	if c.Runs < 1 {
		errs = append(errs, fmt.Errorf("-runs %d: at least 1", c.Runs))
	}
	if c.Streams < 1 || c.Devices < 1 || c.PerStream < 1 || c.PerStream > c.Devices {
		errs = append(errs, fmt.Errorf("-streams %d -devices %d -per-stream %d: all positive, per-stream <= devices", c.Streams, c.Devices, c.PerStream))
	}
	for _, k := range c.Kinds {
		if k != KindA && k != KindIdle && k != KindSweep {
			errs = append(errs, fmt.Errorf("-kinds: unknown kind %q (a, idle, sweep)", k))
		}
	}
	if contains(c.Kinds, KindSweep) && len(c.Sweep) == 0 {
		errs = append(errs, errors.New("-sweep: no rates for the sweep"))
	}
	for _, f := range []string{"seed.py", "tickets.py"} {
		if _, err := os.Stat(filepath.Join(c.Harness, "scripts", f)); err != nil {
			errs = append(errs, fmt.Errorf("-harness %s: no scripts/%s (the loadcmp source folder)", c.Harness, f))
		}
	}
	return errors.Join(errs...)
}

// ParseRates reads a comma-separated list of publish rates.
func ParseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("loadbench: rate %q: want a positive number", f)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// Measure builds loadcmp and the binaries, runs every kind Runs times per binary, writes the
// summary to out and returns the runs. Each run's loadcmp JSON line is appended to
// Work/results.jsonl, and its processes' output kept in Work/runs/. A run that fails is tried
// once more from nothing, then left out of the table and named under it (the error says how
// many); an interrupt (ctx) ends the runs and still writes the table of those done.
func Measure(ctx context.Context, c Config, out io.Writer) ([]Run, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	for _, p := range []*string{&c.Repo, &c.Harness, &c.Work} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if err := os.MkdirAll(filepath.Join(c.Work, "runs"), 0o755); err != nil {
		return nil, err
	}
	loadcmp, err := buildHarness(ctx, c)
	if err != nil {
		return nil, err
	}
	for i := range c.Binaries {
		if c.Binaries[i].path, err = resolve(ctx, c, c.Binaries[i]); err != nil {
			return nil, err
		}
	}
	kinds := c.kinds()
	total := c.Runs * len(c.Binaries) * len(kinds)
	fmt.Fprintf(c.Log, "loadbench: %d runs (%d kinds x %d binaries x %d), work folder %s, load average at start %s\n",
		total, len(kinds), len(c.Binaries), c.Runs, c.Work, loadAvg())
	atStart := busiest(2*time.Second, 5)
	fmt.Fprintf(c.Log, "loadbench: busiest processes before the first run (cores over 2 s): %s\n", atStart)
	started := time.Now()
	var runs []Run
	var failed []string
	done := 0
runs:
	for rep := 1; rep <= c.Runs; rep++ {
		for _, k := range kinds {
			for _, b := range c.Binaries {
				r := Run{Binary: b.Name, Kind: k, Rep: rep}
				label := fmt.Sprintf("%s-%s-%d", b.Name, k, rep)
				res, err := runOnce(ctx, c, loadcmp, b, k, label)
				if err != nil && ctx.Err() == nil {
					// Unattended runs go on: a run that failed (a port taken
					// meanwhile, a process that did not start) is tried once
					// more from nothing, then left out and named.
					fmt.Fprintf(c.Log, "loadbench: %s %s run %d failed, trying once more: %v\n", b.Name, k, rep, err)
					res, err = runOnce(ctx, c, loadcmp, b, k, label+"-retry")
				}
				done++
				if ctx.Err() != nil {
					fmt.Fprintf(c.Log, "loadbench: interrupted; the table has the runs done so far\n")
					break runs
				}
				if err != nil {
					failed = append(failed, fmt.Sprintf("%s %s run %d: %v", b.Name, k, rep, err))
					fmt.Fprintf(c.Log, "[%d/%d %s] %s %s run %d FAILED: %v\n", done, total, time.Since(started).Round(time.Second), b.Name, k, rep, err)
					continue
				}
				r.Result = res
				runs = append(runs, r)
				fmt.Fprintf(c.Log, "[%d/%d %s] %s\n", done, total, time.Since(started).Round(time.Second), brief(r))
			}
		}
	}
	names := make([]string, len(c.Binaries))
	for i, b := range c.Binaries {
		names[i] = b.Name
	}
	fmt.Fprintf(out, "loadbench: %d streams x %d of %d devices, median of %d runs each, load average at the end %s\n",
		c.Streams, c.PerStream, c.Devices, c.Runs, loadAvg())
	fmt.Fprintf(out, "busiest processes (cores over 2 s) before the first run: %s; after the last: %s\n\n",
		atStart, busiest(2*time.Second, 5))
	if err := Summary(out, runs, names, kinds); err != nil {
		return runs, err
	}
	if len(failed) > 0 {
		fmt.Fprintf(out, "\nFAILED, not in the table (%d of %d runs; logs in %s/runs/):\n  %s\n", len(failed), total, c.Work, strings.Join(failed, "\n  "))
		return runs, fmt.Errorf("loadbench: %d of %d runs failed", len(failed), total)
	}
	return runs, ctx.Err()
}

// brief is a run's progress line.
func brief(r Run) string {
	res := r.Result
	s := fmt.Sprintf("%s %s run %d: connect %.2fs p99 %.1fms", r.Binary, r.Kind, r.Rep, res.Connect.AllConnected, res.Connect.P99ms)
	if r.Kind.Name == KindIdle {
		s += fmt.Sprintf(", %.1f KiB/idle stream", res.Servers[0].IdleKiBPerStream)
	} else {
		s += fmt.Sprintf(", p99 %.2fms, %.1f µs/delivery (+redis %.1f), %.0f/s of %.0f nominal, lost %d",
			res.Latency.P99, res.Servers[0].CPUUsPerDelivery, res.Servers[1].CPUUsPerDelivery,
			res.Delivery.Achieved, res.Delivery.Nominal, res.Delivery.Lost)
		if res.Coalesced+res.Dropped > 0 {
			s += fmt.Sprintf(" (the server coalesced %d, dropped %d)", res.Coalesced, res.Dropped)
		}
	}
	s += fmt.Sprintf(`, other %.2f cores (steal %.2f)`, max(res.MachineBusy.OtherIdle, res.MachineBusy.OtherLoad), res.StealCores)
	if c := res.ConnectCPU; c.Seconds > 0 {
		s += fmt.Sprintf("; connect CPU µs/connect server %.0f, Redis %.0f, loadcmp %.0f (busy %.2f, other %.2f cores)",
			c.Server, c.Redis, c.Harness, c.BusyCores, c.OtherCores)
	}
	if p := res.Problems(); len(p) > 0 {
		s += " NOT CLEAN: " + strings.Join(p, ", ")
	}
	return s
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// busiest samples every process's CPU over d and returns the top n, as "name[pid] cores"
// entries: what else ran on the machine, beside the load average. A process that both
// started and ended within d (a short compile) is not seen.
func busiest(d time.Duration, n int) string {
	before := procTimes()
	time.Sleep(d)
	after := procTimes()
	type p struct {
		name  string
		pid   int
		cores float64
	}
	var ps []p
	for pid, a := range after {
		b := before[pid] // a process started meanwhile: all its time is in the window
		if a.ticks <= b.ticks {
			continue
		}
		ps = append(ps, p{a.name, pid, float64(a.ticks-b.ticks) / 100 / d.Seconds()}) // USER_HZ 100
	}
	slices.SortFunc(ps, func(x, y p) int { return cmp.Compare(y.cores, x.cores) })
	var out []string
	for _, x := range ps[:min(n, len(ps))] {
		out = append(out, fmt.Sprintf("%s[%d] %.2f", x.name, x.pid, x.cores))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

type procTime struct {
	name  string
	ticks int64 // utime + stime
}

func procTimes() map[int]procTime {
	out := map[int]procTime{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = procTime{string(b[open+1 : end]), u + s}
	}
	return out
}
