package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/redistest"
)

// TestCommandLine runs the built local server as a developer would, and
// checks what its terminal shows: help, flag errors by flag, the config
// problems all at once, and a dead REDIS_URL as one line (no go-redis
// chatter before it).
func TestCommandLine(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	dead := redistest.DeadAddr(t)

	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		code  int
		want  []string
		lines int // exact number of output lines; 0: any
	}{
		{"help", []string{"-h"}, nil, 0, []string{"-addr", "-alarm-every", "REDIS_URL", "STREAM_TICKET_SECRET", "CORS_ALLOWED_ORIGINS"}, 0},
		{"flag out of range", []string{"-max-stream", "2s", "-alert-every", "-5s"}, nil, 2, []string{"-max-stream: 2s", "-alert-every: -5s"}, 2},
		{"config problems at once", []string{"-addr", "127.0.0.1:0"}, []string{"HEARTBEAT_INTERVAL=abc", "STREAM_TICKET_SECRET=short"}, 1,
			[]string{"HEARTBEAT_INTERVAL", "STREAM_TICKET_SECRET: must be at least"}, 3},
		{"redis unreachable", []string{"-addr", "127.0.0.1:0"}, []string{"REDIS_URL=redis://" + dead}, 1, []string{"REDIS_URL", dead, "unreachable"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			code := 0
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			text := string(out)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			if n := bytes.Count(bytes.TrimRight(out, "\n"), []byte("\n")) + 1; tc.lines > 0 && n != tc.lines {
				t.Errorf("%d lines of output, want %d:\n%s", n, tc.lines, text)
			}
		})
	}
}
