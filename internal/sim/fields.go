package sim

import (
	"math"
	"slices"
)

// Field describes one value the demo machines publish: what it is, its
// unit, how many decimals it carries and its normal range. The simulator
// rounds with it and takes its alert limits from it; the dashboard gets it
// (GET /dev/fields) to show units, fixed decimals and out-of-range values.
type Field struct {
	Name     string  `json:"name"`  // key in the Data object, e.g. T1
	Label    string  `json:"label"` // e.g. "Barrel zone 1"
	Unit     string  `json:"unit"`  // e.g. "°C"; "" for counts and codes
	Decimals int     `json:"decimals"`
	Min      float64 `json:"min"` // normal range; Min == Max: none
	Max      float64 `json:"max"`
	// Source is the event that carries the field: "realtime" (1 Hz) or
	// "spc" (once per machine cycle). The status cache carries both.
	Source string `json:"source"`
	// Legend explains coded values (OPM), or is empty.
	Legend string `json:"legend,omitempty"`
}

// Fields is the catalogue, in the order a dashboard shows them.
var Fields = []Field{
	{Name: "T1", Label: "Barrel zone 1 (nozzle)", Unit: "°C", Decimals: 1, Min: 195, Max: 240, Source: "realtime"},
	{Name: "T2", Label: "Barrel zone 2", Unit: "°C", Decimals: 1, Min: 195, Max: 240, Source: "realtime"},
	{Name: "T3", Label: "Barrel zone 3", Unit: "°C", Decimals: 1, Min: 195, Max: 240, Source: "realtime"},
	{Name: "T4", Label: "Barrel zone 4 (feed)", Unit: "°C", Decimals: 1, Min: 195, Max: 240, Source: "realtime"},
	{Name: "OT", Label: "Hydraulic oil temperature", Unit: "°C", Decimals: 1, Min: 35, Max: 60, Source: "realtime"},
	{Name: "MT", Label: "Mould temperature", Unit: "°C", Decimals: 1, Min: 30, Max: 60, Source: "realtime"},
	{Name: "OPM", Label: "Operating mode", Decimals: 0, Source: "realtime", Legend: "1 manual, 2 semi-automatic, 3 automatic"},
	{Name: "CYCN", Label: "Cycle counter", Decimals: 0, Source: "realtime"},
	{Name: "ECYCT", Label: "Cycle time", Unit: "s", Decimals: 2, Min: 5, Max: 45, Source: "spc"},
	{Name: "EIPT", Label: "Injection time", Unit: "s", Decimals: 2, Min: 1, Max: 1.4, Source: "spc"},
	{Name: "EIPM", Label: "Peak injection pressure", Unit: "bar", Decimals: 1, Min: 900, Max: 1800, Source: "spc"},
	{Name: "ECUSH", Label: "Cushion", Unit: "mm", Decimals: 2, Min: 2, Max: 8, Source: "spc"},
	{Name: "EPLST", Label: "Plasticising time", Unit: "s", Decimals: 2, Min: 2, Max: 14, Source: "spc"},
}

// FieldOf returns the catalogue entry of a field name.
func FieldOf(name string) (Field, bool) {
	i := slices.IndexFunc(Fields, func(f Field) bool { return f.Name == name })
	if i < 0 {
		return Field{}, false
	}
	return Fields[i], true
}

// Round rounds x to the field's decimals.
func (f Field) Round(x float64) float64 {
	p := math.Pow10(f.Decimals)
	return math.Round(x*p) / p
}

// InRange reports whether x is within the normal range (always, for a
// field without one).
func (f Field) InRange(x float64) bool {
	return f.Min == f.Max || (x >= f.Min && x <= f.Max)
}

// field is FieldOf for the simulator's own names, which are in the
// catalogue (tested).
func field(name string) Field {
	f, ok := FieldOf(name)
	if !ok {
		panic("sim: field not in the catalogue: " + name)
	}
	return f
}

// round rounds x as the catalogue says for the field name.
func round(name string, x float64) float64 { return field(name).Round(x) }
