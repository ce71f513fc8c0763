package stream

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
)

// stallWriter is a client that takes the first write and then stops
// reading: every later Write blocks until release is closed.
type stallWriter struct {
	header  http.Header
	mu      sync.Mutex
	out     bytes.Buffer
	writes  int
	stalled chan struct{} // closed when a Write starts blocking
	release chan struct{}
	once    sync.Once
}

func (w *stallWriter) Header() http.Header { return w.header }
func (w *stallWriter) WriteHeader(int)     {}
func (w *stallWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n > 1 {
		w.once.Do(func() { close(w.stalled) })
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

func (w *stallWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// TestSlowReaderStaysBounded: a client that stops reading while alerts
// keep coming costs the server at most its queue: the rest is refused and
// counted, and the stream ends with retry so that the client's resume
// replays what it missed. Nothing is dropped silently.
func TestSlowReaderStaysBounded(t *testing.T) {
	t.Parallel()
	const queue, burst = 8, 100
	u := newUnit(t, queue)
	rdb, keys, hub := u.rdb, u.keys, u.hub
	w := &stallWriter{header: http.Header{}, stalled: make(chan struct{}), release: make(chan struct{})}
	done := u.serve(w, u.ticket("1", "C01"))
	deadline := time.After(5 * time.Second)
	w.wait(t, `"connected"`, deadline)
	for i := 1; i <= burst; i++ {
		if err := rdb.Publish(t.Context(), keys.Channel(channel.Alert), fmt.Sprintf(`{"deviceId":"C01","alert":{"n":%d}}`, i)).Err(); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			select { // the first alert is being written: the client has stalled
			case <-w.stalled:
			case <-deadline:
				t.Fatal("no stalled write")
			}
		}
	}
	for hub.Stats().Deliveries < burst { // every alert reached the stream's queue (or was refused there)
		select {
		case <-deadline:
			t.Fatalf("routed %d of %d", hub.Stats().Deliveries, burst)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(w.release)
	select {
	case <-done:
	case <-deadline:
		t.Fatal("stream did not end")
	}
	out := w.String()
	if n := strings.Count(out, "event: machine-alert"); n != 1+queue {
		t.Fatalf("%d alerts written, want the one in flight plus the queue's %d", n, queue)
	}
	if !strings.HasSuffix(out, "\n\n") || !strings.Contains(out[strings.LastIndex(out, "retry:"):], `"kind":"reconnect"`) {
		t.Fatalf("stream did not end with retry and reconnect:\n%s", out[max(0, len(out)-300):])
	}
	want := fmt.Sprintf(`"reason":"overflow","events":%d,"dropped":%d`, 1+1+queue+1, burst-1-queue)
	if !strings.Contains(u.logs.String(), want) {
		t.Fatalf("log does not count the drops (%s):\n%s", want, u.logs.String())
	}
}
