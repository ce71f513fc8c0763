package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Machine states, as the status cache carries them.
const (
	StateRunning = "running"
	StateAlarm   = "alarm"
)

// machine is one simulated injection moulding machine: four barrel zones
// (T1..T4) drifting around their setpoints, oil (OT) and mould (MT)
// temperatures, and a cycle counter (CYCN) that advances once per cycle.
type machine struct {
	id    string
	set   [4]float64 // zone setpoints
	t     [4]float64 // zone actuals
	drift [4]float64 // slow bounded offsets: the "drifting" part
	ot    float64    // oil temperature
	otSet float64    // what the oil cooler holds it at
	mt    float64    // mould temperature
	ip    float64    // peak injection pressure the process settles at
	cycn  int64
	cycle time.Duration // nominal cycle time
	state string

	started                         bool
	lastCycle, nextCycle            time.Time
	nextAlert, nextAlarm, alarmDone time.Time
	alarm                           *alarmDef
	lastSPC                         map[string]any
	history                         map[string][]point // recent SPC values, for series
}

// output is what one machine publishes in one tick; nil means nothing.
type output struct {
	status, realtime, spc, series, alert, alarm []byte
}

func newMachine(id string, rng *rand.Rand, cfg Config) *machine {
	m := &machine{id: id, state: StateRunning}
	base := 215 + 5*float64(rng.IntN(5))
	for i := range m.set {
		m.set[i] = base - 5*float64(i)
		m.t[i] = m.set[i] + rng.NormFloat64()
	}
	m.otSet = 52 + 6*rng.Float64()
	m.ot = m.otSet + rng.NormFloat64()
	m.mt = 40 + 10*rng.Float64()
	m.ip = 1100 + 400*rng.Float64()
	m.cycn = 1000 + rng.Int64N(8000)
	span := cfg.CycleMax - cfg.CycleMin
	m.cycle = cfg.CycleMin
	if span > 0 {
		m.cycle += time.Duration(rng.Int64N(int64(span)))
	}
	m.cycle = m.cycle.Round(10 * time.Millisecond)
	return m
}

// restore continues from a cached status written by an earlier run.
func (m *machine) restore(cached string) {
	var st struct {
		Data map[string]float64 `json:"Data"`
	}
	if json.Unmarshal([]byte(cached), &st) != nil {
		return
	}
	for i := range m.t {
		if v, ok := st.Data[fmt.Sprintf("T%d", i+1)]; ok && math.Abs(v-m.set[i]) < 40 {
			m.set[i] = math.Round(v/5) * 5
			m.t[i] = v
		}
	}
	if v, ok := st.Data["OT"]; ok && v > 20 && v < 90 {
		m.ot = v
	}
	if v, ok := st.Data["MT"]; ok && v > 10 && v < 120 {
		m.mt = v
	}
	if v, ok := st.Data["CYCN"]; ok && v >= 0 && v < 1e12 {
		m.cycn = int64(v)
	}
}

// advance moves the machine to now and returns what to publish.
func (m *machine) advance(now time.Time, rng *rand.Rand, cfg Config) output {
	var out output
	if !m.started {
		m.started = true
		// The first cycle ends somewhere within one cycle from now, as if
		// the machine had been running all along.
		m.nextCycle = now.Add(time.Duration(rng.Float64() * float64(m.cycle)))
		m.lastCycle = m.nextCycle.Add(-m.cycle)
		m.nextAlert = now.Add(interval(rng, cfg.AlertEvery))
		m.nextAlarm = now.Add(interval(rng, cfg.AlarmEvery))
	}
	m.physics(rng)

	switch {
	case m.state == StateAlarm && !now.Before(m.alarmDone):
		out.alarm = m.alarmMessage(now, "cleared")
		m.state, m.alarm = StateRunning, nil
		m.nextCycle = now.Add(m.cycle)
		m.lastCycle = now
		m.nextAlarm = now.Add(interval(rng, cfg.AlarmEvery))
	case m.state == StateRunning && cfg.AlarmEvery > 0 && !now.Before(m.nextAlarm):
		m.alarm = &alarms[rng.IntN(len(alarms))]
		m.state = StateAlarm
		m.alarmDone = now.Add(15*time.Second + time.Duration(rng.Int64N(int64(45*time.Second))))
		out.alarm = m.alarmMessage(now, "active")
	}

	if m.state == StateRunning && !now.Before(m.nextCycle) {
		m.cycn++
		ect := now.Sub(m.lastCycle).Seconds()
		m.lastCycle = now
		jitter := 1 + 0.02*rng.NormFloat64()
		m.nextCycle = now.Add(time.Duration(float64(m.cycle) * max(0.9, min(1.1, jitter))))
		m.lastSPC = map[string]any{
			"CYCN":  m.cycn,
			"ECYCT": round("ECYCT", ect),
			"EIPT":  round("EIPT", 1.2+0.05*rng.NormFloat64()),
			"EIPM":  round("EIPM", m.ip+15*rng.NormFloat64()),
			"ECUSH": round("ECUSH", 5+0.3*rng.NormFloat64()),
			"EPLST": round("EPLST", 0.3*m.cycle.Seconds()+0.1*rng.NormFloat64()),
		}
		m.remember(m.lastSPC)
		out.spc = encode(message{DeviceID: m.id, Data: payload{DevID: m.id, Data: m.lastSPC}, Timestamp: stamp(now)})
		if cfg.SeriesEvery > 0 && m.cycn%int64(cfg.SeriesEvery) == 0 {
			out.series = m.seriesMessage(now, m.cycn/int64(cfg.SeriesEvery))
		}
	}

	if cfg.AlertEvery > 0 && !now.Before(m.nextAlert) {
		out.alert = m.alertMessage(now, rng)
		m.nextAlert = now.Add(interval(rng, cfg.AlertEvery))
	}

	data := m.realtimeData()
	out.realtime = encode(message{DeviceID: m.id, Data: payload{DevID: m.id, Data: data}, Timestamp: stamp(now)})
	for k, v := range m.lastSPC {
		if k != "CYCN" {
			data[k] = v
		}
	}
	out.status = encode(struct {
		DevID     string         `json:"devId"`
		Data      map[string]any `json:"Data"`
		State     string         `json:"state"`
		Timestamp string         `json:"timestamp"`
	}{m.id, data, m.state, stamp(now)})
	return out
}

// physics is one second of the process: each zone follows its setpoint
// plus a slow bounded drift, with sensor noise; oil and mould temperatures
// return to where their controllers hold them.
func (m *machine) physics(rng *rand.Rand) {
	for i := range m.t {
		m.drift[i] = max(-4, min(4, m.drift[i]+0.08*rng.NormFloat64()))
		m.t[i] += 0.1*(m.set[i]+m.drift[i]-m.t[i]) + 0.25*rng.NormFloat64()
	}
	heat := 0.0
	if m.state == StateRunning {
		heat = 1.5 // a running hydraulic heats its oil
	}
	m.ot += 0.03*(m.otSet+heat-m.ot) + 0.12*rng.NormFloat64()
	m.mt += 0.02*(45-m.mt) + 0.1*rng.NormFloat64()
}

func (m *machine) realtimeData() map[string]any {
	opm := 3 // automatic
	if m.state == StateAlarm {
		opm = 1 // manual: the operator has to clear the alarm
	}
	return map[string]any{
		"T1": round("T1", m.t[0]), "T2": round("T2", m.t[1]), "T3": round("T3", m.t[2]), "T4": round("T4", m.t[3]),
		"OT": round("OT", m.ot), "MT": round("MT", m.mt), "OPM": opm, "CYCN": m.cycn,
	}
}

// seriesFields are the SPC fields whose recent history a series carries,
// in turn.
var seriesFields = []string{"ECYCT", "EIPM", "ECUSH"}

// seriesLen is how many recent cycles a series carries.
const seriesLen = 20

// remember keeps the recent cycles' SPC values for the series.
func (m *machine) remember(spc map[string]any) {
	if m.history == nil {
		m.history = map[string][]point{}
	}
	for _, f := range seriesFields {
		v, _ := spc[f].(float64)
		h := append(m.history[f], point{Cycle: m.cycn, Value: v})
		if len(h) > seriesLen {
			h = h[len(h)-seriesLen:]
		}
		m.history[f] = h
	}
}

// point is one cycle's value in an SPC series.
type point struct {
	Cycle int64   `json:"cycle"`
	Value float64 `json:"value"`
}

// seriesMessage is a control chart series: one field's values over the
// recent cycles, with their mean and 3-sigma control limits.
func (m *machine) seriesMessage(now time.Time, n int64) []byte {
	name := seriesFields[int(n)%len(seriesFields)]
	pts := m.history[name]
	var sum, sq float64
	for _, p := range pts {
		sum += p.Value
	}
	mean := sum / float64(len(pts))
	for _, p := range pts {
		sq += (p.Value - mean) * (p.Value - mean)
	}
	sigma := math.Sqrt(sq / float64(len(pts)))
	if sigma < 0.01*math.Abs(mean) {
		sigma = 0.01 * math.Abs(mean) // a flat start still gets usable limits
	}
	return encode(message{DeviceID: m.id, Data: payload{DevID: m.id, Data: map[string]any{
		"field": name, "points": slices.Clone(pts),
		"mean": round(name, mean), "ucl": round(name, mean+3*sigma), "lcl": round(name, mean-3*sigma),
	}}, Timestamp: stamp(now)})
}

// alertDef is a kind of alert; apply pushes the machine's value past the
// limit (so the spike shows on the dashboard) and returns value and limit.
type alertDef struct {
	code      int
	alertType string
	param     string
	weight    int
	apply     func(m *machine, rng *rand.Rand) (value, limit float64, msg string)
}

var alertDefs = []alertDef{
	{1101, "warning", "OT", 4, func(m *machine, rng *rand.Rand) (float64, float64, string) {
		limit := field("OT").Max
		m.ot = limit + 0.3 + 2*rng.Float64()
		return round("OT", m.ot), limit, fmt.Sprintf("Oil temperature high: %.1f °C (limit %.0f °C)", m.ot, limit)
	}},
	{1102, "critical", "OT", 1, func(m *machine, rng *rand.Rand) (float64, float64, string) {
		m.ot = 65 + 0.2 + 1.5*rng.Float64()
		return round("OT", m.ot), 65, fmt.Sprintf("Oil temperature critical: %.1f °C (limit 65 °C)", m.ot)
	}},
	{1201, "warning", "T", 4, func(m *machine, rng *rand.Rand) (float64, float64, string) {
		i := rng.IntN(len(m.t))
		sign := 1.0
		if rng.IntN(2) == 0 {
			sign = -1
		}
		m.t[i] = m.set[i] + sign*(5+4*rng.Float64())
		return round(fmt.Sprintf("T%d", i+1), m.t[i]), m.set[i], fmt.Sprintf("Barrel zone %d deviates %+.1f °C from setpoint %.0f °C", i+1, m.t[i]-m.set[i], m.set[i])
	}},
	{1301, "warning", "ECYCT", 3, func(m *machine, rng *rand.Rand) (float64, float64, string) {
		target := m.cycle.Seconds()
		v := target * (1.08 + 0.1*rng.Float64())
		return round("ECYCT", v), round("ECYCT", target), fmt.Sprintf("Cycle time %.2f s above target %.2f s", v, target)
	}},
	{1401, "critical", "ECUSH", 1, func(m *machine, rng *rand.Rand) (float64, float64, string) {
		limit := field("ECUSH").Min
		v := limit - 1 + rng.Float64()
		return round("ECUSH", v), limit, fmt.Sprintf("Cushion %.2f mm below minimum %.2f mm", v, limit)
	}},
	{1501, "critical", "EIPM", 1, func(m *machine, rng *rand.Rand) (float64, float64, string) {
		limit := field("EIPM").Max
		v := limit + 60*rng.Float64()
		return round("EIPM", v), limit, fmt.Sprintf("Injection pressure %.0f bar over limit %.0f bar", v, limit)
	}},
}

func (m *machine) alertMessage(now time.Time, rng *rand.Rand) []byte {
	total := 0
	for _, d := range alertDefs {
		total += d.weight
	}
	pick := rng.IntN(total)
	def := alertDefs[0]
	for _, d := range alertDefs {
		if pick < d.weight {
			def = d
			break
		}
		pick -= d.weight
	}
	value, limit, msg := def.apply(m, rng)
	return encode(message{DeviceID: m.id, Alert: map[string]any{
		"alertType": def.alertType, "message": msg, "code": def.code,
		"parameter": def.param, "value": value, "limit": limit,
	}, Timestamp: stamp(now)})
}

// alarmDef is a machine alarm: it stops the cycle until it clears.
type alarmDef struct {
	code     int
	severity string
	message  string
}

var alarms = []alarmDef{
	{2101, "critical", "Hydraulic motor overload"},
	{2201, "warning", "Safety gate opened during cycle"},
	{2301, "warning", "Material hopper level low"},
	{2401, "critical", "Heater band fault"},
}

func (m *machine) alarmMessage(now time.Time, state string) []byte {
	return encode(message{DeviceID: m.id, Alarm: map[string]any{
		"code": m.alarm.code, "severity": m.alarm.severity, "message": m.alarm.message, "state": state,
	}, Timestamp: stamp(now)})
}

// interval draws one interval of mean d, uniformly from 0.5d to 1.5d.
func interval(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rng.Int64N(int64(d)))
}
