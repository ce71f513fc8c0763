// Package pubsub fans Redis pub/sub messages out to the streams of this
// process.
//
// Invariants: there is one Redis subscription per Hub, shared by every
// stream; a message is parsed and encoded once, then routed through an
// index by device, so its cost is O(streams that want that device), never
// O(all streams). A malformed message is dropped and counted and reaches no
// stream. A subscription never sees a message that Redis delivered before
// the subscription was registered (a ping barrier on the shared
// connection), which is what keeps a warm Lambda from replaying a previous
// invocation's backlog.
package pubsub

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/machinedash/sse/internal/device"
)

// Kind is what a channel carries; it decides the SSE event name and which
// stream purpose receives it.
type Kind uint8

// The kinds of the Redis contract (DESIGN section 4).
const (
	KindRealtime Kind = iota
	KindSPC
	KindSPCSeries
	KindAlert
	KindAlarm
	numKinds
)

var eventNames = [numKinds]string{
	KindRealtime:  "realtime-update",
	KindSPC:       "spc-update",
	KindSPCSeries: "spc-series-update",
	KindAlert:     "machine-alert",
	KindAlarm:     "alarm-update",
}

// Event returns the SSE event name of the kind.
func (k Kind) Event() string { return eventNames[k] }

// ForAlerts reports whether the kind goes to alert streams (else to data
// streams).
func (k Kind) ForAlerts() bool { return k == KindAlert || k == KindAlarm }

// MaxPayload is the largest channel message accepted; larger ones are
// dropped as malformed.
const MaxPayload = 64 << 10

// Message is one parsed channel message, shared read-only by every stream
// it is routed to.
type Message struct {
	Kind   Kind
	Device string
	Data   []byte    // one line of compact JSON, ready for an SSE data field
	At     time.Time // when this process received it
	// Stamp is the publisher's "timestamp" for alert kinds, when it has one
	// (zero otherwise): alert replay and resume cursors order by it.
	Stamp time.Time
}

var (
	ErrMalformed = errors.New("pubsub: malformed message")
	ErrTooLarge  = errors.New("pubsub: message too large")
)

// envelope is the part of a channel message the router needs.
type envelope struct {
	DeviceID  *string         `json:"deviceId"` // a number or object fails the decode
	Timestamp json.RawMessage `json:"timestamp"`
}

// TimeFormat is the ISO 8601 form the NestJS backend used for timestamps.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Parse validates a channel message and builds the client payload: the
// published JSON object, compacted to one line, with a "timestamp" added
// when the publisher left it out (the Socket.IO payloads always had one).
// It needs a JSON object with a string deviceId that is a valid device id.
func Parse(k Kind, payload []byte, now time.Time) (*Message, error) {
	if len(payload) > MaxPayload {
		return nil, ErrTooLarge
	}
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, ErrMalformed
	}
	if env.DeviceID == nil || !device.Valid(*env.DeviceID) {
		return nil, ErrMalformed
	}
	id := *env.DeviceID
	var buf bytes.Buffer
	buf.Grow(len(payload) + 40)
	if err := json.Compact(&buf, payload); err != nil {
		return nil, ErrMalformed
	}
	data := buf.Bytes()
	var stamp time.Time
	if k.ForAlerts() && len(env.Timestamp) > 0 {
		var ts string
		if json.Unmarshal(env.Timestamp, &ts) == nil {
			stamp, _ = time.Parse(time.RFC3339Nano, ts)
		}
	}
	if len(env.Timestamp) == 0 || bytes.Equal(env.Timestamp, []byte("null")) {
		// Unmarshal into a struct succeeded, so data is an object ending in '}'.
		data = data[:len(data)-1]
		data = append(data, `,"timestamp":"`...)
		data = now.UTC().AppendFormat(data, TimeFormat)
		data = append(data, `"}`...)
	}
	return &Message{Kind: k, Device: id, Data: data, At: now, Stamp: stamp}, nil
}
