// Package channel is the table of the Redis contract's pub/sub channels:
// for each kind of message, the setting that renames its channel, the
// contract's channel name, the SSE event it becomes, the streams that
// receive it and whether it is coalesced.
//
// Invariants: the table is the only place a kind is described. Config
// reads each kind's setting (config.Keys), the hub subscribes to each kind's
// channel, a stream names each event and routes and coalesces it by its
// row, and README's Redis table is checked against it. A new kind is one
// row here (and its fixture in events/); code names a kind only through the
// handles below, and only where it must (the simulator publishes them).
package channel

import "github.com/machinedash/sse/internal/purpose"

// Kind is what one channel carries. Rows are shared read-only.
type Kind struct {
	Name    string          // short name: the local /dev/publish kind, events/<Name>.json
	Env     string          // setting that renames the channel
	Default string          // the contract's channel name
	Event   string          // SSE event name of its messages
	Purpose purpose.Purpose // the streams that receive it
	// Coalesced: per device and stream, the newest waiting value replaces
	// older ones, at most one per REALTIME_MIN_INTERVAL. The queue keeps
	// one slot and one throttle per device for all coalesced kinds
	// together (pubsub.Queue), so a second coalesced kind needs its own.
	Coalesced bool
	What      string // README: what it is
	Payload   string // README: the message's shape
}

// contract is the table, in README order.
var contract = []*Kind{
	{Name: "realtime", Env: "REDIS_CHANNEL_REALTIME", Default: "mqtt:realtime:processed", Event: "realtime-update",
		Purpose: purpose.Data, Coalesced: true, What: "realtime data", Payload: "{deviceId, data, timestamp?}"},
	{Name: "spc", Env: "REDIS_CHANNEL_SPC", Default: "mqtt:spc:processed", Event: "spc-update",
		Purpose: purpose.Data, What: "SPC data", Payload: "{deviceId, data}"},
	{Name: "spc-series", Env: "REDIS_CHANNEL_SPC_SERIES", Default: "mqtt:spc-series:processed", Event: "spc-series-update",
		Purpose: purpose.Data, What: "SPC series", Payload: "{deviceId, data}"},
	{Name: "alert", Env: "REDIS_CHANNEL_ALERTS", Default: "machine:alerts", Event: "machine-alert",
		Purpose: purpose.Alerts, What: "alerts", Payload: "{deviceId, alert, timestamp?}"},
	{Name: "alarm", Env: "REDIS_CHANNEL_ALARMS", Default: "machine:alarms", Event: "alarm-update",
		Purpose: purpose.Alerts, What: "alarms", Payload: "{deviceId, alarm, timestamp?}"},
}

// Handles of the rows that code names.
var (
	Realtime  = contract[0]
	SPC       = contract[1]
	SPCSeries = contract[2]
	Alert     = contract[3]
	Alarm     = contract[4]
)

// Kinds returns the table's rows, in README order. The slice is the
// caller's; the rows are shared.
func Kinds() []*Kind { return append([]*Kind(nil), contract...) }

// Named returns the row of the given short name, or nil.
func Named(name string) *Kind {
	for _, k := range contract {
		if k.Name == name {
			return k
		}
	}
	return nil
}
