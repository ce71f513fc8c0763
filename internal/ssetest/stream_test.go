package ssetest

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"
)

// TestStreamIsBounded: a stream that stays open makes every wait end with
// an error instead of blocking, and its events arrive as they are written.
func TestStreamIsBounded(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	s := Read(t, pr)
	if _, err := pw.Write([]byte("retry: 2000\r\nid: 1\r\nevent: system\r\ndata: {\"kind\":\"heartbeat\"}\r")); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write([]byte("\n\r\ndata: a\ndata: b\n\n")); err != nil {
		t.Fatal(err)
	}
	if ev := s.Next(t); ev != (Event{ID: "1", Name: "message", Data: "a\nb", Retry: 2000}) {
		t.Fatalf("Next skipped the heartbeat to %+v", ev)
	}
	if r := s.Retry(); r != 2000 {
		t.Fatalf("Retry = %d", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.NextCtx(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextCtx on an open, silent stream: %v", err)
	}
	if err := s.EndedCtx(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("EndedCtx on an open stream: %v", err)
	}
	// The end of the stream discards a partial event.
	if _, err := pw.Write([]byte("data: c\n\ndata: partial\n")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if got := s.Rest(t); !slices.Equal(got, []Event{{ID: "1", Name: "message", Data: "c", Retry: 2000}}) {
		t.Fatalf("Rest = %+v", got)
	}
	if _, err := s.NextCtx(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("NextCtx after the end: %v", err)
	}
}
