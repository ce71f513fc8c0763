package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/redistest"
)

// TestHealth runs the real health bootstrap against the fake Runtime API,
// with a live Redis and with none.
func TestHealth(t *testing.T) {
	url := redistest.URL(t) // skip (or fail with REQUIRE_REDIS=1) before building
	bin := lambdatest.Build(t, ".")

	for _, tc := range []struct {
		name     string
		redisURL string
		status   int
		body     string
	}{
		{"redis up", url, 200, `{"malformedMessages":0,"redis":"up","status":"ok"}`},
		// Nothing listens there (redistest.DeadAddr): refused at once.
		{"redis down", "redis://" + redistest.DeadAddr(t) + "/0", 503, `{"redis":"down","status":"error"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := lambdatest.Start(t)
			lambdatest.Run(t, bin, rt, "REDIS_URL="+tc.redisURL)
			inv := rt.Invoke(lambdatest.Event(t, "health-request.json"), time.Now().Add(10*time.Second))
			p, body, err := inv.Response(lambdatest.Within(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if p.StatusCode != tc.status || string(bytes.TrimSpace(body)) != tc.body {
				t.Errorf("response = %d %s, want %d %s", p.StatusCode, body, tc.status, tc.body)
			}
			if p.Headers["Cache-Control"] != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", p.Headers["Cache-Control"])
			}
		})
	}

	t.Run("payload fits the BUFFERED function URL", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		lambdatest.Run(t, bin, rt, "REDIS_URL="+url)
		res, err := rt.Invoke(lambdatest.Event(t, "health-request.json"), time.Now().Add(10*time.Second)).Wait(lambdatest.Within(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Buffered(); err != nil {
			t.Fatalf("a BUFFERED URL cannot read this payload (Content-Type %q): %v", res.Header.Get("Content-Type"), err)
		}
	})
}
