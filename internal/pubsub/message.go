// Package pubsub fans Redis pub/sub messages out to the streams of this
// process.
//
// Invariants: there is one Redis subscription per Hub, shared by every
// stream; a message is parsed and framed as an SSE event once (Frame, which
// every stream writes after its own id line), then routed through an
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
	"io"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/device"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/sse"
)

// MaxPayload is the largest channel message accepted; larger ones are
// dropped as malformed.
const MaxPayload = 64 << 10

// Message is one parsed channel message, shared read-only by every stream
// it is routed to.
type Message struct {
	Kind   *channel.Kind // its channel's row: event name, purpose, coalescing
	Device string
	Data   []byte // one line of compact JSON, ready for an SSE data field
	// Frame is the whole SSE event but its id: "event: <name>\ndata:
	// <Data>\n\n", encoded once for every stream the message goes to. Data
	// is a part of it.
	Frame []byte
	At    time.Time // when this process received it
	// Stamp is the publisher's "timestamp" for alert kinds, when it has one
	// (zero otherwise): alert replay and resume cursors order by it.
	Stamp time.Time
}

var (
	ErrMalformed = errors.New("pubsub: malformed message")
	ErrTooLarge  = errors.New("pubsub: message too large")
)

// TimeFormat is the ISO 8601 form the NestJS backend used for timestamps.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// envelope is the part of a channel message the router needs: its
// top-level "deviceId" and "timestamp" members, matched by their exact
// names, as a browser's JSON.parse reads them (encoding/json would also
// take "DeviceId" or "DEVICEID" for "deviceId", so a message could reach
// the owner of one device while the browser shows another).
type envelope struct {
	device    string
	hasDevice bool
	timestamp []byte // the raw value; nil when absent
}

// reader is a reusable decoder: a jsontext.Decoder holds buffers worth
// keeping between messages.
type reader struct {
	src bytes.Reader
	dec *jsontext.Decoder
}

var readers = sync.Pool{New: func() any {
	r := &reader{}
	r.dec = jsontext.NewDecoder(&r.src)
	return r
}}

// readEnvelope reads the envelope of a JSON object. It fails when payload
// is not one JSON object, when deviceId is not a string, or when either
// member appears twice (which one a reader takes is up to the reader).
func readEnvelope(payload []byte) (env envelope, err error) {
	r := readers.Get().(*reader)
	defer func() {
		r.src.Reset(nil)
		readers.Put(r)
	}()
	r.src.Reset(payload)
	dec := r.dec
	// Duplicates are checked here for the two members that matter; a
	// publisher's own data may repeat names without harm to routing.
	dec.Reset(&r.src, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return env, ErrMalformed
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return env, ErrMalformed
		}
		switch name.String() {
		case "deviceId":
			v, err := dec.ReadToken()
			if err != nil || v.Kind() != '"' || env.hasDevice {
				return env, ErrMalformed
			}
			env.device, env.hasDevice = v.String(), true
		case "timestamp":
			v, err := dec.ReadValue()
			if err != nil || env.timestamp != nil {
				return env, ErrMalformed
			}
			env.timestamp = bytes.Clone(v)
		default:
			if err := dec.SkipValue(); err != nil {
				return env, ErrMalformed
			}
		}
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return env, ErrMalformed
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return env, ErrMalformed // something after the object
	}
	return env, nil
}

// Parse validates a channel message and builds the client payload: the
// published JSON object, compacted to one line, with a "timestamp" added
// when the publisher left it out (the Socket.IO payloads always had one).
// It needs a JSON object with exactly one "deviceId", a string that is a
// valid device id, and at most one "timestamp".
func Parse(k *channel.Kind, payload []byte, now time.Time) (*Message, error) {
	if len(payload) > MaxPayload {
		return nil, ErrTooLarge
	}
	env, err := readEnvelope(payload)
	if err != nil || !env.hasDevice || !device.Valid(env.device) {
		return nil, ErrMalformed
	}
	buf := scratch.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		scratch.Put(buf)
	}()
	buf.Grow(len(payload) + 40)
	if err := json.Compact(buf, payload); err != nil {
		return nil, ErrMalformed
	}
	data := buf.Bytes()
	var stamp time.Time
	if k.Purpose == purpose.Alerts && len(env.timestamp) > 0 {
		var ts string
		if json.Unmarshal(env.timestamp, &ts) == nil {
			stamp, _ = time.Parse(time.RFC3339Nano, ts)
		}
	}
	if len(env.timestamp) == 0 || bytes.Equal(env.timestamp, []byte("null")) {
		// readEnvelope saw one object, so data ends in '}'.
		data = data[:len(data)-1]
		data = append(data, `,"timestamp":"`...)
		data = now.UTC().AppendFormat(data, TimeFormat)
		data = append(data, `"}`...)
	}
	// Compact JSON is one line without CR, so the frame's data field is
	// data byte for byte, just before the blank line that ends the event.
	frame, err := sse.AppendEvent(make([]byte, 0, len(data)+len(k.Event)+16), sse.Event{Name: k.Event, Data: data})
	if err != nil {
		return nil, ErrMalformed
	}
	end := len(frame) - 2
	return &Message{Kind: k, Device: env.device, Data: frame[end-len(data) : end : end], Frame: frame, At: now, Stamp: stamp}, nil
}

// scratch holds Parse's compaction buffers: the bytes it keeps are the
// frame's.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}
