package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TestLoggerAddsTheRequestID: a line logged with an invocation's context
// carries its request id, through With and groups too, as
// lambdacontext.NewLogger's do; a line without one has none.
func TestLoggerAddsTheRequestID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo).With(slog.String("purpose", "alerts"))
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	log.InfoContext(ctx, "stream open")
	log.WithGroup("g").InfoContext(ctx, "grouped")
	log.Info("no invocation")
	log.DebugContext(ctx, "below the level")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	var first, grouped, plain map[string]any
	for i, m := range []*map[string]any{&first, &grouped, &plain} {
		if err := json.Unmarshal([]byte(lines[i]), m); err != nil {
			t.Fatal(err)
		}
	}
	if first["requestId"] != "req-1" || first["purpose"] != "alerts" || first["msg"] != "stream open" {
		t.Errorf("invocation line: %v", first)
	}
	if g, _ := grouped["g"].(map[string]any); g["requestId"] != "req-1" {
		t.Errorf("grouped line: %v", grouped)
	}
	if _, ok := plain["requestId"]; ok {
		t.Errorf("line without an invocation: %v", plain)
	}
}
