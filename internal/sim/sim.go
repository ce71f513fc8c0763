// Package sim publishes demo telemetry for a set of machines to Redis, in
// exactly the shapes the ingest pipeline publishes (DESIGN section 4), so
// the service can be demonstrated and tested without real machines.
//
// Invariants: every channel and key name comes from config.Keys; every
// message is one JSON object with deviceId and an ISO 8601 UTC timestamp in
// pubsub.TimeFormat; an alert is pushed onto its device's history list
// (LPUSH, then LTRIM to HistoryLen) before it is published, in one
// pipeline, so a client that sees it live can also find it on replay. The
// simulation is deterministic for a given seed and clock; time comes only
// from the injected clock, so tests advance it instead of sleeping.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/device"
	"github.com/machinedash/sse/internal/pubsub"
)

// Defaults of Config, named so that docs and tests can refer to them.
const (
	DefaultTick        = time.Second      // realtime period per machine
	DefaultCycleMin    = 10 * time.Second // shortest nominal machine cycle
	DefaultCycleMax    = 40 * time.Second // longest nominal machine cycle
	DefaultAlertEvery  = 2 * time.Minute  // mean time between alerts of one machine
	DefaultAlarmEvery  = 10 * time.Minute // mean time between alarms of one machine
	DefaultSeriesEvery = 5                // every n-th cycle also publishes an SPC series
	// HistoryLen is how many alerts a device's history list keeps (the
	// contract's "max 100").
	HistoryLen = 100
)

// ErrNoMachines is returned by New for an empty or invalid machine list.
var ErrNoMachines = errors.New("sim: no valid machine ids")

// Config configures a Simulator. Zero values take the defaults above.
type Config struct {
	Keys     config.Keys
	Machines []string // device ids, e.g. C01, C02
	Seed     uint64   // 0: a random seed
	Clock    clockwork.Clock
	Log      *slog.Logger

	Tick               time.Duration // realtime period
	CycleMin, CycleMax time.Duration // range of the machines' nominal cycle times
	// AlertEvery is the mean interval between alerts of one machine (each
	// interval is drawn from 0.5x..1.5x of it); negative disables alerts.
	AlertEvery time.Duration
	// AlarmEvery is the same for alarms; negative disables alarms.
	AlarmEvery time.Duration
	// SeriesEvery: every n-th cycle also publishes an SPC series; negative
	// disables series.
	SeriesEvery int
}

// Stats are a simulator's counters.
type Stats struct {
	Steps     int64 // ticks published in full
	Failed    int64 // ticks whose pipeline failed
	Published int64 // channel messages published
	Alerts    int64 // alerts published (and pushed onto history)
}

// Redis is what the simulator needs of a Redis client: one pipeline per
// tick, and a read of the status cache at start. go-redis clients satisfy
// it.
type Redis interface {
	// Pipeline returns a pipeline whose Exec sends the queued commands in
	// order, in one round trip.
	Pipeline() redis.Pipeliner
	// MGet reads the status cache of every machine at start.
	MGet(ctx context.Context, keys ...string) *redis.SliceCmd
}

// Simulator publishes the telemetry of its machines. Run it once.
type Simulator struct {
	rdb   Redis
	cfg   Config
	clock clockwork.Clock
	log   *slog.Logger
	rng   *rand.Rand

	machines []*machine

	ready     chan struct{}
	readyOnce sync.Once

	steps, failed, published, alerts atomic.Int64
}

// New returns a simulator of cfg.Machines (invalid or duplicate ids are
// dropped; none left is ErrNoMachines).
func New(rdb Redis, cfg Config) (*Simulator, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.CycleMin <= 0 {
		cfg.CycleMin = DefaultCycleMin
	}
	if cfg.CycleMax < cfg.CycleMin {
		cfg.CycleMax = max(DefaultCycleMax, cfg.CycleMin)
	}
	if cfg.AlertEvery == 0 {
		cfg.AlertEvery = DefaultAlertEvery
	}
	if cfg.AlarmEvery == 0 {
		cfg.AlarmEvery = DefaultAlarmEvery
	}
	if cfg.SeriesEvery == 0 {
		cfg.SeriesEvery = DefaultSeriesEvery
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	s := &Simulator{
		rdb: rdb, cfg: cfg, clock: cfg.Clock, log: cfg.Log,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		ready: make(chan struct{}),
	}
	seen := map[string]bool{}
	for _, id := range cfg.Machines {
		if !device.Valid(id) || seen[id] {
			continue
		}
		seen[id] = true
		s.machines = append(s.machines, newMachine(id, s.rng, cfg))
	}
	if len(s.machines) == 0 {
		return nil, ErrNoMachines
	}
	return s, nil
}

// Ready is closed once the first tick has been published (or failed), so
// that every machine has a status before a caller lets clients in.
func (s *Simulator) Ready() <-chan struct{} { return s.ready }

// Stats returns the counters.
func (s *Simulator) Stats() Stats {
	return Stats{Steps: s.steps.Load(), Failed: s.failed.Load(), Published: s.published.Load(), Alerts: s.alerts.Load()}
}

// Run publishes a tick at once and then every Tick until ctx ends. It
// carries on through Redis errors (logged when they start and stop), and
// returns nil when ctx ends, unless no tick got through at all: then the
// last error, so that a scheduled run against a dead Redis reports failure.
func (s *Simulator) Run(ctx context.Context) error {
	defer s.readyOnce.Do(func() { close(s.ready) })
	s.restore(ctx)
	next := s.clock.Now()
	var lastErr error
	for {
		now := s.clock.Now()
		err := s.step(ctx, now)
		s.readyOnce.Do(func() { close(s.ready) })
		if ctx.Err() != nil {
			return s.result(lastErr)
		}
		switch {
		case err != nil && lastErr == nil:
			s.log.Warn("simulator publish failing", slog.String("err", err.Error()))
		case err == nil && lastErr != nil:
			s.log.Info("simulator publish recovered")
		}
		lastErr = err
		// Keep the 1 Hz grid; after a stall, skip what was missed rather
		// than bursting to catch up.
		next = next.Add(s.cfg.Tick)
		if !next.After(now) {
			next = now.Add(s.cfg.Tick)
		}
		t := s.clock.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return s.result(lastErr)
		case <-t.Chan():
		}
	}
}

func (s *Simulator) result(lastErr error) error {
	if s.steps.Load() == 0 && lastErr != nil {
		return fmt.Errorf("sim: nothing published: %w", lastErr)
	}
	return nil
}

// RunFor runs for d, or until ctx ends, or until margin before ctx's
// deadline (a Lambda's), whichever comes first. d is measured on the
// simulator's clock.
func (s *Simulator) RunFor(ctx context.Context, d, margin time.Duration) error {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := s.clock.AfterFunc(d, cancel)
	defer t.Stop()
	return s.Run(ctx)
}

// restore continues from the status cache where there is one, so that
// consecutive scheduled runs (one Lambda invocation a minute) show
// continuous values and cycle counts rather than a jump every minute.
func (s *Simulator) restore(ctx context.Context) {
	keys := make([]string, len(s.machines))
	for i, m := range s.machines {
		keys[i] = s.cfg.Keys.Status(m.id)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	vals, err := s.rdb.MGet(rctx, keys...).Result()
	if err != nil {
		return
	}
	for i, v := range vals {
		if str, ok := v.(string); ok && i < len(s.machines) {
			s.machines[i].restore(str)
		}
	}
}

// step advances every machine to now and publishes the tick in one
// pipeline: per machine the status cache first (a client connecting meanwhile
// gets a snapshot no older than the live data), then realtime, SPC, series,
// and for an alert LPUSH + LTRIM before its PUBLISH.
func (s *Simulator) step(ctx context.Context, now time.Time) error {
	p := s.rdb.Pipeline()
	k := s.cfg.Keys
	var published, alerts int64
	for _, m := range s.machines {
		out := m.advance(now, s.rng, s.cfg)
		p.Set(ctx, k.Status(m.id), out.status, 0)
		for _, e := range []struct {
			kind *channel.Kind
			msg  []byte
		}{{channel.Realtime, out.realtime}, {channel.SPC, out.spc}, {channel.SPCSeries, out.series}, {channel.Alarm, out.alarm}, {channel.Alert, out.alert}} {
			if e.msg == nil {
				continue
			}
			enqueue(ctx, p, k, e.kind, m.id, e.msg)
			published++
			if e.kind == channel.Alert {
				alerts++
			}
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		s.failed.Add(1)
		return err
	}
	s.steps.Add(1)
	s.published.Add(published)
	s.alerts.Add(alerts)
	return nil
}

// message is the envelope of every channel message.
type message struct {
	DeviceID  string `json:"deviceId"`
	Data      any    `json:"data,omitempty"`
	Alert     any    `json:"alert,omitempty"`
	Alarm     any    `json:"alarm,omitempty"`
	Timestamp string `json:"timestamp"`
}

// payload is the "data" of realtime, SPC and series messages, as the MQTT
// processors shape it: {devId, Data}.
type payload struct {
	DevID string         `json:"devId"`
	Data  map[string]any `json:"Data"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value here is built from maps of numbers and strings.
		panic(fmt.Sprintf("sim: encode: %v", err))
	}
	return b
}

func stamp(t time.Time) string { return t.UTC().Format(pubsub.TimeFormat) }
