package config

import (
	"testing"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/ticket"
)

// TestKeyNamesAreTheContract: every name the table builds is the
// contract's, byte for byte, with the default settings and under a prefix.
func TestKeyNamesAreTheContract(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "t:1:"} {
		k := DefaultKeys().WithPrefix(p)
		for got, want := range map[string]string{
			k.Status("C01"):                   "machine:C01:status",
			k.AlertHistory("C01"):             "machine:C01:alerts",
			k.UserDevices("7"):                "sse:user:7:devices",
			k.Ticket("abc"):                   "sse:ticket:abc",
			k.UserGeneration("7"):             "sse:gen:7",
			k.TicketRate("7"):                 "sse:ticketrate:7",
			k.Lease("L1"):                     "sse:conn:L1",
			k.UserLeases("7", purpose.Alerts): "sse:conns:7:alerts",
			k.UserLeases("7", purpose.Data):   "sse:conns:7:data",
			k.IPLeases("203.0.113.7"):         "sse:ip:203.0.113.7",
			k.Control():                       "sse:control",
			k.MalformedCount():                "sse:stats:malformed",
			k.Channel(channel.Realtime):       "mqtt:realtime:processed",
			k.Channel(channel.SPC):            "mqtt:spc:processed",
			k.Channel(channel.SPCSeries):      "mqtt:spc-series:processed",
			k.Channel(channel.Alert):          "machine:alerts",
			k.Channel(channel.Alarm):          "machine:alarms",
		} {
			if got != p+want {
				t.Errorf("prefix %q: got %q, want %q", p, got, p+want)
			}
		}
		if got := k.Channel(&channel.Kind{Name: "x"}); got != "" {
			t.Errorf("a kind k does not have: %q", got)
		}
		if got := k.Channels(); len(got) != len(channel.Kinds()) || got[p+"machine:alerts"] != channel.Alert {
			t.Errorf("prefix %q: channels %v", p, got)
		}
	}
	// The ticket package's own default is the table's.
	def := DefaultKeys()
	if got := def.Ticket(""); got != ticket.DefaultKeyPrefix {
		t.Errorf("ticket key prefix %q, ticket.DefaultKeyPrefix %q", got, ticket.DefaultKeyPrefix)
	}
}

// TestKeyValuesAreNotPatterns: a value that looks like a placeholder is
// written as it is, never filled in.
func TestKeyValuesAreNotPatterns(t *testing.T) {
	t.Parallel()
	k := DefaultKeys()
	if got := k.UserLeases("{purpose}", purpose.Data); got != "sse:conns:{purpose}:data" {
		t.Fatal(got)
	}
	if got := k.Status("{deviceId}"); got != "machine:{deviceId}:status" {
		t.Fatal(got)
	}
}

// TestKeysOfAddsAKind: a kind added by a row has a channel, a setting and
// a place in Channels, as the contract's own.
func TestKeysOfAddsAKind(t *testing.T) {
	t.Parallel()
	energy := &channel.Kind{Name: "energy", Env: "REDIS_CHANNEL_ENERGY", Default: "mqtt:energy:processed", Event: "energy-update", Purpose: purpose.Data}
	k := KeysOf(append(channel.Kinds(), energy)).WithPrefix("p:")
	if k.Channel(energy) != "p:mqtt:energy:processed" || k.Channels()["p:mqtt:energy:processed"] != energy || k.Env()["REDIS_CHANNEL_ENERGY"] != "p:mqtt:energy:processed" {
		t.Fatalf("%+v", k)
	}
}
