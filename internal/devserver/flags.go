package devserver

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/sim"
)

// Register defines the local server's flags on fs, writing into o, and
// sets fs's usage text (flags, then the environment that matters
// locally). Check the result after parsing.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "listen address (another port if 8080 is taken, e.g. 127.0.0.1:8081)")
	fs.BoolVar(&o.Simulate, "simulate", true, "publish demo telemetry for the demo machines")
	fs.DurationVar(&o.MaxStream, "max-stream", 0, fmt.Sprintf("stream lifetime before the server rotates it, e.g. 30s, at least %s (sets STREAM_MAX_DURATION; default as Lambda: 15m)", config.MinStreamMaxDuration))
	fs.DurationVar(&o.Sim.AlertEvery, "alert-every", 0, fmt.Sprintf("mean time between simulated alerts per machine (default %s)", sim.DefaultAlertEvery))
	fs.DurationVar(&o.Sim.AlarmEvery, "alarm-every", 0, fmt.Sprintf("mean time between simulated alarms per machine (default %s)", sim.DefaultAlarmEvery))
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the server to this file until it stops, for go tool pprof (default none)")
	fs.Usage = func() { usage(fs.Output(), fs) }
}

// Check reports every flag value out of range at once, each by its flag's
// name (the flag package has already refused what does not parse).
func (o Options) Check() error {
	var errs []error
	if d := o.MaxStream; d != 0 && (d < config.MinStreamMaxDuration || d > config.MaxStreamMaxDuration) {
		errs = append(errs, fmt.Errorf("-max-stream: %s is outside %s..%s", d, config.MinStreamMaxDuration, config.MaxStreamMaxDuration))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"-alert-every", o.Sim.AlertEvery}, {"-alarm-every", o.Sim.AlarmEvery}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s: %s must be positive (omit it for the default)", f.name, f.d))
		}
	}
	return errors.Join(errs...)
}

// LocalEnv are the settings worth knowing for local work, with what the
// local server does when they are unset; -h prints them. Every name is
// one config.Load reads (tested); the rest are in README's configuration
// table.
var LocalEnv = []struct{ Name, Meaning string }{
	{"REDIS_URL", "a real Redis, redis://host:port; unset: an embedded one (miniredis)"},
	{"ACCESS_TOKEN_SECRET", "HS256 secret of access tokens; unset: a dev value, printed"},
	{"STREAM_TICKET_SECRET", "ticket secret, at least 32 bytes; unset: a dev value, printed"},
	{"CORS_ALLOWED_ORIGINS", "dashboard origins; unset: this server's own and " + strings.Join(DashboardDevOrigins, ", ")},
	{"HEARTBEAT_INTERVAL", "heartbeat and lease renewal (25s)"},
	{"REALTIME_MIN_INTERVAL", "realtime coalescing per device and stream (1s)"},
	{"STREAM_MAX_DURATION", "as -max-stream (the flag wins)"},
	{"MAX_DATA_STREAMS_PER_USER", "data streams per user (1): raise it to keep several tabs live"},
	{"MAX_ALERT_STREAMS_PER_USER", "alert streams per user (1)"},
	{"CONNECTION_LIMIT_POLICY", "evict-oldest (default) or reject"},
	{"LOG_LEVEL", "debug, info (default), warn, error"},
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: go run ./functions/local [flags]  (or: make dev DEV_FLAGS='flags')\n\n")
	fmt.Fprintf(w, "The whole service on one port with demo users, a simulator and a dashboard.\n\nFlags:\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nEnvironment (read as the functions read it):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range LocalEnv {
		fmt.Fprintf(tw, "  %s\t%s\n", e.Name, e.Meaning)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "Every setting: README.md, Configuration.\n")
}
