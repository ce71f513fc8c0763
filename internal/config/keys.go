package config

import (
	"fmt"
	"strings"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
)

// Key is one key (or family of keys, or the control channel) of the Redis
// contract. The data channels are channel.Kinds.
type Key int

// The keys, in README order.
const (
	StatusKey       Key = iota // a device's status cache
	AlertHistoryKey            // a device's alert history
	UserDevicesKey             // a user's devices (the main app's)
	SSEPrefix                  // the prefix of every key below it
	TicketKey                  // a ticket's record
	GenerationKey              // a user's revocation generation
	TicketRateKey              // a user's ticket counter this minute
	LeaseKey                   // a stream's lease hash
	UserLeasesKey              // a user's leases of one purpose
	IPLeasesKey                // an IP's leases
	ControlChannel             // evict and close notices between processes
	MalformedKey               // malformed channel messages, all processes
	numKeys
)

// keySpec is one row of the key table. A key with a setting takes its
// configured value (which must contain Params[0], if any); every other key
// lives under SSEPrefix, its pattern relative to it. WithPrefix prefixes
// the settings, so it moves every key and channel.
type keySpec struct {
	Env     string   // its setting; "" for a key under SSEPrefix
	Pattern string   // the default (under SSEPrefix: the part after it)
	Params  []string // placeholders, in the order they appear and are given
	What    string   // README: what it is
	Kind    string   // README: its Redis type and keeper, after the name
	Use     string   // README: what the service does with it
}

var keyTable = [numKeys]keySpec{
	StatusKey: {Env: "REDIS_STATUS_KEY", Pattern: "machine:{deviceId}:status", Params: []string{"{deviceId}"},
		What: "status cache", Kind: "(JSON string)",
		Use: "`machine-status` `{deviceId, data, source:\"cache\", timestamp}` on connect"},
	AlertHistoryKey: {Env: "REDIS_ALERT_HISTORY_KEY", Pattern: "machine:{deviceId}:alerts", Params: []string{"{deviceId}"},
		What: "alert history", Kind: "(list, newest first, max 100)", Use: "replay on resume"},
	UserDevicesKey: {Env: "REDIS_USER_DEVICES_KEY", Pattern: "sse:user:{userId}:devices", Params: []string{"{userId}"},
		What: "ownership", Kind: "(set, maintained by the main app)", Use: "checked at connect and every heartbeat"},
	SSEPrefix: {Env: "REDIS_SSE_PREFIX", Pattern: "sse:",
		What: "prefix", Use: "of every key below, which this service owns"},
	TicketKey: {Pattern: "ticket:{ticketId}", Params: []string{"{ticketId}"},
		What: "tickets", Use: "TTL = ticket TTL (extended while a stream of it can resume)"},
	GenerationKey: {Pattern: "gen:{userId}", Params: []string{"{userId}"},
		What: "revocation", Kind: "(integer, maintained by the main app)",
		Use: "the user's revocation generation: `INCR sse:gen:<userId>` ends every stream of the user within one " +
			"heartbeat (`{\"kind\":\"revoked\"}`) and makes the tickets issued before it answer 401 (`POST /sse/close` " +
			"refuses them too); their cursors no longer resume (sent with a fresh ticket, such a cursor still sets " +
			"the alerts stream's replay position). Tickets issued afterwards work. Checked at connect and at every " +
			"lease renewal; tickets carry the generation they were issued at (claim `gen`)"},
	TicketRateKey: {Pattern: "ticketrate:{userId}", Params: []string{"{userId}"},
		What: "ticket rate", Kind: "(counter)", Use: "tickets issued in the user's current minute; expires with it"},
	LeaseKey: {Pattern: "conn:{id}", Params: []string{"{id}"},
		What: "leases", Kind: "(hash)", Use: "a stream's details: limits, `/sse/status`, resume"},
	UserLeasesKey: {Pattern: "conns:{userId}:{purpose}", Params: []string{"{userId}", "{purpose}"},
		What: "leases by user", Kind: "(sorted set by expiry)", Use: "the per-user limits, `/sse/status`"},
	IPLeasesKey: {Pattern: "ip:{ip}", Params: []string{"{ip}"},
		What: "leases by IP", Kind: "(sorted set by expiry)", Use: "`MAX_STREAMS_PER_IP`"},
	ControlChannel: {Pattern: "control",
		What: "control", Use: "\"evict <id>\" (a newer stream took its place) and \"close <id>\" (`POST /sse/close`) between processes"},
	MalformedKey: {Pattern: "stats:malformed",
		What: "malformed count", Kind: "(integer)",
		Use: "channel messages dropped as malformed, summed over processes (each adds its own drops when a stream ends); `/health` shows it"},
}

// Keys holds the configured channel names and key patterns: one value per
// setting of the key table and one channel name per channel kind.
type Keys struct {
	set      [numKeys]string // values of the keys with a setting
	kinds    []*channel.Kind
	channels []string // by index of kinds
}

// DefaultKeys returns the contract's channel names and key patterns.
func DefaultKeys() Keys { return KeysOf(channel.Kinds()) }

// KeysOf returns the default keys with these channel kinds (tests add one).
func KeysOf(kinds []*channel.Kind) Keys {
	k := Keys{kinds: append([]*channel.Kind(nil), kinds...)}
	for i, s := range keyTable {
		if s.Env != "" {
			k.set[i] = s.Pattern
		}
	}
	for _, c := range k.kinds {
		k.channels = append(k.channels, c.Default)
	}
	return k
}

// WithPrefix returns k with every channel and key prefixed by p. Tests use
// it to keep each test's Redis data apart.
func (k Keys) WithPrefix(p string) Keys {
	out := Keys{kinds: k.kinds}
	for i, v := range k.set {
		if v != "" {
			out.set[i] = p + v
		}
	}
	for _, c := range k.channels {
		out.channels = append(out.channels, p+c)
	}
	return out
}

// Env returns the settings that make Load produce k, by name.
func (k *Keys) Env() map[string]string {
	out := map[string]string{}
	for i, s := range keyTable {
		if s.Env != "" {
			out[s.Env] = k.set[i]
		}
	}
	for i, c := range k.kinds {
		out[c.Env] = k.channels[i]
	}
	return out
}

// Name returns the name of key with its placeholders filled in order (a
// key without placeholders takes none).
func (k *Keys) Name(key Key, args ...string) string {
	s := keyTable[key]
	prefix, pattern := "", k.set[key]
	if s.Env == "" {
		prefix, pattern = k.set[SSEPrefix], s.Pattern
	}
	if len(args) != len(s.Params) {
		panic(fmt.Sprintf("config: key %q takes %d values, got %d", s.Pattern, len(s.Params), len(args)))
	}
	// One allocation per name (several keys per connect): the placeholders
	// make the sum an upper bound.
	n := len(prefix) + len(pattern)
	for _, a := range args {
		n += len(a)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	// One pass over the pattern, so a value that looks like a placeholder
	// (a user id may be "{purpose}") is never filled in itself.
	for i, ph := range s.Params {
		before, after, ok := strings.Cut(pattern, ph)
		if !ok {
			break
		}
		b.WriteString(before)
		b.WriteString(args[i])
		pattern = after
	}
	b.WriteString(pattern)
	return b.String()
}

// Status returns the status cache key of a device.
func (k *Keys) Status(deviceID string) string { return k.Name(StatusKey, deviceID) }

// AlertHistory returns the alert history list key of a device.
func (k *Keys) AlertHistory(deviceID string) string { return k.Name(AlertHistoryKey, deviceID) }

// UserDevices returns the ownership set key of a user.
func (k *Keys) UserDevices(userID string) string { return k.Name(UserDevicesKey, userID) }

// UserGeneration is a user's revocation generation: the main app INCRs it
// to end every stream, ticket and resume cursor of the user at once.
func (k *Keys) UserGeneration(userID string) string { return k.Name(GenerationKey, userID) }

// MalformedCount is the counter of malformed channel messages dropped,
// summed over every process (each adds what its own subscription dropped).
func (k *Keys) MalformedCount() string { return k.Name(MalformedKey) }

// Ticket returns the record key of a ticket id.
func (k *Keys) Ticket(id string) string { return k.Name(TicketKey, id) }

// TicketRate returns a user's ticket counter key.
func (k *Keys) TicketRate(userID string) string { return k.Name(TicketRateKey, userID) }

// Lease returns the hash key of a lease id.
func (k *Keys) Lease(id string) string { return k.Name(LeaseKey, id) }

// UserLeases returns the set of a user's leases of one purpose.
func (k *Keys) UserLeases(userID string, p purpose.Purpose) string {
	return k.Name(UserLeasesKey, userID, string(p))
}

// IPLeases returns the set of an IP's leases.
func (k *Keys) IPLeases(ip string) string { return k.Name(IPLeasesKey, ip) }

// Control is the channel that carries "evict <leaseID>" and
// "close <leaseID>" between processes.
func (k *Keys) Control() string { return k.Name(ControlChannel) }

// Kinds returns the channel kinds k has names for.
func (k *Keys) Kinds() []*channel.Kind { return append([]*channel.Kind(nil), k.kinds...) }

// Channel returns the configured channel name of a kind ("" for a kind k
// does not have).
func (k *Keys) Channel(c *channel.Kind) string {
	for i, x := range k.kinds {
		if x == c {
			return k.channels[i]
		}
	}
	return ""
}

// Channels maps each configured channel name to its kind: what a hub
// subscribes to.
func (k *Keys) Channels() map[string]*channel.Kind {
	out := make(map[string]*channel.Kind, len(k.kinds))
	for i, c := range k.kinds {
		out[k.channels[i]] = c
	}
	return out
}

// keys reads every key setting and channel setting of the default table.
func (p *parser) keys() Keys {
	k := DefaultKeys()
	for i, s := range keyTable {
		if s.Env == "" {
			continue
		}
		v := strings.TrimSpace(p.getenv(s.Env))
		if v == "" {
			continue
		}
		if len(s.Params) > 0 && !strings.Contains(v, s.Params[0]) {
			p.fail("%s: %q must contain %s", s.Env, v, s.Params[0])
			continue
		}
		k.set[i] = v
	}
	for i, c := range k.kinds {
		if v := strings.TrimSpace(p.getenv(c.Env)); v != "" {
			k.channels[i] = v
		}
	}
	return k
}

// RedisTable is README's table of the Redis contract, rendered from the
// key table and the channel kinds: a test keeps the two the same.
func RedisTable() string {
	var b strings.Builder
	b.WriteString("| what | key / channel | setting | used as |\n|---|---|---|---|\n")
	readme := func(pattern string) string {
		return strings.NewReplacer("{", "<", "}", ">").Replace(pattern)
	}
	for _, c := range channel.Kinds() {
		use := fmt.Sprintf("`%s` on %s streams", c.Event, c.Purpose)
		if c.Coalesced {
			use += ", coalesced per device to one per `REALTIME_MIN_INTERVAL`"
		}
		fmt.Fprintf(&b, "| %s | channel `%s` `%s` | `%s` | %s |\n", c.What, c.Default, c.Payload, c.Env, use)
	}
	def := DefaultKeys()
	for i, s := range keyTable {
		var name, setting string
		switch {
		case Key(i) == SSEPrefix:
			name, setting = "`"+s.Pattern+"`", "`"+s.Env+"`"
		case s.Env != "":
			name, setting = "`"+readme(s.Pattern)+"`", "`"+s.Env+"`"
		default:
			name, setting = "`"+readme(def.set[SSEPrefix]+s.Pattern)+"`", "under `"+keyTable[SSEPrefix].Env+"`"
		}
		if Key(i) == ControlChannel {
			name = "channel " + name
		}
		if s.Kind != "" {
			name += " " + s.Kind
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.What, name, setting, s.Use)
	}
	return b.String()
}
