package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
	"github.com/machinedash/sse/internal/registry"
)

// The scripts are tested through the Registry's methods on a real Redis:
// what they admit, renew, release and close, and what they refuse.

var t0 = time.Date(2026, 1, 27, 12, 0, 0, 0, time.UTC)

const (
	ttl   = 60 * time.Second // lease lifetime without renewal
	grace = 5 * time.Minute  // how long an ended lease may be resumed
)

type fixture struct {
	t    *testing.T
	rdb  *redis.Client
	keys config.Keys
	reg  *registry.Registry
}

func newFixture(t *testing.T, limits registry.Limits) *fixture {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	return &fixture{t: t, rdb: rdb, keys: keys, reg: registry.New(rdb, keys, limits, ttl, grace)}
}

// ticket records a ticket (its Redis record is all the scripts look at)
// and returns its key.
func (f *fixture) ticket(id string) string {
	f.t.Helper()
	key := f.keys.Ticket(id)
	if err := f.rdb.Set(context.Background(), key, "1", time.Hour).Err(); err != nil {
		f.t.Fatal(err)
	}
	return key
}

func (f *fixture) own(user string, devices ...string) {
	f.t.Helper()
	if err := f.rdb.SAdd(context.Background(), f.keys.UserDevices(user), devices).Err(); err != nil {
		f.t.Fatal(err)
	}
}

// request is a data stream of user's device C01 from ip with ticket tk.
func (f *fixture) request(id, user, ip, tk string) registry.Request {
	return registry.Request{ID: id, UserID: user, Purpose: purpose.Data, Devices: []string{"C01"}, IP: ip,
		TicketKey: f.ticket(tk), TicketID: tk, ConnectedAt: t0}
}

func (f *fixture) connect(q registry.Request, now time.Time) registry.Admission {
	f.t.Helper()
	a, err := f.reg.Connect(context.Background(), q, now)
	if err != nil {
		f.t.Fatalf("connect %s: %v", q.ID, err)
	}
	return a
}

func (f *fixture) live(user string, now time.Time) []string {
	f.t.Helper()
	c, conns, err := f.reg.List(context.Background(), user, now)
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []string
	for _, cn := range conns {
		ids = append(ids, cn.ID)
	}
	if c.Total != len(ids) {
		f.t.Fatalf("List counts %+v for %d leases", c, len(ids))
	}
	sort.Strings(ids)
	return ids
}

func lease(q registry.Request) registry.Lease {
	return registry.Lease{ID: q.ID, UserID: q.UserID, IP: q.IP, Purpose: q.Purpose, TicketKey: q.TicketKey, Devices: q.Devices}
}

// connectAll runs the requests at once and returns each one's error.
func (f *fixture) connectAll(qs []registry.Request) ([]registry.Admission, []error) {
	adm := make([]registry.Admission, len(qs))
	errs := make([]error, len(qs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			adm[i], errs[i] = f.reg.Connect(context.Background(), q, t0)
		}()
	}
	close(start)
	wg.Wait()
	return adm, errs
}

// TestConcurrentConnectsAdmitExactlyTheLimit: N connects at once against a
// limit of k admit exactly k, per user and per IP, and the others are told
// which limit with the counts as they are.
func TestConcurrentConnectsAdmitExactlyTheLimit(t *testing.T) {
	t.Parallel()
	const n = 24
	t.Run("user", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, registry.Limits{Alerts: 1, Data: 3, PerIP: 100, Policy: config.PolicyReject})
		f.own("1", "C01")
		var qs []registry.Request
		for i := range n {
			qs = append(qs, f.request(fmt.Sprintf("L%02d", i), "1", fmt.Sprintf("10.0.0.%d", i), fmt.Sprintf("tk%d", i)))
		}
		adm, errs := f.connectAll(qs)
		var admitted []string
		for i, err := range errs {
			switch {
			case err == nil:
				admitted = append(admitted, qs[i].ID)
			case errors.Is(err, registry.ErrUserLimit):
				if adm[i].Counts != (registry.Counts{Data: 3, Total: 3}) {
					t.Errorf("refused with counts %+v, want 3 data", adm[i].Counts)
				}
			default:
				t.Errorf("connect %d: %v", i, err)
			}
		}
		sort.Strings(admitted)
		if len(admitted) != 3 || !slices.Equal(f.live("1", t0), admitted) {
			t.Fatalf("admitted %v, live %v; want exactly 3", admitted, f.live("1", t0))
		}
	})
	t.Run("ip", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, registry.Limits{Alerts: 1, Data: 1, PerIP: 2, Policy: config.PolicyReject})
		var qs []registry.Request
		for i := range n {
			user := fmt.Sprint(100 + i) // one stream per user: only the IP limits
			f.own(user, "C01")
			qs = append(qs, f.request(fmt.Sprintf("P%02d", i), user, "192.0.2.7", fmt.Sprintf("tk%d", i)))
		}
		_, errs := f.connectAll(qs)
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, registry.ErrIPLimit):
				t.Errorf("connect %d: %v", i, err)
			}
		}
		if ok != 2 {
			t.Fatalf("%d admitted from one IP, want 2", ok)
		}
	})
	t.Run("evict oldest", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, registry.Limits{Alerts: 1, Data: 2, PerIP: 100, Policy: config.PolicyEvictOldest})
		f.own("1", "C01")
		var qs []registry.Request
		for i := range n {
			q := f.request(fmt.Sprintf("E%02d", i), "1", fmt.Sprintf("10.0.1.%d", i), fmt.Sprintf("tk%d", i))
			q.ConnectedAt = t0.Add(time.Duration(i) * time.Millisecond)
			qs = append(qs, q)
		}
		adm, errs := f.connectAll(qs)
		var evicted []string
		for i, err := range errs {
			if err != nil {
				t.Fatalf("connect %d under evict-oldest: %v", i, err)
			}
			evicted = append(evicted, adm[i].Evicted...)
		}
		// Each connect beyond the limit evicts exactly one, each lease is
		// evicted at most once, and the rest stay live.
		live := f.live("1", t0)
		sort.Strings(evicted)
		all := slices.Sorted(slices.Values(append(slices.Clone(live), evicted...)))
		var ids []string
		for _, q := range qs {
			ids = append(ids, q.ID)
		}
		if len(live) != 2 || len(evicted) != n-2 || !slices.Equal(all, ids) {
			t.Fatalf("live %v, evicted %v: want 2 live and every other lease evicted once", live, evicted)
		}
		for _, id := range evicted {
			if s, err := f.reg.Superseded(context.Background(), id); err != nil || !s {
				t.Fatalf("evicted %s: superseded %v, %v", id, s, err)
			}
		}
	})
}

// TestRenew: a renewal extends the lease; it ends the lease, freeing its
// slot, when the ticket is revoked (record gone or generation moved past),
// when a data stream's device left the user, or once it was superseded or
// released; an alerts lease gets the user's current devices.
func TestRenew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, registry.Limits{Alerts: 5, Data: 5, PerIP: 100, Policy: config.PolicyReject})
	f.own("1", "C01", "C02")

	kept, dropped := f.request("keep", "1", "10.0.0.1", "tk1"), f.request("drop", "1", "10.0.0.1", "tk1")
	f.connect(kept, t0)
	f.connect(dropped, t0)
	if _, err := f.reg.Renew(ctx, lease(kept), t0.Add(ttl-time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := f.live("1", t0.Add(ttl+time.Second)); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("live after one renewal %v, want only the renewed lease", got)
	}

	alerts := registry.Request{ID: "alerts", UserID: "1", Purpose: purpose.Alerts, IP: "10.0.0.1", TicketKey: f.ticket("tk2"), TicketID: "tk2", ConnectedAt: t0}
	f.connect(alerts, t0)
	f.own("1", "C03")
	if owned, err := f.reg.Renew(ctx, lease(alerts), t0); err != nil || !slices.Equal(owned, []string{"C01", "C02", "C03"}) {
		t.Fatalf("alerts renewal: %v, %v; want the user's devices", owned, err)
	}

	for _, tc := range []struct {
		name  string
		setup func(q registry.Request)
		want  error
	}{
		{"ticket record deleted", func(q registry.Request) {
			if err := f.rdb.Del(ctx, q.TicketKey).Err(); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrRevoked},
		{"generation moved past", func(registry.Request) {
			if err := f.rdb.Incr(ctx, f.keys.UserGeneration("2")).Err(); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrRevoked},
		{"device removed", func(registry.Request) {
			if err := f.rdb.SRem(ctx, f.keys.UserDevices("2"), "C01").Err(); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrForbidden},
		{"released", func(q registry.Request) {
			if err := f.reg.Release(ctx, lease(q)); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.rdb.Del(ctx, f.keys.UserGeneration("2"), f.keys.UserDevices("2")).Err(); err != nil {
				t.Fatal(err)
			}
			f.own("2", "C01")
			q := f.request("r-"+tc.name, "2", "10.0.0.2", "tk-"+tc.name)
			f.connect(q, t0)
			tc.setup(q)
			if _, err := f.reg.Renew(ctx, lease(q), t0.Add(time.Second)); !errors.Is(err, tc.want) {
				t.Fatalf("renew: %v, want %v", err, tc.want)
			}
			if got := f.live("2", t0.Add(time.Second)); len(got) != 0 {
				t.Fatalf("still live after the refused renewal: %v", got)
			}
		})
	}

	t.Run("superseded", func(t *testing.T) {
		g := newFixture(t, registry.Limits{Alerts: 1, Data: 1, PerIP: 100, Policy: config.PolicyEvictOldest})
		g.own("3", "C01")
		old, next := g.request("old", "3", "10.0.0.3", "tk1"), g.request("new", "3", "10.0.0.3", "tk2")
		g.connect(old, t0)
		next.ConnectedAt = t0.Add(time.Second)
		if a := g.connect(next, t0.Add(time.Second)); !slices.Equal(a.Evicted, []string{"old"}) {
			t.Fatalf("evicted %v", a.Evicted)
		}
		if _, err := g.reg.Renew(ctx, lease(old), t0.Add(2*time.Second)); !errors.Is(err, registry.ErrSuperseded) {
			t.Fatalf("renew of the evicted lease: %v", err)
		}
		// Its own reconnect is refused too, even after its release.
		if err := g.reg.Release(ctx, lease(old)); err != nil {
			t.Fatal(err)
		}
		back := g.request("back", "3", "10.0.0.3", "tk1")
		back.ResumeID = "old"
		if _, err := g.reg.Connect(ctx, back, t0.Add(3*time.Second)); !errors.Is(err, registry.ErrSuperseded) {
			t.Fatalf("reconnect of the evicted lease: %v", err)
		}
	})
}

// TestReleaseFreesTheSlotAndKeepsTheLeaseResumable: after a release the
// slot is free at once; the lease can be resumed within the grace window,
// with its own ticket only.
func TestReleaseFreesTheSlotAndKeepsTheLeaseResumable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, registry.Limits{Alerts: 1, Data: 1, PerIP: 100, Policy: config.PolicyReject})
	f.own("1", "C01")
	q := f.request("first", "1", "10.0.0.1", "tk1")
	f.connect(q, t0)
	if _, err := f.reg.Connect(ctx, f.request("second", "1", "10.0.0.1", "tk2"), t0); !errors.Is(err, registry.ErrUserLimit) {
		t.Fatalf("second stream under the limit: %v", err)
	}
	if err := f.reg.Release(ctx, lease(q)); err != nil {
		t.Fatal(err)
	}
	if got := f.live("1", t0); len(got) != 0 {
		t.Fatalf("live after release: %v", got)
	}
	second := f.request("second", "1", "10.0.0.1", "tk2")
	f.connect(second, t0) // the freed slot takes a new stream at once
	if err := f.reg.Release(ctx, lease(second)); err != nil {
		t.Fatal(err)
	}
	if pttl := f.rdb.PTTL(ctx, f.keys.Lease("first")).Val(); pttl <= 0 || pttl > grace {
		t.Fatalf("released lease expires in %v, want within the grace window %v", pttl, grace)
	}

	// The ticket expired: only a cursor of this very ticket admits.
	resume := func(id, tk string) registry.Request {
		r := f.request(id, "1", "10.0.0.1", tk)
		r.ResumeID, r.NeedResume = "first", true
		return r
	}
	if _, err := f.reg.Connect(ctx, resume("other", "tk2"), t0.Add(time.Minute)); !errors.Is(err, registry.ErrBadCursor) {
		t.Fatalf("resume with the same user's other ticket: %v, want ErrBadCursor", err)
	}
	other := resume("theirs", "tk1")
	other.UserID = "2"
	f.own("2", "C01")
	if _, err := f.reg.Connect(ctx, other, t0.Add(time.Minute)); !errors.Is(err, registry.ErrBadCursor) {
		t.Fatalf("resume by another user: %v, want ErrBadCursor", err)
	}
	wider := resume("wider", "tk1")
	wider.Devices = []string{"C01", "C02"}
	f.own("1", "C02")
	if _, err := f.reg.Connect(ctx, wider, t0.Add(time.Minute)); !errors.Is(err, registry.ErrBadCursor) {
		t.Fatalf("resume for more devices: %v, want ErrBadCursor", err)
	}
	a, err := f.reg.Connect(ctx, resume("again", "tk1"), t0.Add(time.Minute))
	if err != nil || !a.Resumed {
		t.Fatalf("resume with its own ticket: %+v, %v", a, err)
	}
	if got := f.live("1", t0.Add(time.Minute)); !slices.Equal(got, []string{"again"}) {
		t.Fatalf("live after the resume %v", got)
	}
	// The resumed lease is gone: its cursor is used up.
	if _, err := f.reg.Connect(ctx, resume("twice", "tk1"), t0.Add(time.Minute)); !errors.Is(err, registry.ErrBadCursor) {
		t.Fatalf("second resume of one cursor: %v, want ErrBadCursor", err)
	}
}

// TestClose: only the lease's own user and ticket close it; a revoked
// ticket is told so whatever the id; a closed lease frees its slot and may
// be resumed.
func TestClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, registry.Limits{Alerts: 1, Data: 1, PerIP: 100, Policy: config.PolicyReject})
	f.own("1", "C01")
	f.own("2", "C01")
	q := f.request("mine", "1", "10.0.0.1", "tk1")
	f.connect(q, t0)
	theirs := f.request("theirs", "2", "10.0.0.2", "tk9")
	f.connect(theirs, t0)
	f.ticket("tk2")

	for _, tc := range []struct {
		name, id, user, ticket string
		want                   error
	}{
		{"another ticket of the user", "mine", "1", "tk2", registry.ErrNotLive},
		{"another user's lease", "theirs", "1", "tk1", registry.ErrNotLive},
		{"another user with the lease's ticket id", "mine", "2", "tk1", registry.ErrNotLive},
		{"no such lease", "nope", "1", "tk1", registry.ErrNotLive},
	} {
		if err := f.reg.Close(ctx, tc.id, tc.user, f.keys.Ticket(tc.ticket), tc.ticket, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := f.live("1", t0); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("refused closes changed the leases: %v", got)
	}
	if err := f.rdb.Incr(ctx, f.keys.UserGeneration("2")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Close(ctx, "theirs", "2", theirs.TicketKey, "tk9", 0); !errors.Is(err, registry.ErrRevoked) {
		t.Fatalf("close with a ticket behind the generation: %v, want ErrRevoked", err)
	}
	if err := f.reg.Close(ctx, "mine", "1", q.TicketKey, "tk1", 0); err != nil {
		t.Fatalf("close of my own lease: %v", err)
	}
	if got := f.live("1", t0); len(got) != 0 {
		t.Fatalf("live after close: %v", got)
	}
	f.connect(f.request("next", "1", "10.0.0.1", "tk3"), t0) // the slot is free at once
	if err := f.reg.Release(ctx, lease(f.request("next", "1", "10.0.0.1", "tk3"))); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Close(ctx, "mine", "1", q.TicketKey, "tk1", 0); !errors.Is(err, registry.ErrNotLive) {
		t.Fatalf("second close: %v", err)
	}
	if err := f.rdb.Del(ctx, q.TicketKey).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Close(ctx, "nope", "1", q.TicketKey, "tk1", 0); !errors.Is(err, registry.ErrRevoked) {
		t.Fatalf("close with a deleted ticket record: %v, want ErrRevoked", err)
	}
	r := f.request("back", "1", "10.0.0.1", "tk1")
	r.ResumeID = "mine"
	if a, err := f.reg.Connect(ctx, r, t0.Add(time.Second)); err != nil || !a.Resumed {
		t.Fatalf("resume after close: %+v, %v", a, err)
	}
}

// TestLoadScripts: once LoadScripts has run, the scripts run as EVALSHA
// with no NOSCRIPT answer sent again as EVAL; once Redis's script cache is
// emptied (a restart or a failover), they still run, through that fallback.
// Not parallel: emptying the cache of the test Redis makes the other tests'
// scripts fall back to EVAL once, the behaviour checked here, and must not
// load a script between this test's flush and its check.
func TestLoadScripts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, registry.Limits{Alerts: 1, Data: 1, PerIP: 100, Policy: config.PolicyReject})
	f.own("1", "C01")
	evals := &evalLog{}
	f.rdb.AddHook(evals)
	if err := f.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	q := f.request("a", "1", "10.0.0.1", "tk1")
	f.connect(q, t0)
	if _, err := f.reg.Renew(ctx, lease(q), t0); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Release(ctx, lease(q)); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Close(ctx, "a", "1", q.TicketKey, "tk1", 0); !errors.Is(err, registry.ErrNotLive) {
		t.Fatalf("close of a released lease: %v", err)
	}
	if got := evals.take(); !slices.Equal(got, []string{"evalsha", "evalsha", "evalsha", "evalsha"}) {
		t.Fatalf("after LoadScripts connect, renew, release and close sent %v, want one EVALSHA each", got)
	}

	if err := f.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f.connect(f.request("b", "1", "10.0.0.1", "tk2"), t0)
	if got := evals.take(); !slices.Equal(got, []string{"evalsha", "eval"}) {
		t.Fatalf("connect after the script cache was emptied sent %v, want EVALSHA then EVAL", got)
	}
}

// evalLog records the script commands a client sends (evalsha, eval).
type evalLog struct {
	mu   sync.Mutex
	sent []string
}

func (l *evalLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *evalLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "eval" || name == "evalsha" {
			l.mu.Lock()
			l.sent = append(l.sent, name)
			l.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (l *evalLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (l *evalLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent
	l.sent = nil
	return s
}
