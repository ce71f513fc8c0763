package stream

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// TestOpenersReuseAWaitingGoroutine: an admission runs on an opener that
// waits for one, so its grown stack is used again; while every opener is
// busy, run starts another at once instead of waiting.
func TestOpenersReuseAWaitingGoroutine(t *testing.T) {
	t.Parallel()
	o := newOpeners()
	first := make(chan uint64)
	o.run(func() { first <- goroutineID() })
	id := <-first

	// A send on work goes through only once the opener waits for work:
	// it has finished the first admission and takes the next.
	busy, release := make(chan uint64), make(chan struct{})
	select {
	case o.work <- func() { busy <- goroutineID(); <-release }:
	case <-time.After(10 * time.Second):
		t.Fatal("no opener waits for work after its admission")
	}
	if got := <-busy; got != id {
		t.Fatalf("the next admission ran on goroutine %d, not on the opener %d that waited", got, id)
	}

	// The only opener is busy: run must not wait for it.
	other := make(chan uint64)
	o.run(func() { other <- goroutineID() })
	if got := <-other; got == id {
		t.Fatal("an admission ran on the busy opener")
	}
	close(release)
}

// goroutineID reads the running goroutine's id from its stack trace
// ("goroutine 7 [running]:"), for tests only.
func goroutineID() uint64 {
	var buf [64]byte
	b := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
