// Package logtest collects a service's JSON log (log/slog's JSONHandler)
// in tests and finds lines by message.
//
// Invariant: a Log is safe for concurrent writers and readers, so a test
// may read it while the service still writes.
package logtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// Log is a log sink; the zero value is ready.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns the lines whose "msg" is msg, decoded, in order.
func (l *Log) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}
