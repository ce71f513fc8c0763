// Package registry keeps the open streams of every process in Redis, so
// that limits hold across Lambda invocations that share nothing else.
//
// Each stream holds a lease: a hash with its details and an entry, scored by
// expiry, in its user's set for its purpose and in its IP's set. A stream
// renews its lease with every heartbeat; a lease whose process died expires
// by itself after its lifetime without renewal. Admission is one Lua
// script, so N simultaneous connects admit exactly the allowed number.
// Under evict-oldest the script marks the oldest lease "superseded" and
// returns its id (Admission.Evicted), which the caller sends to the
// lease's process over the control channel; a superseded lease's own
// reconnect is refused, which is what stops two tabs from evicting each
// other in turn. Each script takes its arguments as one JSON object whose
// fields are named and documented in Go (connectArgs, renewArgs,
// releaseArgs, closeArgs).
package registry

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
)

var (
	// lease.lua is a prelude of functions that connect and renew share.
	//go:embed lease.lua
	leaseSrc string
	//go:embed connect.lua
	connectSrc string
	//go:embed renew.lua
	renewSrc string
	//go:embed release.lua
	releaseSrc string

	connectScript = newScript(leaseSrc + connectSrc)
	renewScript   = newScript(leaseSrc + renewSrc)
	releaseScript = newScript(releaseSrc)
)

// scriptSources are the sources of every script of the registry, for
// LoadScripts.
var scriptSources []string

// newScript is redis.NewScript, keeping the source for LoadScripts.
func newScript(src string) *redis.Script {
	scriptSources = append(scriptSources, src)
	return redis.NewScript(src)
}

// Outcomes of Connect, Renew and Close that are not errors of Redis.
var (
	ErrRevoked    = errors.New("registry: ticket revoked")
	ErrForbidden  = errors.New("registry: device not owned")
	ErrUserLimit  = errors.New("registry: user stream limit reached")
	ErrIPLimit    = errors.New("registry: IP stream limit reached")
	ErrSuperseded = errors.New("registry: stream was superseded")
	ErrBadCursor  = errors.New("registry: resume cursor not valid")
	ErrGone       = errors.New("registry: lease expired")
)

// Limits are the connection limits and policy.
type Limits struct {
	Alerts, Data, PerIP int
	Policy              string // config.PolicyEvictOldest or config.PolicyReject
}

// Of returns the per-user limit of a purpose.
func (l Limits) Of(p purpose.Purpose) int {
	if p == purpose.Alerts {
		return l.Alerts
	}
	return l.Data
}

// Registry reads and writes leases.
type Registry struct {
	rdb    redis.Cmdable
	keys   config.Keys
	limits Limits
	ttl    time.Duration // lease lifetime without renewal
	grace  time.Duration // how long an ended lease stays resumable
}

// New returns a registry. ttl is how long a lease lives unrenewed (about
// two heartbeats); grace how long an ended stream may be resumed.
func New(rdb redis.Cmdable, keys config.Keys, limits Limits, ttl, grace time.Duration) *Registry {
	return &Registry{rdb: rdb, keys: keys, limits: limits, ttl: ttl, grace: grace}
}

// Limits returns the configured limits.
func (r *Registry) Limits() Limits { return r.limits }

// LoadScripts puts every script of the registry into Redis's script cache
// (one pipeline of SCRIPT LOAD), for a process to call once at start-up. A
// script runs as EVALSHA of its hash and falls back to EVAL with its whole
// source when Redis answers NOSCRIPT; on a Redis that has not seen the
// scripts yet, every EVALSHA of the first burst of concurrent connects
// would answer NOSCRIPT and be sent again. Loading is an optimisation only:
// after a restart or failover empties the cache, that fallback still runs
// each script and caches it again.
func (r *Registry) LoadScripts(ctx context.Context) error {
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		// The sources, not Script.Load: in a pipeline, Load would take the
		// hash from a reply not read yet and leave the script without one.
		for _, src := range scriptSources {
			p.ScriptLoad(ctx, src)
		}
		return nil
	})
	return err
}

// Request describes a stream asking to be admitted.
type Request struct {
	ID          string // new lease id (random)
	UserID      string
	Purpose     purpose.Purpose // Alerts or Data
	Devices     []string
	IP          string
	TicketKey   string // Redis key of the ticket record
	TicketID    string
	ResumeID    string // lease id from the client's Last-Event-ID, or ""
	NeedResume  bool   // the URL ticket expired: only a valid resume admits
	Generation  int64  // the ticket's revocation generation (ticket.Claims)
	StatusKeys  []string
	ConnectedAt time.Time
}

// Counts are a user's open streams.
type Counts struct {
	Alerts int `json:"alerts"`
	Data   int `json:"data"`
	Total  int `json:"total"`
}

// Admission is what Connect decided.
type Admission struct {
	Counts   Counts
	Evicted  []string // lease ids told to end (evict-oldest)
	Owned    []string // the user's devices (alerts streams)
	Statuses []string // values of StatusKeys, "" where missing
	Resumed  bool     // the lease of ResumeID was taken over
}

// Connect runs the admission script. The error is one of the sentinels
// above (with Counts filled for the limits) or a Redis error.
func (r *Registry) Connect(ctx context.Context, q Request, now time.Time) (Admission, error) {
	other := q.Purpose.Other()
	resumeKey := ""
	if q.ResumeID != "" {
		resumeKey = r.keys.Lease(q.ResumeID)
	}
	devJSON, _ := json.Marshal(q.Devices)
	keys := append([]string{
		q.TicketKey, r.keys.UserDevices(q.UserID), r.keys.UserLeases(q.UserID, q.Purpose), r.keys.UserLeases(q.UserID, other),
		r.keys.IPLeases(q.IP), r.keys.Lease(q.ID), resumeKey, r.keys.UserGeneration(q.UserID),
	}, q.StatusKeys...)
	args := connectArgs{
		Now: now.UnixMilli(), TTL: r.ttl.Milliseconds(), Grace: r.grace.Milliseconds(),
		ID: q.ID, LeasePrefix: r.keys.Lease(""), UserLimit: r.limits.Of(q.Purpose), IPLimit: r.limits.PerIP,
		Policy: r.limits.Policy, Purpose: q.Purpose, ResumeID: q.ResumeID, NeedResume: q.NeedResume,
		UserID: q.UserID, TicketID: q.TicketID, IP: q.IP, ConnectedAt: q.ConnectedAt.UnixMilli(),
		Devices: nonNil(q.Devices), DevicesJSON: string(devJSON), DevHash: DevicesHash(q.Purpose, q.Devices),
		Generation: q.Generation,
	}
	res, err := connectScript.Run(ctx, r.rdb, keys, scriptArgs(args)).Slice()
	if err != nil {
		return Admission{}, err
	}
	var a Admission
	status, _ := res[0].(string)
	if len(res) >= 3 {
		a.Counts = counts(q.Purpose, toInt(res[1]), toInt(res[2]))
	}
	switch status {
	case "ok":
	case "revoked":
		return a, ErrRevoked
	case "forbidden":
		return a, ErrForbidden
	case "superseded":
		return a, ErrSuperseded
	case "bad-cursor":
		return a, ErrBadCursor
	case "ip-limit":
		return a, ErrIPLimit
	case "user-limit":
		return a, ErrUserLimit
	default:
		return a, fmt.Errorf("registry: unexpected script reply %q", status)
	}
	a.Evicted = toStrings(res[3])
	a.Owned = toStrings(res[4])
	sort.Strings(a.Owned)
	a.Statuses = toStrings(res[5])
	a.Resumed = toInt(res[6]) == 1
	return a, nil
}

// Superseded reports whether a newer connect has marked the lease id
// superseded. A stream checks it once it has joined its hub, since an
// eviction notice published before then reached nobody.
func (r *Registry) Superseded(ctx context.Context, id string) (bool, error) {
	st, err := r.rdb.HGet(ctx, r.keys.Lease(id), "state").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return st == "superseded", err
}

// Lease identifies a live stream's lease for Renew and Release.
type Lease struct {
	ID, UserID, IP string
	Purpose        purpose.Purpose
	TicketKey      string
	Devices        []string // data streams: checked at every renewal
}

// Renew extends a live lease. It returns ErrSuperseded, ErrRevoked (the
// ticket record is gone or the user's revocation generation moved past the
// lease's), ErrForbidden (a data stream's device left the user's set) or
// ErrGone when the stream must end. For alerts streams it returns the user's
// current device set, so they follow ownership changes.
func (r *Registry) Renew(ctx context.Context, l Lease, now time.Time) ([]string, error) {
	keys := []string{r.keys.Lease(l.ID), r.keys.UserLeases(l.UserID, l.Purpose), r.keys.IPLeases(l.IP), l.TicketKey, r.keys.UserDevices(l.UserID), r.keys.UserGeneration(l.UserID)}
	args := renewArgs{Now: now.UnixMilli(), TTL: r.ttl.Milliseconds(), Grace: r.grace.Milliseconds(), ID: l.ID, Purpose: l.Purpose, Devices: []string{}}
	if l.Purpose == purpose.Data {
		args.Devices = nonNil(l.Devices)
	}
	res, err := renewScript.Run(ctx, r.rdb, keys, scriptArgs(args)).Slice()
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "ok":
		if len(res) > 1 {
			owned := toStrings(res[1])
			sort.Strings(owned)
			return owned, nil
		}
		return nil, nil
	case "superseded":
		return nil, ErrSuperseded
	case "revoked":
		return nil, ErrRevoked
	case "forbidden":
		return nil, ErrForbidden
	default:
		return nil, ErrGone
	}
}

// Release ends a lease: its slot is free at once, and its hash stays for the
// resume window (or keeps its superseded mark).
func (r *Registry) Release(ctx context.Context, l Lease) error {
	keys := []string{r.keys.Lease(l.ID), r.keys.UserLeases(l.UserID, l.Purpose), r.keys.IPLeases(l.IP)}
	return releaseScript.Run(ctx, r.rdb, keys, scriptArgs(releaseArgs{ID: l.ID, Grace: r.grace.Milliseconds()})).Err()
}

// Conn is one open stream as the status endpoint reports it.
type Conn struct {
	ID          string          `json:"id"`
	Purpose     purpose.Purpose `json:"purpose"`
	DeviceCount int             `json:"deviceCount"`
	Devices     []string        `json:"devices"`
	ConnectedAt time.Time       `json:"connectedAt"`
	Uptime      int64           `json:"uptime"` // seconds
}

// List returns a user's live streams of both purposes, oldest first, with
// their counts. Expired leases are not counted.
func (r *Registry) List(ctx context.Context, userID string, now time.Time) (Counts, []Conn, error) {
	// Two round trips whatever the number of streams: the live ids of both
	// purposes, then every lease hash.
	min := strconv.FormatInt(now.UnixMilli()+1, 10)
	purposes := purpose.Streams()
	ranges := make([]*redis.StringSliceCmd, len(purposes))
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, purpose := range purposes {
			ranges[i] = p.ZRangeByScore(ctx, r.keys.UserLeases(userID, purpose), &redis.ZRangeBy{Min: min, Max: "+inf"})
		}
		return nil
	}); err != nil {
		return Counts{}, nil, err
	}
	type lease struct {
		id      string
		purpose purpose.Purpose
		cmd     *redis.MapStringStringCmd
	}
	var leases []lease
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, purpose := range purposes {
			for _, id := range ranges[i].Val() {
				leases = append(leases, lease{id, purpose, p.HGetAll(ctx, r.keys.Lease(id))})
			}
		}
		return nil
	}); err != nil {
		return Counts{}, nil, err
	}
	var conns []Conn
	var c Counts
	for _, l := range leases {
		h := l.cmd.Val()
		if h["state"] != "live" {
			continue
		}
		var devs []string
		_ = json.Unmarshal([]byte(h["devices"]), &devs)
		if devs == nil {
			devs = []string{}
		}
		ms, _ := strconv.ParseInt(h["connectedAt"], 10, 64)
		at := time.UnixMilli(ms).UTC()
		conns = append(conns, Conn{ID: l.id, Purpose: l.purpose, DeviceCount: len(devs), Devices: devs, ConnectedAt: at, Uptime: int64(now.Sub(at) / time.Second)})
		if l.purpose == purpose.Alerts {
			c.Alerts++
		} else {
			c.Data++
		}
	}
	c.Total = c.Alerts + c.Data
	sort.Slice(conns, func(i, j int) bool { return conns[i].ConnectedAt.Before(conns[j].ConnectedAt) })
	return c, conns, nil
}

// DevicesHash binds a lease to its purpose and device list (order-free),
// so a resume cursor cannot be used to widen a stream.
func DevicesHash(p purpose.Purpose, devices []string) string {
	d := append([]string(nil), devices...)
	sort.Strings(d)
	return string(p) + ":" + strings.Join(d, ",")
}

func counts(p purpose.Purpose, same, other int) Counts {
	c := Counts{Alerts: same, Data: other}
	if p == purpose.Data {
		c = Counts{Alerts: other, Data: same}
	}
	c.Total = c.Alerts + c.Data
	return c
}

// The scripts' arguments: each script takes one ARGV, the JSON of its
// struct, and reads the fields by these names. Times are Unix ms and
// durations ms. A value the script stores as it is (connectedAt, gen) is
// sent as a decimal string, so the lease hash holds exactly that text.
type (
	connectArgs struct {
		Now         int64           `json:"now"`
		TTL         int64           `json:"ttl"`         // a lease's life without renewal
		Grace       int64           `json:"grace"`       // how long an ended lease stays resumable
		ID          string          `json:"id"`          // the new lease
		LeasePrefix string          `json:"leasePrefix"` // lease hash key = leasePrefix .. id (to find evicted leases)
		UserLimit   int             `json:"userLimit"`   // the user's streams of this purpose
		IPLimit     int             `json:"ipLimit"`
		Policy      string          `json:"policy"` // config.PolicyEvictOldest or config.PolicyReject
		Purpose     purpose.Purpose `json:"purpose"`
		ResumeID    string          `json:"resumeId"`   // the cursor's lease, or ""
		NeedResume  bool            `json:"needResume"` // only a valid resume admits (the ticket expired)
		UserID      string          `json:"userId"`
		TicketID    string          `json:"ticketId"`
		IP          string          `json:"ip"`
		ConnectedAt int64           `json:"connectedAt,string"`
		Devices     []string        `json:"devices"`     // each must be owned (data streams)
		DevicesJSON string          `json:"devicesJson"` // stored as the lease's devices
		DevHash     string          `json:"devHash"`     // DevicesHash: a resume must match it
		Generation  int64           `json:"gen,string"`  // the ticket's revocation generation
	}
	renewArgs struct {
		Now     int64           `json:"now"`
		TTL     int64           `json:"ttl"`
		Grace   int64           `json:"grace"`
		ID      string          `json:"id"`
		Purpose purpose.Purpose `json:"purpose"` // alerts: return the owned set; data: check Devices
		Devices []string        `json:"devices"`
	}
	releaseArgs struct {
		ID    string `json:"id"`
		Grace int64  `json:"grace"`
	}
)

// scriptArgs is a script's one ARGV. The structs above hold only strings,
// numbers, booleans and string lists, so encoding cannot fail.
func scriptArgs(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// nonNil makes an absent list encode as [] (which a script iterates), not
// null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toInt(v any) int {
	n, _ := v.(int64)
	return int(n)
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
