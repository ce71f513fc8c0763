package pubsub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Queue is one stream's buffer between the hub and the stream's writer.
//
// Bounds: realtime updates are coalesced per device (the newest replaces
// the pending one), so they take at most one slot per device; every other
// kind goes through a FIFO of at most Cap messages. When the FIFO is full
// the queue is marked overflowed and takes no more: the stream must end so
// that the client's resume replays what it missed. Nothing is dropped
// silently: Stats counts what was refused and what was coalesced.
//
// A queue belongs to one Subscription, which Hub.Subscribe builds. Offer
// never blocks; it is called by the hub's reader goroutine.
type Queue struct {
	capacity int
	interval time.Duration // realtime throttle per device

	mu         sync.Mutex
	fifo       []*Message
	realtime   map[string]*Message  // pending newest value per device
	lastSent   map[string]time.Time // last realtime delivery per device
	overflowed bool
	dropped    int
	coalesced  int
	notify     chan struct{}
	// held: Offer queues without signalling Ready (Subscription.Hold).
	held atomic.Bool
}

// newQueue returns a queue holding at most capacity non-realtime messages,
// delivering realtime updates at most once per interval per device.
func newQueue(capacity int, interval time.Duration) *Queue {
	return &Queue{
		capacity: capacity,
		interval: interval,
		realtime: make(map[string]*Message),
		lastSent: make(map[string]time.Time),
		notify:   make(chan struct{}, 1),
	}
}

// Offer adds m without blocking and wakes the writer, unless it is held.
func (q *Queue) Offer(m *Message) {
	q.mu.Lock()
	switch {
	case q.overflowed:
		q.dropped++
	case m.Kind.Coalesced:
		if _, pending := q.realtime[m.Device]; pending {
			q.coalesced++
		}
		q.realtime[m.Device] = m
	case len(q.fifo) >= q.capacity:
		q.overflowed = true
		q.dropped++
	default:
		q.fifo = append(q.fifo, m)
	}
	q.mu.Unlock()
	// After the message is queued: a release that clears held after this
	// load wakes the writer, whose Drain then finds it.
	if !q.held.Load() {
		q.wake()
	}
}

// wake signals Ready without blocking.
func (q *Queue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Ready is signalled (capacity 1, so it coalesces) after every Offer not
// held and every wake.
func (q *Queue) Ready() <-chan struct{} { return q.notify }

// Drain appends to dst every queued message that may be sent at now: the
// whole FIFO, and each device's pending realtime update whose throttle
// interval has passed. next is the earliest time a held-back realtime
// update becomes due (zero if none is held). overflowed reports that
// messages were refused: the caller must end the stream after sending dst.
func (q *Queue) Drain(now time.Time, dst []*Message) (out []*Message, next time.Time, overflowed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.fifo...)
	clear(q.fifo)
	q.fifo = q.fifo[:0]
	for dev, m := range q.realtime {
		due := q.lastSent[dev].Add(q.interval)
		if now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		dst = append(dst, m)
		q.lastSent[dev] = now
		delete(q.realtime, dev)
	}
	return dst, next, q.overflowed
}

// Stats returns how many messages were refused after an overflow and how
// many realtime updates were replaced by a newer one.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{Dropped: q.dropped, Coalesced: q.coalesced}
}
