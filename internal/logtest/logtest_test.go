package logtest

import (
	"log/slog"
	"sync"
	"testing"
)

func TestLinesWhileWriting(t *testing.T) {
	t.Parallel()
	var l Log
	log := slog.New(slog.NewJSONHandler(&l, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("stream end", "i", i)
			log.Info("other")
			_ = l.Lines("stream end") // read while others write
		}()
	}
	wg.Wait()
	if got := l.Lines("stream end"); len(got) != 8 || got[0]["level"] != "INFO" {
		t.Fatalf("Lines = %v", got)
	}
	if got := l.Lines("stream"); len(got) != 0 {
		t.Fatalf("Lines matched a prefix: %v", got)
	}
}
