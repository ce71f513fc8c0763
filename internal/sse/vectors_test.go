package sse_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/ssetest"
)

// TestGoldenEvents keeps testdata/events.json, the events a browser
// dispatches for each golden file (as the reference parser, internal/ssetest,
// reads them), in step with the golden files. The browser client's parser
// (internal/jsclient) is tested against the same file, so the encoder, the
// reference parser and the client agree on one set of wire vectors.
func TestGoldenEvents(t *testing.T) {
	t.Parallel()
	type vector struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Data  string `json:"data"`
		Retry int64  `json:"retry"` // -1: never set
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v %v", files, err)
	}
	sort.Strings(files)
	got := map[string][]vector{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		evs := []vector{}
		for _, ev := range ssetest.Parse(b) {
			evs = append(evs, vector{ev.ID, ev.Name, ev.Data, ev.Retry})
		}
		got[strings.TrimSuffix(filepath.Base(f), ".golden")] = evs
	}
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	path := filepath.Join("testdata", "events.json")
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s is out of date with the golden files (run go test ./internal/sse -run TestGoldenEvents -update)\n got %s", path, out)
	}
}
