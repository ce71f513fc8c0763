package sim

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/device"
)

// Kinds lists the kinds Publish takes (the local debug panel's), by the
// Name of their channel's row: those whose message shape it knows.
var Kinds = []string{channel.Realtime.Name, channel.SPC.Name, channel.SPCSeries.Name, channel.Alert.Name, channel.Alarm.Name}

// Errors of Publish.
var (
	ErrKind   = errors.New("sim: unknown event kind")
	ErrDevice = errors.New("sim: invalid device id")
)

// Publish sends one event of kind for deviceID, shaped and ordered as the
// ingest and the simulator's own ticks send it: realtime and SPC as
// {deviceId, data: {devId, Data: body}, timestamp}, an alert as
// {deviceId, alert: body, timestamp} pushed onto the device's history
// (LPUSH, LTRIM) before it is published, an alarm as {deviceId, alarm:
// body, timestamp}. It returns how many subscribers received it (PUBLISH's
// reply).
func Publish(ctx context.Context, rdb redis.Cmdable, keys config.Keys, kind, deviceID string, body map[string]any, now time.Time) (int64, error) {
	if !device.Valid(deviceID) {
		return 0, ErrDevice
	}
	m := message{DeviceID: deviceID, Timestamp: stamp(now)}
	c := channel.Named(kind)
	switch c {
	case channel.Realtime, channel.SPC, channel.SPCSeries:
		m.Data = payload{DevID: deviceID, Data: body}
	case channel.Alert:
		m.Alert = body
	case channel.Alarm:
		m.Alarm = body
	default:
		return 0, ErrKind
	}
	p := rdb.Pipeline()
	n := enqueue(ctx, p, keys, c, deviceID, encode(m))
	if _, err := p.Exec(ctx); err != nil {
		return 0, err
	}
	return n.Val(), nil
}

// enqueue adds the commands that publish msg of kind to p: the one place
// that knows each kind's channel, and that an alert goes onto its
// history first.
func enqueue(ctx context.Context, p redis.Pipeliner, k config.Keys, c *channel.Kind, deviceID string, msg []byte) *redis.IntCmd {
	if c == channel.Alert {
		p.LPush(ctx, k.AlertHistory(deviceID), msg)
		p.LTrim(ctx, k.AlertHistory(deviceID), 0, HistoryLen-1)
	}
	return p.Publish(ctx, k.Channel(c), msg)
}
