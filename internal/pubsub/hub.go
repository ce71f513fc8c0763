package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
)

// ErrUnavailable means the shared Redis subscription could not be
// confirmed in time; the caller should refuse softly and let the client
// retry.
var ErrUnavailable = errors.New("pubsub: redis subscription unavailable")

// Channels maps each subscribed channel to its kind. Control is the
// channel on which processes address one stream by id (Evict, CloseStream);
// empty disables it.
type Channels struct {
	Kinds   map[string]*channel.Kind
	Control string
}

// Filter says what a subscription wants: the messages of these devices,
// of the kinds of its stream's purpose.
type Filter struct {
	Devices []string
	Purpose purpose.Purpose
}

// Stats are the hub's counters since it started.
type Stats struct {
	Received   int64 // channel messages read
	Malformed  int64 // dropped: not JSON, no/invalid deviceId, too large
	Deliveries int64 // (message, stream) pairs queued
	Resets     int64 // shared subscriptions dropped and re-made
}

// Hub owns the process's one Redis subscription and routes its messages.
type Hub struct {
	rdb      redis.UniversalClient
	channels Channels
	log      *slog.Logger
	now      func() time.Time
	// barrierTimeout bounds the wait for a barrier's answer.
	barrierTimeout time.Duration

	mu sync.RWMutex
	// subs is the one index of subscriptions, by key (Subscription.key);
	// routes is derived from it: the same subscriptions by device.
	subs     map[string]*Subscription
	routes   map[string]*routes  // device -> subscriptions
	barriers map[string]*barrier // ping payload in flight -> what its answer confirms
	anon     uint64              // numbers the keys of unaddressable subscriptions
	evicted  evictions           // recent eviction notices for streams not (yet) here

	connMu  sync.Mutex
	ps      *redis.PubSub
	psJoin  *joining      // the barrier state of ps
	gen     uint64        // the generation of ps: +1 for every new shared connection
	heard   atomic.Uint64 // the newest generation on which a barrier was answered
	stopped chan struct{} // closed when the current reader exits
	// afterDetach, when set (tests), runs in reset between detaching the
	// connection and ending its subscriptions: the window in which a new
	// connection may already be serving new subscriptions.
	afterDetach func()

	received, malformed, deliveries, resets atomic.Int64
	barrierPings                            atomic.Int64 // barrier pings written (tests)
	unreported                              atomic.Int64 // malformed, not yet taken by TakeMalformed
}

type routes struct {
	data, alerts []*Subscription
}

// joining is one shared connection's barrier state (under Hub.mu). At most
// one barrier ping is in flight per connection: the subscriptions added
// while it flies wait for the next, which the reader sends when the answer
// comes. One ping confirms every subscription added before it was written,
// so a burst of N connects costs about two pings, not N.
type joining struct {
	ps      *redis.PubSub
	flying  bool            // a barrier ping is in flight on ps
	waiting []*Subscription // added, not yet covered by a ping written
	closed  bool            // ps was reset: nothing joins on it any more
}

// barrier is one ping in flight: the subscriptions its answer confirms.
type barrier struct {
	join *joining
	subs []*Subscription
}

// NewHub returns a hub; it subscribes lazily, on the first Subscribe.
func NewHub(rdb redis.UniversalClient, ch Channels, log *slog.Logger, now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	return &Hub{
		rdb:            rdb,
		channels:       ch,
		log:            log,
		now:            now,
		barrierTimeout: DefaultBarrierTimeout,
		subs:           make(map[string]*Subscription),
		routes:         make(map[string]*routes),
		barriers:       make(map[string]*barrier),
		evicted:        evictions{at: make(map[string]time.Time)},
	}
}

// Subscription is one stream's registration with the hub: its filter, its
// queue, and how it ended.
type Subscription struct {
	hub    *Hub
	key    string // in hub.subs: the stream id, or a key no stream id can be
	stream string // "" when the stream cannot be addressed
	filter Filter
	gen    uint64 // the shared connection it was made on (Hub.gen)
	queue  *Queue

	active  atomic.Bool
	ready   chan struct{} // closed by the reader at the barrier
	done    chan struct{} // closed, once, when the subscription ends
	endOnce sync.Once
	cause   atomic.Uint32 // an End, set before done is closed
}

// End says why a subscription ended.
type End uint32

const (
	// Lost: the shared Redis subscription broke; messages may have been
	// missed, so the stream should end and let the client resume.
	Lost End = iota + 1
	// Evicted: another connect took this stream's place (Evict).
	Evicted
	// ClosedByClient: the stream's client asked to end it (CloseStream).
	ClosedByClient
)

// End returns why the subscription ended for a reason of the hub's, or 0
// while it has not (Close does not end it). Ready is signalled when it
// ends.
func (s *Subscription) End() End { return End(s.cause.Load()) }

// end closes done with cause e (once) and signals Ready, so that a stream
// waiting on Ready alone learns it too.
func (s *Subscription) end(e End) {
	s.endOnce.Do(func() {
		s.cause.Store(uint32(e))
		close(s.done)
		s.queue.wake()
	})
}

// Ready is signalled (it coalesces) when messages were queued, when the
// subscription ended (End) and at every Wake: a stream can wait on it
// alone, with its timers, and look at what changed when it fires.
func (s *Subscription) Ready() <-chan struct{} { return s.queue.Ready() }

// Wake signals Ready without a message, for a reason of the caller's (its
// client left, the process drains: see stream's loop). It never blocks.
func (s *Subscription) Wake() { s.queue.wake() }

// Hold makes messages queue without signalling Ready, until Release: the
// stream holds back what it has for a timer of its own that will take
// everything at once (stream's Timing.FlushInterval), and a wake-up per
// message meanwhile would only find it waiting. The subscription's end and
// Wake still signal.
func (s *Subscription) Hold() { s.queue.held.Store(true) }

// Release ends Hold and signals Ready.
func (s *Subscription) Release() {
	s.queue.held.Store(false)
	s.queue.wake()
}

// Drain takes the queued messages that may be sent at now (Queue.Drain).
func (s *Subscription) Drain(now time.Time, dst []*Message) (out []*Message, next time.Time, overflowed bool) {
	return s.queue.Drain(now, dst)
}

// QueueStats returns the queue's counters (Queue.Stats).
func (s *Subscription) QueueStats() QueueStats { return s.queue.Stats() }

// QueueLimits bound a subscription's queue (see Queue).
type QueueLimits struct {
	Capacity int           // non-realtime messages held at most
	Realtime time.Duration // realtime updates at most once per this, per device
}

// DefaultBarrierTimeout is how long the shared connection may take to
// answer a barrier ping before the hub takes it for dead and resets it.
const DefaultBarrierTimeout = 3 * time.Second

// errNoPong is the reset cause when a barrier ping got no answer in time.
var errNoPong = errors.New("pubsub: no answer to a barrier ping")

// Subscribe registers a stream (streamID may be empty when the stream
// cannot be addressed) with a queue bounded by lim, and returns once the
// shared subscription has confirmed it: every message Redis delivers after
// that point and matching f is queued; nothing delivered before it ever
// is. It fails with an error matching ErrUnavailable when Redis does not
// confirm in time or ctx ends first. The caller closes the subscription.
//
// The barrier belongs to the hub, not to the caller: the ping is written
// and watched under the hub's own timeout whatever ctx does, so a caller
// that gives up (its client hung up mid-connect) costs only its own
// connect. Only a ping that Redis does not answer within the barrier
// timeout resets the shared subscription.
func (h *Hub) Subscribe(ctx context.Context, streamID string, f Filter, lim QueueLimits) (*Subscription, error) {
	s := h.newSubscription(streamID, f, lim)
	// Without the caller's cancellation: go-redis closes the shared
	// connection when a write fails on a context that ended.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.barrierTimeout)
	ps, join, gen := h.conn(bctx)
	s.gen = gen
	h.mu.Lock()
	if join.closed {
		// Reset between conn and here: s would wait for a ping that no
		// one sends on a connection that is gone.
		h.mu.Unlock()
		cancel()
		return nil, ErrUnavailable
	}
	h.add(s)
	// A notice that came before s was added found no one: s was evicted
	// while its connect was between admission and here.
	evicted := s.stream != "" && h.evicted.has(s.stream, h.now())
	// Added before the ping that covers it is written: a reset of this
	// connection from here on finds s (loseAll).
	join.waiting = append(join.waiting, s)
	token, b := h.nextBarrier(join)
	h.mu.Unlock()
	if evicted {
		s.end(Evicted)
	}
	if b != nil {
		h.ping(bctx, token, b)
	}
	done := s.done
	for {
		select {
		case <-s.ready:
			cancel()
			return s, nil
		case <-done:
			if s.End() != Lost {
				// Evicted or closed while joining: confirmed or not, the
				// stream learns it from Done as soon as it is returned.
				done = nil
				continue
			}
			cancel()
			s.Close()
			return nil, ErrUnavailable
		case <-bctx.Done():
			cancel()
			s.Close()
			// A ping that gets no answer means the connection is dead (a
			// Lambda frozen for long, a failover): start over.
			h.reset(ps, errNoPong)
			return nil, ErrUnavailable
		case <-ctx.Done():
			// The caller left. Its subscription receives nothing from now
			// on, but the ping that covers it still proves the connection:
			// watch it out of the caller's way.
			h.unregister(s)
			go h.watch(ps, s, bctx, cancel)
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
}

func (h *Hub) newSubscription(streamID string, f Filter, lim QueueLimits) *Subscription {
	return &Subscription{
		hub: h, stream: streamID, filter: f, queue: newQueue(lim.Capacity, lim.Realtime),
		ready: make(chan struct{}), done: make(chan struct{}),
	}
}

// nextBarrier takes join's waiting subscriptions as the next barrier when
// no ping is in flight on its connection, and returns the ping's payload;
// the caller writes it (ping) after releasing h.mu. It returns nil when a
// ping is in flight (its answer sends the next) or nothing waits. h.mu
// must be held.
func (h *Hub) nextBarrier(join *joining) (string, *barrier) {
	if join.flying || join.closed || len(join.waiting) == 0 {
		return "", nil
	}
	b := &barrier{join: join, subs: join.waiting}
	join.waiting = nil
	join.flying = true
	h.barrierPings.Add(1)
	token := "b:" + randomHex()
	h.barriers[token] = b
	return token, b
}

// ping writes barrier b's ping. A write that fails ends the connection and,
// in case it was already replaced (then the reset is a no-op), b's
// subscriptions too, so that none waits for an answer that cannot come.
func (h *Hub) ping(ctx context.Context, token string, b *barrier) {
	if err := b.join.ps.Ping(ctx, token); err != nil {
		h.reset(b.join.ps, err)
		h.mu.Lock()
		delete(h.barriers, token)
		h.mu.Unlock()
		for _, s := range b.subs {
			s.end(Lost)
		}
	}
}

// watch waits for the barrier of a subscription whose caller gave up, and
// resets ps only if Redis does not answer it in time.
func (h *Hub) watch(ps *redis.PubSub, s *Subscription, bctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	select {
	case <-s.ready:
	case <-bctx.Done():
		h.reset(ps, errNoPong) // a no-op when ps was already replaced
	}
}

// SetDevices replaces the devices a subscription receives (an ownership
// change seen by the stream).
func (s *Subscription) SetDevices(devices []string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unindex(s)
	s.filter.Devices = devices
	h.index1(s)
}

// Close removes the subscription. It is idempotent.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	// A barrier that still lists s confirms it after its end: harmless,
	// since s is out of the index.
	h.drop(s)
}

// unregister removes s from the routes but leaves it in its barrier, so
// the hub still sees the answer to the ping that covers it.
func (h *Hub) unregister(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(s)
}

// drop takes s out of the index; h.mu must be held.
func (h *Hub) drop(s *Subscription) {
	if h.subs[s.key] != s {
		return // dropped before
	}
	h.unindex(s)
	delete(h.subs, s.key)
}

// Stats returns the counters.
func (h *Hub) Stats() Stats {
	return Stats{Received: h.received.Load(), Malformed: h.malformed.Load(), Deliveries: h.deliveries.Load(), Resets: h.resets.Load()}
}

// TakeMalformed returns how many malformed messages were dropped since the
// last call, so that each drop is reported once (to the shared counter in
// Redis) however many streams of this process end.
func (h *Hub) TakeMalformed() int64 { return h.unreported.Swap(0) }

// UntakeMalformed gives back n taken by TakeMalformed that could not be
// reported, so that the next report carries them.
func (h *Hub) UntakeMalformed(n int64) { h.unreported.Add(n) }

// add indexes s; h.mu must be held. A stream id is its key unless
// another subscription holds it (tests reuse ids; a lease id is random):
// then, as for a stream without id, the key is one no id can be ("\x00n"),
// so that every subscription is in the index and control finds the first.
func (h *Hub) add(s *Subscription) {
	s.key = s.stream
	if _, taken := h.subs[s.key]; s.key == "" || taken {
		h.anon++
		s.key = "\x00" + strconv.FormatUint(h.anon, 10)
	}
	h.subs[s.key] = s
	h.index1(s)
}

func (h *Hub) index1(s *Subscription) {
	for _, d := range s.filter.Devices {
		r := h.routes[d]
		if r == nil {
			r = &routes{}
			h.routes[d] = r
		}
		if s.filter.Purpose == purpose.Alerts {
			r.alerts = append(r.alerts, s)
		} else {
			r.data = append(r.data, s)
		}
	}
}

func (h *Hub) unindex(s *Subscription) {
	for _, d := range s.filter.Devices {
		r := h.routes[d]
		if r == nil {
			continue
		}
		r.data = remove(r.data, s)
		r.alerts = remove(r.alerts, s)
		if len(r.data) == 0 && len(r.alerts) == 0 {
			delete(h.routes, d)
		}
	}
}

// remove deletes s from list without reusing list's backing array, so a
// reader holding the old slice under RLock is never disturbed.
func remove(list []*Subscription, s *Subscription) []*Subscription {
	for i, x := range list {
		if x == s {
			out := make([]*Subscription, 0, len(list)-1)
			out = append(out, list[:i]...)
			return append(out, list[i+1:]...)
		}
	}
	return list
}

// conn returns the shared subscription, its barrier state and its
// generation, creating them and its reader when there is none.
func (h *Hub) conn(ctx context.Context) (*redis.PubSub, *joining, uint64) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.ps != nil {
		return h.ps, h.psJoin, h.gen
	}
	names := make([]string, 0, len(h.channels.Kinds)+1)
	for name := range h.channels.Kinds {
		names = append(names, name)
	}
	if h.channels.Control != "" {
		names = append(names, h.channels.Control)
	}
	ps := h.rdb.Subscribe(ctx, names...)
	h.ps = ps
	h.psJoin = &joining{ps: ps}
	h.gen++
	h.stopped = make(chan struct{})
	go h.read(ps, h.psJoin, h.gen, h.stopped)
	return ps, h.psJoin, h.gen
}

// Epoch names a shared connection whose subscription Redis has confirmed
// (a barrier answered on it); 0 names none.
type Epoch uint64

// Epoch returns the current shared connection if Redis has confirmed its
// subscription, else 0. Every control notice published after that point
// reaches the hub for as long as that connection lasts.
func (h *Hub) Epoch() Epoch {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.ps != nil && h.heard.Load() == h.gen {
		return Epoch(h.gen)
	}
	return 0
}

// HeardSince reports whether s was made on the connection e names (e not
// 0): then every eviction notice published since e was taken reached the
// hub, and so either ended s or was remembered for it (see evictions).
// A stream that took e before its admission therefore knows from End
// whether it was evicted before it joined.
func (s *Subscription) HeardSince(e Epoch) bool { return e != 0 && Epoch(s.gen) == e }

// reset drops the shared subscription ps (if it is still current) and ends
// every subscription made on it. The next Subscribe makes a new one; the
// subscriptions made on that one are never ended by this reset, however
// the two interleave.
func (h *Hub) reset(ps *redis.PubSub, cause error) {
	h.connMu.Lock()
	if h.ps != ps {
		h.connMu.Unlock()
		return
	}
	gen, join := h.gen, h.psJoin
	h.ps, h.psJoin = nil, nil
	h.connMu.Unlock()
	_ = ps.Close()
	h.resets.Add(1)
	h.log.Warn("pubsub subscription reset", slog.String("cause", cause.Error()))
	if h.afterDetach != nil {
		h.afterDetach()
	}
	h.loseAll(gen, join)
}

// loseAll ends the subscriptions made on the connection of generation gen,
// and closes its barrier state so that none joins it from now on.
func (h *Hub) loseAll(gen uint64, join *joining) {
	h.mu.Lock()
	defer h.mu.Unlock()
	join.closed = true
	join.waiting = nil
	for k, b := range h.barriers {
		if b.join == join {
			delete(h.barriers, k)
		}
	}
	for _, s := range h.subs {
		if s.gen == gen {
			s.end(Lost)
		}
	}
}

// read is the one goroutine that reads the shared subscription.
func (h *Hub) read(ps *redis.PubSub, join *joining, gen uint64, stopped chan struct{}) {
	defer close(stopped)
	ctx := context.Background()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				return
			}
			// The connection broke: go-redis re-subscribes on the next
			// Receive, but what was published meanwhile is gone.
			h.reset(ps, err)
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			h.route(m.Channel, m.Payload)
		case *redis.Pong:
			h.heard.Store(gen)
			h.barrier(ctx, join, m.Payload)
		}
	}
}

// barrier confirms the subscriptions of the ping answered with token and,
// when more were added meanwhile, writes the ping that covers them.
func (h *Hub) barrier(ctx context.Context, join *joining, token string) {
	h.mu.Lock()
	b := h.barriers[token]
	delete(h.barriers, token)
	var next *barrier
	var nextToken string
	if b != nil && b.join == join {
		join.flying = false
		nextToken, next = h.nextBarrier(join)
	}
	h.mu.Unlock()
	if b == nil {
		return // not a barrier of this hub's (or its connection was reset)
	}
	for _, s := range b.subs {
		s.active.Store(true)
		close(s.ready)
	}
	if next != nil {
		// The reader writes it: go-redis lets a ping be written while
		// no Receive is reading, and this one is small. A connection
		// that does not answer it is caught by its subscribers' timeouts.
		pctx, cancel := context.WithTimeout(ctx, h.barrierTimeout)
		h.ping(pctx, nextToken, next)
		cancel()
	}
}

func (h *Hub) route(channel, payload string) {
	h.received.Add(1)
	if channel == h.channels.Control && channel != "" {
		h.control(payload)
		return
	}
	kind, ok := h.channels.Kinds[channel]
	if !ok {
		return
	}
	m, err := Parse(kind, []byte(payload), h.now())
	if err != nil {
		h.malformed.Add(1)
		h.unreported.Add(1)
		h.log.Debug("dropped malformed message", slog.String("channel", channel), slog.String("reason", err.Error()))
		return
	}
	h.mu.RLock()
	r := h.routes[m.Device]
	var list []*Subscription
	if r != nil {
		if kind.Purpose == purpose.Alerts {
			list = r.alerts
		} else {
			list = r.data
		}
	}
	h.mu.RUnlock()
	for _, s := range list {
		if s.active.Load() {
			// Counted before the offer, so that a reader who has the
			// message also sees it in Stats (only this goroutine writes
			// the counter: the add is uncontended).
			h.deliveries.Add(1)
			s.queue.Offer(m)
		}
	}
}

// The verbs of the control channel: "<verb> <streamID>".
const (
	verbEvict = "evict" // a newer stream took its place
	verbClose = "close" // its client asked to end it
)

// Evict asks the process that serves stream id, whichever it is, to end it
// as superseded: its subscription ends with Evicted.
func (h *Hub) Evict(ctx context.Context, id string) error { return h.notify(ctx, verbEvict, id) }

// CloseStream asks the process that serves stream id, whichever it is, to
// end it for its client: its subscription ends with ClosedByClient.
func (h *Hub) CloseStream(ctx context.Context, id string) error {
	return h.notify(ctx, verbClose, id)
}

func (h *Hub) notify(ctx context.Context, verb, id string) error {
	if h.channels.Control == "" {
		return nil
	}
	return h.rdb.Publish(ctx, h.channels.Control, verb+" "+id).Err()
}

// control handles a notice of Evict or CloseStream, from any process
// (this one included). Anything else is ignored.
func (h *Hub) control(payload string) {
	verb, id, _ := strings.Cut(payload, " ")
	var e End
	switch verb {
	case verbEvict:
		e = Evicted
	case verbClose:
		e = ClosedByClient
	default:
		return
	}
	if id == "" {
		return
	}
	// The write lock, so that a Subscribe of id either is found here or
	// finds the notice remembered (notices are rare: one per eviction).
	h.mu.Lock()
	s := h.subs[id]
	found := s != nil && s.stream == id
	if !found && e == Evicted {
		h.evicted.add(id, h.now())
	}
	h.mu.Unlock()
	if found {
		s.end(e)
	}
}

// evictions remembers, for evictedFor, the eviction notices of streams the
// hub did not serve when they came. A connect admitted in Redis joins its
// hub a few milliseconds later; a newer connect that evicts it meanwhile
// publishes its notice before that, and Subscribe must still see it, so
// that the connect answers as superseded without reading its lease back.
// Every process receives every notice, so the memory is bounded: the
// oldest are forgotten past evictedMax (then the lease's mark still ends
// the stream at its first renewal, as when a notice is lost).
type evictions struct {
	at    map[string]time.Time
	order []string // ids in the order they came, oldest first
}

const (
	evictedFor = 10 * time.Second // well past a connect's Redis timeout (3 s)
	evictedMax = 4096             // about 400 evictions/s over the whole service
)

func (e *evictions) add(id string, now time.Time) {
	for len(e.order) > 0 && (len(e.order) >= evictedMax || now.Sub(e.at[e.order[0]]) > evictedFor) {
		delete(e.at, e.order[0])
		e.order = e.order[1:]
	}
	if _, ok := e.at[id]; ok {
		return // a repeated notice keeps its first time and place
	}
	e.at[id] = now
	e.order = append(e.order, id)
}

func (e *evictions) has(id string, now time.Time) bool {
	at, ok := e.at[id]
	return ok && now.Sub(at) <= evictedFor
}

// Close ends the shared subscription (tests, local server shutdown).
func (h *Hub) Close() {
	h.connMu.Lock()
	ps, stopped := h.ps, h.stopped
	h.ps = nil
	h.connMu.Unlock()
	if ps != nil {
		_ = ps.Close()
		<-stopped
	}
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
