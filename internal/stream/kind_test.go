package stream_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
)

// TestNewChannelKindIsOneRow: a kind the contract does not have is added
// by one row of the channel table (and its fixture, testdata/energy.json)
// and reaches a data stream end to end: real Redis, the app's hub, the
// stream handler, SSE over HTTP. An alerts stream of the same user does not
// get it.
func TestNewChannelKindIsOneRow(t *testing.T) {
	t.Parallel()
	energy := &channel.Kind{Name: "energy", Env: "REDIS_CHANNEL_ENERGY", Default: "mqtt:energy:processed", Event: "energy-update", Purpose: purpose.Data}
	e := newEnv(t, func(c *config.Config) {
		// The harness's keys carry the test's prefix; the new table keeps it.
		def := config.DefaultKeys()
		prefix := strings.TrimSuffix(c.Keys.Control(), def.Control())
		c.Keys = config.KeysOf(append(channel.Kinds(), energy)).WithPrefix(prefix)
	})
	fixture, err := os.ReadFile("testdata/energy.json")
	if err != nil {
		t.Fatal(err)
	}
	fixture = bytes.TrimSpace(fixture)
	e.own("1", "C01")
	data := e.open("/sse/stream?includeStatus=false&deviceId=C01&ticket=" + e.ticket("1", purpose.Data))
	data.expect("system", "")
	alerts := e.open("/sse/alerts?ticket=" + e.ticket("1", purpose.Alerts))
	alerts.expect("system", "")

	e.publish(e.keys.Channel(energy), string(fixture))
	if ev := data.expect("energy-update", "C01"); ev.Data != string(fixture) {
		t.Fatalf("payload %s, want the fixture as published", ev.Data)
	}
	// The alerts stream got nothing: the next thing it sees is an alert.
	e.publish(e.keys.Channel(channel.Alert), `{"deviceId":"C01","alert":{"n":1}}`)
	alerts.expect("machine-alert", "C01")
}
