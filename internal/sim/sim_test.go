package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/sim"
)

var t0 = time.Date(2026, 1, 27, 12, 0, 0, 0, time.UTC)

// received is one channel message seen by the test's subscriber.
type received struct {
	channel string
	payload string
}

// subscribe listens on every contract channel and returns the messages as
// they arrive; it returns only once Redis confirmed the subscription.
func subscribe(t *testing.T, rdb *redis.Client, k config.Keys) <-chan received {
	t.Helper()
	ctx := context.Background()
	chans := []string{k.Channel(channel.Realtime), k.Channel(channel.SPC), k.Channel(channel.SPCSeries), k.Channel(channel.Alert), k.Channel(channel.Alarm)}
	ps := rdb.Subscribe(ctx, chans...)
	t.Cleanup(func() { _ = ps.Close() })
	for range chans {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := ps.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if _, ok := msg.(*redis.Subscription); !ok {
			t.Fatalf("subscribe: got %T", msg)
		}
	}
	out := make(chan received, 4096)
	go func() {
		for {
			msg, err := ps.Receive(ctx)
			if err != nil {
				return
			}
			if m, ok := msg.(*redis.Message); ok {
				out <- received{m.Channel, m.Payload}
			}
		}
	}()
	return out
}

// collect reads n messages, failing after a bounded wait.
func collect(t *testing.T, in <-chan received, n int64) []received {
	t.Helper()
	var got []received
	timeout := time.After(5 * time.Second)
	for int64(len(got)) < n {
		select {
		case m := <-in:
			got = append(got, m)
		case <-timeout:
			t.Fatalf("got %d of %d messages", len(got), n)
		}
	}
	return got
}

// runTicks starts s on clk, lets it publish ticks ticks (the first at
// once), stops it and returns Run's result.
func runTicks(t *testing.T, s *sim.Simulator, clk *clockwork.FakeClock, ticks int) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for i := 1; i < ticks; i++ {
		// One waiter is the simulator's timer: the previous tick is out.
		bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := clk.BlockUntilContext(bctx, 1); err != nil {
			t.Fatalf("tick %d: simulator did not wait for its timer: %v", i, err)
		}
		bcancel()
		clk.Advance(time.Second)
	}
	bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
	defer bcancel()
	if err := clk.BlockUntilContext(bctx, 1); err != nil {
		t.Fatalf("last tick: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// order records the commands of every pipeline, in order.
type order struct {
	mu   sync.Mutex
	cmds [][]any
}

func (o *order) DialHook(next redis.DialHook) redis.DialHook { return next }
func (o *order) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (o *order) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		o.mu.Lock()
		for _, c := range cmds {
			o.cmds = append(o.cmds, c.Args())
		}
		o.mu.Unlock()
		return next(ctx, cmds)
	}
}

// str renders a command argument; payloads are passed as []byte.
func str(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

type envelope struct {
	DeviceID  string          `json:"deviceId"`
	Data      json.RawMessage `json:"data"`
	Alert     json.RawMessage `json:"alert"`
	Alarm     json.RawMessage `json:"alarm"`
	Timestamp string          `json:"timestamp"`
}

type devData struct {
	DevID string                     `json:"devId"`
	Data  map[string]json.RawMessage `json:"Data"`
}

func decode(t *testing.T, v string, dst any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		t.Fatalf("not JSON: %v: %s", err, v)
	}
}

func TestRunPublishesTheContract(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.Client(t)
	rec := &order{}
	rdb.AddHook(rec)
	keys := config.DefaultKeys().WithPrefix(prefix)
	ctx := context.Background()
	machines := []string{"C01", "C02"}

	// A full history stays capped at 100; a cached status is continued.
	for i := range 120 {
		if err := rdb.LPush(ctx, keys.AlertHistory("C01"), fmt.Sprintf(`{"old":%d}`, i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, keys.Status("C02"), `{"devId":"C02","Data":{"T1":221.3,"OT":56.1,"CYCN":5000},"state":"running"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}

	msgs := subscribe(t, rdb, keys)
	clk := clockwork.NewFakeClockAt(t0)
	s, err := sim.New(rdb, sim.Config{
		Keys: keys, Machines: machines, Seed: 7, Clock: clk,
		CycleMin: 2 * time.Second, CycleMax: 3 * time.Second,
		AlertEvery: 3 * time.Second, AlarmEvery: 6 * time.Second, SeriesEvery: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	const ticks = 15
	if err := runTicks(t, s, clk, ticks); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := s.Stats()
	if st.Steps != ticks || st.Failed != 0 {
		t.Fatalf("stats %+v, want %d steps", st, ticks)
	}
	got := collect(t, msgs, st.Published)

	byChannel := map[string][]envelope{}
	alertsOf := map[string][]string{}
	lastCYCN := map[string]int64{}
	for _, m := range got {
		var e envelope
		decode(t, m.payload, &e)
		if !slices.Contains(machines, e.DeviceID) {
			t.Fatalf("deviceId %q in %s", e.DeviceID, m.payload)
		}
		ts, err := time.Parse(pubsub.TimeFormat, e.Timestamp)
		if err != nil || !strings.HasSuffix(e.Timestamp, "Z") || ts.Before(t0) || ts.After(t0.Add(ticks*time.Second)) || ts.Sub(t0)%time.Second != 0 {
			t.Fatalf("timestamp %q is not a tick of the fake clock in ISO ms Z", e.Timestamp)
		}
		byChannel[m.channel] = append(byChannel[m.channel], e)
		switch m.channel {
		case keys.Channel(channel.Realtime), keys.Channel(channel.SPC), keys.Channel(channel.SPCSeries):
			var d devData
			decode(t, string(e.Data), &d)
			if d.DevID != e.DeviceID || len(d.Data) == 0 {
				t.Fatalf("%s: data is not {devId, Data}: %s", m.channel, m.payload)
			}
			want := map[string][]string{
				keys.Channel(channel.Realtime):  {"T1", "T2", "T3", "T4", "OT", "OPM", "CYCN"},
				keys.Channel(channel.SPC):       {"CYCN", "ECYCT"},
				keys.Channel(channel.SPCSeries): {"field", "points", "mean", "ucl", "lcl"},
			}[m.channel]
			for _, f := range want {
				if _, ok := d.Data[f]; !ok {
					t.Fatalf("%s: Data has no %s: %s", m.channel, f, m.payload)
				}
			}
			if m.channel != keys.Channel(channel.SPCSeries) {
				checkCatalogue(t, m.channel == keys.Channel(channel.SPC), d.Data)
			}
			if m.channel == keys.Channel(channel.SPC) {
				var n int64
				decode(t, string(d.Data["CYCN"]), &n)
				if prev, ok := lastCYCN[e.DeviceID]; ok && n != prev+1 {
					t.Fatalf("CYCN of %s went %d -> %d", e.DeviceID, prev, n)
				}
				if e.DeviceID == "C02" && lastCYCN["C02"] == 0 && n != 5001 {
					t.Fatalf("C02's first cycle is %d, want 5001 (continued from the status cache)", n)
				}
				lastCYCN[e.DeviceID] = n
			}
		case keys.Channel(channel.Alert):
			var a struct {
				AlertType string      `json:"alertType"`
				Message   string      `json:"message"`
				Code      json.Number `json:"code"`
			}
			decode(t, string(e.Alert), &a)
			if (a.AlertType != "warning" && a.AlertType != "critical") || a.Message == "" || a.Code == "" {
				t.Fatalf("alert shape: %s", m.payload)
			}
			alertsOf[e.DeviceID] = append(alertsOf[e.DeviceID], m.payload)
		case keys.Channel(channel.Alarm):
			var a struct {
				State   string `json:"state"`
				Message string `json:"message"`
			}
			decode(t, string(e.Alarm), &a)
			if (a.State != "active" && a.State != "cleared") || a.Message == "" {
				t.Fatalf("alarm shape: %s", m.payload)
			}
		default:
			t.Fatalf("message on unexpected channel %q", m.channel)
		}
	}
	if n := len(byChannel[keys.Channel(channel.Realtime)]); n != ticks*len(machines) {
		t.Errorf("%d realtime messages, want one per machine per tick (%d)", n, ticks*len(machines))
	}
	for _, ch := range []string{keys.Channel(channel.SPC), keys.Channel(channel.SPCSeries), keys.Channel(channel.Alert), keys.Channel(channel.Alarm)} {
		if len(byChannel[ch]) == 0 {
			t.Errorf("nothing published on %s", ch)
		}
	}

	for _, id := range machines {
		// History: newest first, exactly the published alerts, capped.
		hist, err := rdb.LRange(ctx, keys.AlertHistory(id), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(alertsOf[id])
		slices.Reverse(want)
		if len(hist) > sim.HistoryLen || !slices.Equal(hist[:min(len(want), len(hist))], want) {
			t.Errorf("%s history (%d entries) does not start with the %d published alerts, newest first", id, len(hist), len(want))
		}
		if id == "C01" && len(hist) != sim.HistoryLen {
			t.Errorf("C01 history has %d entries, want it trimmed to %d", len(hist), sim.HistoryLen)
		}

		// Status: the latest realtime values, with the machine state.
		raw, err := rdb.Get(ctx, keys.Status(id)).Result()
		if err != nil {
			t.Fatalf("status of %s: %v", id, err)
		}
		var status struct {
			DevID string                     `json:"devId"`
			Data  map[string]json.RawMessage `json:"Data"`
			State string                     `json:"state"`
		}
		decode(t, raw, &status)
		var last devData
		for _, e := range byChannel[keys.Channel(channel.Realtime)] {
			if e.DeviceID == id {
				decode(t, string(e.Data), &last)
			}
		}
		if status.DevID != id || (status.State != sim.StateRunning && status.State != sim.StateAlarm) ||
			string(status.Data["T1"]) != string(last.Data["T1"]) {
			t.Errorf("status of %s = %s, want devId, state and the last realtime T1 %s", id, raw, last.Data["T1"])
		}
	}

	// Every alert went onto its history list before it was published.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, args := range rec.cmds {
		if len(args) != 3 || fmt.Sprint(args[0]) != "publish" || args[1] != keys.Channel(channel.Alert) {
			continue
		}
		var e envelope
		decode(t, str(args[2]), &e)
		hist := keys.AlertHistory(e.DeviceID)
		pushed, trimmed := false, false
		for _, prev := range rec.cmds[:i] {
			switch {
			case fmt.Sprint(prev[0]) == "lpush" && prev[1] == hist && str(prev[2]) == str(args[2]):
				pushed = true
			case fmt.Sprint(prev[0]) == "ltrim" && prev[1] == hist && fmt.Sprint(prev[2:]) == fmt.Sprint([]any{int64(0), int64(sim.HistoryLen - 1)}):
				trimmed = pushed
			}
		}
		if !pushed || !trimmed {
			t.Errorf("alert published without LPUSH then LTRIM 0 %d before it: %s", sim.HistoryLen-1, str(args[2]))
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	// Two simulators with the same seed and clock publish the same bytes.
	var runs [2][]string
	for i := range runs {
		rdb, prefix := redistest.Client(t)
		keys := config.DefaultKeys().WithPrefix(prefix)
		msgs := subscribe(t, rdb, keys)
		clk := clockwork.NewFakeClockAt(t0)
		s, err := sim.New(rdb, sim.Config{Keys: keys, Machines: []string{"C04"}, Seed: 42, Clock: clk,
			AlertEvery: 2 * time.Second, CycleMin: 2 * time.Second, CycleMax: 4 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := runTicks(t, s, clk, 8); err != nil {
			t.Fatal(err)
		}
		for _, m := range collect(t, msgs, s.Stats().Published) {
			// Channels differ by the test prefix only.
			runs[i] = append(runs[i], strings.TrimPrefix(m.channel, prefix)+" "+m.payload)
		}
	}
	if !slices.Equal(runs[0], runs[1]) {
		t.Fatalf("same seed, different output:\n%v\n%v", runs[0], runs[1])
	}
}

func TestRunForStopsOnItsClock(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.Client(t)
	clk := clockwork.NewFakeClockAt(t0)
	s, err := sim.New(rdb, sim.Config{Keys: config.DefaultKeys().WithPrefix(prefix), Machines: []string{"C01"}, Seed: 1, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.RunFor(context.Background(), 3*time.Second, time.Second) }()
	<-s.Ready()
	for range 3 {
		// The stop timer and the tick timer.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := clk.BlockUntilContext(ctx, 2); err != nil {
			t.Fatal(err)
		}
		cancel()
		clk.Advance(time.Second)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunFor did not stop after its duration")
	}
	if st := s.Stats(); st.Steps < 3 || st.Steps > 4 {
		t.Fatalf("%d ticks in 3s", st.Steps)
	}
}

func TestRunReportsDeadRedis(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.DeadAddr(t), MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	defer rdb.Close()
	clk := clockwork.NewFakeClockAt(t0)
	s, err := sim.New(rdb, sim.Config{Keys: config.DefaultKeys(), Machines: []string{"C01"}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := runTicks(t, s, clk, 2); err == nil {
		t.Fatal("Run returned nil although nothing was published")
	}
}

func TestNewRejectsNoMachines(t *testing.T) {
	t.Parallel()
	if _, err := sim.New(nil, sim.Config{Machines: []string{"", "bad\nid"}}); err != sim.ErrNoMachines {
		t.Fatalf("err %v, want ErrNoMachines", err)
	}
}

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    sim.Settings
		wantErr []string
	}{
		{"defaults", nil, sim.Settings{Duration: 50 * time.Second, Machines: sim.DemoMachines, AlertEvery: sim.DefaultAlertEvery}, nil},
		{"set", map[string]string{"SIMULATOR_DURATION": "45s", "SIMULATOR_DEVICES": " A1, B2 ,", "SIMULATOR_ALERT_EVERY": "10s"},
			sim.Settings{Duration: 45 * time.Second, Machines: []string{"A1", "B2"}, AlertEvery: 10 * time.Second}, nil},
		{"all bad", map[string]string{"SIMULATOR_DURATION": "forever", "SIMULATOR_DEVICES": "ok,bad/id", "SIMULATOR_ALERT_EVERY": "0s"},
			sim.Settings{}, []string{"SIMULATOR_DURATION", "SIMULATOR_DEVICES", "SIMULATOR_ALERT_EVERY"}},
		{"too long", map[string]string{"SIMULATOR_DURATION": "16m"}, sim.Settings{}, []string{"SIMULATOR_DURATION"}},
		{"empty list", map[string]string{"SIMULATOR_DEVICES": " , "}, sim.Settings{}, []string{"SIMULATOR_DEVICES"}},
	} {
		got, err := sim.LoadSettings(func(k string) string { return tc.env[k] })
		if len(tc.wantErr) > 0 {
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s: err %v, want it to name %s", tc.name, err, w)
				}
			}
			continue
		}
		if err != nil || got.Duration != tc.want.Duration || got.AlertEvery != tc.want.AlertEvery || !slices.Equal(got.Machines, tc.want.Machines) {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestOwnersSettingAndSeeding(t *testing.T) {
	t.Parallel()
	def, err := sim.LoadSettings(func(string) string { return "" })
	if err != nil || strings.Join(def.Owners["1"], ",") != "C01,C02,C03" || strings.Join(def.Owners["2"], ",") != "C04,C05" {
		t.Fatalf("default owners %v %v", def.Owners, err)
	}
	none, _ := sim.LoadSettings(func(k string) string { return map[string]string{"SIMULATOR_OWNERS": "none"}[k] })
	if len(none.Owners) != 0 {
		t.Fatalf("none: %v", none.Owners)
	}
	for _, bad := range []string{"1", "=C01", "1=C0/1", "{userId}=C01"} {
		if _, err := sim.LoadSettings(func(k string) string { return map[string]string{"SIMULATOR_OWNERS": bad}[k] }); err == nil || !strings.Contains(err.Error(), "SIMULATOR_OWNERS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	if err := rdb.SAdd(t.Context(), keys.UserDevices("1"), "X9").Err(); err != nil { // the main app's data stays
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := sim.SeedOwners(t.Context(), rdb, keys, def.Owners); err != nil {
			t.Fatal(err)
		}
	}
	got := rdb.SMembers(t.Context(), keys.UserDevices("1")).Val()
	slices.Sort(got)
	if strings.Join(got, ",") != "C01,C02,C03,X9" {
		t.Fatalf("user 1 owns %v", got)
	}
}

// checkCatalogue: every field the simulator publishes is in the field
// catalogue, from the source it names, with at most its decimals.
func checkCatalogue(t *testing.T, spc bool, data map[string]json.RawMessage) {
	t.Helper()
	for name, raw := range data {
		f, ok := sim.FieldOf(name)
		if !ok {
			t.Fatalf("field %s is not in the catalogue", name)
		}
		if want := map[bool]string{false: "realtime", true: "spc"}[spc]; f.Source != want && name != "CYCN" {
			t.Errorf("field %s comes with %s, the catalogue says %s", name, want, f.Source)
		}
		var v float64
		decode(t, string(raw), &v)
		if f.Round(v) != v {
			t.Errorf("field %s = %v has more than %d decimals", name, v, f.Decimals)
		}
	}
}

func TestFieldCatalogue(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, f := range sim.Fields {
		if names[f.Name] || f.Label == "" || f.Decimals < 0 || f.Min > f.Max || (f.Source != "realtime" && f.Source != "spc") {
			t.Errorf("bad catalogue entry %+v", f)
		}
		names[f.Name] = true
	}
	f, _ := sim.FieldOf("OT")
	if f.Round(56.349) != 56.3 || !f.InRange(60) || f.InRange(60.1) || f.InRange(34) {
		t.Errorf("OT rounding or range wrong: %+v", f)
	}
	if f, _ := sim.FieldOf("OPM"); !f.InRange(-1e9) {
		t.Error("a field without a range is always in range")
	}
}

// TestPublish: one event per kind, in the simulator's shapes; an alert is
// on the history before anyone sees it; nonsense is refused.
func TestPublish(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	ctx := context.Background()
	msgs := subscribe(t, rdb, keys)
	for _, kind := range sim.Kinds {
		n, err := sim.Publish(ctx, rdb, keys, kind, "C07", map[string]any{"OT": 61.5, "code": 1101}, t0)
		if err != nil || n != 1 {
			t.Fatalf("Publish %s: %d receivers, %v", kind, n, err)
		}
	}
	got := collect(t, msgs, int64(len(sim.Kinds)))
	want := map[string]string{
		keys.Channel(channel.Realtime):  `{"deviceId":"C07","data":{"devId":"C07","Data":{"OT":61.5,"code":1101}},"timestamp":"2026-01-27T12:00:00.000Z"}`,
		keys.Channel(channel.SPC):       `{"deviceId":"C07","data":{"devId":"C07","Data":{"OT":61.5,"code":1101}},"timestamp":"2026-01-27T12:00:00.000Z"}`,
		keys.Channel(channel.SPCSeries): `{"deviceId":"C07","data":{"devId":"C07","Data":{"OT":61.5,"code":1101}},"timestamp":"2026-01-27T12:00:00.000Z"}`,
		keys.Channel(channel.Alert):     `{"deviceId":"C07","alert":{"OT":61.5,"code":1101},"timestamp":"2026-01-27T12:00:00.000Z"}`,
		keys.Channel(channel.Alarm):     `{"deviceId":"C07","alarm":{"OT":61.5,"code":1101},"timestamp":"2026-01-27T12:00:00.000Z"}`,
	}
	for _, m := range got {
		if m.payload != want[m.channel] {
			t.Errorf("%s: %s, want %s", m.channel, m.payload, want[m.channel])
		}
	}
	if h := rdb.LRange(ctx, keys.AlertHistory("C07"), 0, -1).Val(); len(h) != 1 || h[0] != want[keys.Channel(channel.Alert)] {
		t.Errorf("alert history %v", h)
	}
	if _, err := sim.Publish(ctx, rdb, keys, "nope", "C07", nil, t0); !errors.Is(err, sim.ErrKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := sim.Publish(ctx, rdb, keys, channel.Alert.Name, "bad id!", nil, t0); !errors.Is(err, sim.ErrDevice) {
		t.Errorf("invalid device: %v", err)
	}
}
