// Package purpose names what a stream carries: alerts or data. It is the
// one word the ticket, the lease, the subscription, the channel kind and the
// endpoints share, so none of them translates another's.
//
// Invariants: a stream, a lease and a channel kind are always Alerts or
// Data; only a ticket may be Any (it has no purpose claim). The values are
// the contract's own words: the ticket claim, the request body, the lease
// hash, the Redis key part and the status body all carry them as they are.
package purpose

// Purpose is "alerts", "data", or Any ("") for a ticket without a purpose.
type Purpose string

const (
	Alerts Purpose = "alerts" // GET /sse/alerts
	Data   Purpose = "data"   // GET /sse/stream
	// Any is a ticket with no purpose claim (the legacy form), which opens
	// either stream. Nothing else is ever Any.
	Any Purpose = ""
)

// Streams returns the purposes a stream can have, in a fixed order.
func Streams() [2]Purpose { return [2]Purpose{Alerts, Data} }

// Parse returns the purpose named s: "alerts", "data", or "" for Any.
// Anything else, "any" included, is not a purpose.
func Parse(s string) (Purpose, bool) {
	switch p := Purpose(s); p {
	case Any, Alerts, Data:
		return p, true
	}
	return Any, false
}

// Stream reports whether p is a stream's purpose (Alerts or Data).
func (p Purpose) Stream() bool { return p == Alerts || p == Data }

// Other returns the other stream purpose: Data for Alerts, else Alerts.
func (p Purpose) Other() Purpose {
	if p == Alerts {
		return Data
	}
	return Alerts
}

// Allows reports whether a ticket of purpose p may open a stream of
// purpose want, which must be Alerts or Data.
func (p Purpose) Allows(want Purpose) bool {
	return want.Stream() && (p == Any || p == want)
}

// Name returns "any" for Any, else the purpose itself (the status
// endpoint's ticketPurpose, the ticket record's purpose).
func (p Purpose) Name() string {
	if p == Any {
		return "any"
	}
	return string(p)
}
