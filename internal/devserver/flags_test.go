package devserver_test

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/devserver"
)

func parse(t *testing.T, args ...string) (devserver.Options, string, error) {
	t.Helper()
	var o devserver.Options
	var out bytes.Buffer
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(&out)
	o.Register(fs)
	if err := fs.Parse(args); err != nil {
		return o, out.String(), err
	}
	return o, out.String(), o.Check()
}

// TestFlagErrorsNameTheFlag: a value out of range is reported by the flag
// that was given, not by the setting it turns into, and all at once.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-max-stream", "2s"}, []string{"-max-stream: 2s"}},
		{[]string{"-alert-every", "-5s"}, []string{"-alert-every: -5s"}},
		{[]string{"-max-stream", "2s", "-alert-every", "-5s", "-alarm-every", "-1m"}, []string{"-max-stream", "-alert-every", "-alarm-every"}},
		{[]string{"-max-stream", "often"}, []string{"-max-stream"}},
	} {
		_, _, err := parse(t, tc.args...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want it to name %q", tc.args, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), "STREAM_MAX_DURATION") {
			t.Errorf("%v: error names the setting, not the flag: %v", tc.args, err)
		}
	}
	o, _, err := parse(t, "-max-stream", "30s", "-alert-every", "10s", "-alarm-every", "1m", "-addr", "127.0.0.1:8130")
	if err != nil || o.MaxStream.String() != "30s" || o.Sim.AlertEvery.String() != "10s" || o.Sim.AlarmEvery.String() != "1m0s" || o.Addr != "127.0.0.1:8130" {
		t.Fatalf("valid flags: %+v, %v", o, err)
	}
}

// TestHelpListsFlagsAndEnvironment: -h shows every flag and the settings
// that matter locally, and each of those is a name the service reads.
func TestHelpListsFlagsAndEnvironment(t *testing.T) {
	t.Parallel()
	_, out, err := parse(t, "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-addr", "-simulate", "-max-stream", "-alert-every", "-alarm-every", "make dev DEV_FLAGS", "README.md"} {
		if !strings.Contains(out, want) {
			t.Errorf("-h lacks %q:\n%s", want, out)
		}
	}
	names := config.Names()
	for _, e := range devserver.LocalEnv {
		if !strings.Contains(out, e.Name) {
			t.Errorf("-h lacks %s", e.Name)
		}
		if !slices.Contains(names, e.Name) {
			t.Errorf("LocalEnv names %s, which config.Load does not read", e.Name)
		}
	}
}
