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

// Kinds of event Publish takes (the local debug panel's): each is the
// Name of its channel's row in internal/channel.
const (
	KindRealtime  = "realtime"
	KindSPC       = "spc"
	KindSPCSeries = "spc-series"
	KindAlert     = "alert"
	KindAlarm     = "alarm"
)

// Kinds lists the kinds Publish takes.
var Kinds = []string{KindRealtime, KindSPC, KindSPCSeries, KindAlert, KindAlarm}

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
	switch kind {
	case KindRealtime, KindSPC, KindSPCSeries:
		m.Data = payload{DevID: deviceID, Data: body}
	case KindAlert:
		m.Alert = body
	case KindAlarm:
		m.Alarm = body
	default:
		return 0, ErrKind
	}
	p := rdb.Pipeline()
	n := enqueue(ctx, p, keys, kind, deviceID, encode(m))
	if _, err := p.Exec(ctx); err != nil {
		return 0, err
	}
	return n.Val(), nil
}

// enqueue adds the commands that publish msg of kind to p: the one place
// that knows each kind's channel, and that an alert goes onto its
// history first.
func enqueue(ctx context.Context, p redis.Pipeliner, k config.Keys, kind, deviceID string, msg []byte) *redis.IntCmd {
	if kind == KindAlert {
		p.LPush(ctx, k.AlertHistory(deviceID), msg)
		p.LTrim(ctx, k.AlertHistory(deviceID), 0, HistoryLen-1)
	}
	return p.Publish(ctx, k.Channel(channel.Named(kind)), msg)
}
