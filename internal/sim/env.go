package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/device"
)

// Settings of a scheduled simulator run, read from the environment.
type Settings struct {
	Duration   time.Duration // SIMULATOR_DURATION, default DefaultDuration
	Machines   []string      // SIMULATOR_DEVICES, default DemoMachines
	AlertEvery time.Duration // SIMULATOR_ALERT_EVERY, default DefaultAlertEvery
	// Owners gives users the simulated machines, so a fresh demo deployment
	// shows live data: SIMULATOR_OWNERS "1=C01,C02,C03;2=C04,C05", "none",
	// or unset for DemoOwners.
	Owners map[string][]string
}

// DemoOwners are the demo users and their machines: make dev seeds them,
// and so does the simulator Lambda unless SIMULATOR_OWNERS says otherwise.
var DemoOwners = map[string][]string{
	"1": {"C01", "C02", "C03"},
	"2": {"C04", "C05"},
}

// DemoMachines are the demo users' machines.
var DemoMachines = []string{"C01", "C02", "C03", "C04", "C05"}

// DefaultDuration is how long a scheduled run publishes. The schedule
// starts one run a minute and the function has one reserved execution, so
// a run must be over (start-up and seeding included) before the next one
// fires, or that one is throttled and lost.
const DefaultDuration = 50 * time.Second

// LoadSettings reads SIMULATOR_DURATION (e.g. 50s; 1s..15m),
// SIMULATOR_DEVICES (comma-separated device ids) and SIMULATOR_ALERT_EVERY
// (mean time between alerts of one machine) through getenv, reporting every
// problem at once.
func LoadSettings(getenv func(string) string) (Settings, error) {
	s := Settings{Duration: DefaultDuration, Machines: slices.Clone(DemoMachines), AlertEvery: DefaultAlertEvery}
	var errs []error
	switch owners := strings.TrimSpace(getenv("SIMULATOR_OWNERS")); owners {
	case "":
		s.Owners = maps.Clone(DemoOwners)
	case "none":
	default:
		o, err := parseOwners(owners)
		if err != nil {
			errs = append(errs, err)
		}
		s.Owners = o
	}
	var err error
	if s.Duration, err = config.Duration(getenv, "SIMULATOR_DURATION", DefaultDuration, time.Second, 15*time.Minute); err != nil {
		errs = append(errs, err)
	}
	if s.AlertEvery, err = config.Duration(getenv, "SIMULATOR_ALERT_EVERY", DefaultAlertEvery, time.Second, 24*time.Hour); err != nil {
		errs = append(errs, err)
	}
	if v := strings.TrimSpace(getenv("SIMULATOR_DEVICES")); v != "" {
		var ids []string
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if !device.Valid(id) {
				errs = append(errs, fmt.Errorf("SIMULATOR_DEVICES: %q is not a valid device id", id))
				continue
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 && len(errs) == 0 {
			errs = append(errs, errors.New("SIMULATOR_DEVICES: no device ids"))
		}
		s.Machines = ids
	}
	return s, errors.Join(errs...)
}

// parseOwners reads "user=dev,dev;user=dev".
func parseOwners(v string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(v, ";") {
		user, devs, ok := strings.Cut(strings.TrimSpace(part), "=")
		user = strings.TrimSpace(user)
		if !ok || user == "" || strings.ContainsAny(user, " {}") {
			return nil, fmt.Errorf("SIMULATOR_OWNERS: %q is not user=device,device", part)
		}
		for _, d := range strings.Split(devs, ",") {
			d = strings.TrimSpace(d)
			if !device.Valid(d) {
				return nil, fmt.Errorf("SIMULATOR_OWNERS: %q is not a valid device id", d)
			}
			out[user] = append(out[user], d)
		}
	}
	return out, nil
}

// SeedOwners adds each user's machines to its ownership set (only adds, so
// it is safe to repeat on every run and never removes the main app's data).
func SeedOwners(ctx context.Context, rdb redis.Cmdable, keys config.Keys, owners map[string][]string) error {
	if len(owners) == 0 {
		return nil
	}
	pipe := rdb.Pipeline()
	for user, devs := range owners {
		members := make([]any, len(devs))
		for i, d := range devs {
			members[i] = d
		}
		pipe.SAdd(ctx, keys.UserDevices(user), members...)
	}
	_, err := pipe.Exec(ctx)
	return err
}
