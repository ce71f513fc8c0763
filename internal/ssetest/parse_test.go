package ssetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseStream checks the parser against the examples of the WHATWG
// spec and the edge cases internal/sse's fuzzers rely on. Each input is
// also fed in every split into two chunks and byte by byte, as a network
// delivers it.
func TestParseStream(t *testing.T) {
	t.Parallel()
	ev := func(id, name, data string, retry int64) Event {
		return Event{ID: id, Name: name, Data: data, Retry: retry}
	}
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{"spec stock example", "data: YHOO\ndata: +2\ndata: 10\n\n",
			[]Event{ev("", "message", "YHOO\n+2\n10", -1)}},
		{"spec ids and comment", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			[]Event{
				ev("1", "message", "first event", -1),
				ev("", "message", "second event", -1),
				ev("", "message", " third event", -1),
			}},
		{"spec empty data and unterminated", "data\n\ndata\ndata\n\ndata:",
			[]Event{ev("", "message", "", -1), ev("", "message", "\n", -1)}},
		{"spec one space stripped", "data:test\n\ndata: test\n\n",
			[]Event{ev("", "message", "test", -1), ev("", "message", "test", -1)}},
		{"CRLF and lone CR", "event: a\r\ndata: 1\r\rdata: 2\r\n\r\n",
			[]Event{ev("", "a", "1", -1), ev("", "message", "2", -1)}},
		{"no data: no dispatch, type reset", "event: a\n\ndata: x\n\n",
			[]Event{ev("", "message", "x", -1)}},
		{"id kept across events", "id: 7\ndata: a\n\ndata: b\n\n",
			[]Event{ev("7", "message", "a", -1), ev("7", "message", "b", -1)}},
		{"id set by event without data", "id: 7\n\ndata: b\n\n",
			[]Event{ev("7", "message", "b", -1)}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
			[]Event{ev("1", "message", "a", -1), ev("1", "message", "b", -1)}},
		{"retry digits only", "retry: 1500\ndata: a\n\nretry: 1.5\nretry: x\nretry:\nretry: -1\ndata: b\n\n",
			[]Event{ev("", "message", "a", 1500), ev("", "message", "b", 1500)}},
		{"unknown field ignored", "foo: bar\ndata: a\n\n",
			[]Event{ev("", "message", "a", -1)}},
		{"value keeps second colon", "data: a: b\n\n",
			[]Event{ev("", "message", "a: b", -1)}},
		{"leading BOM ignored once", "\uFEFFdata: a\n\n",
			[]Event{ev("", "message", "a", -1)}},
		{"invalid UTF-8 replaced", "data: a\xE2\x82b\xFF\n\n",
			[]Event{ev("", "message", "a\uFFFDb\uFFFD", -1)}},
		{"unterminated event discarded", "data: a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Parse([]byte(tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
			checkChunked(t, []byte(tt.in), tt.want)
		})
	}
}

func TestDecodeUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"héllo €𝄞", "héllo €𝄞"},
		{"\xFF", "\uFFFD"},
		{"\xE2\x82", "\uFFFD"},                 // one maximal subpart
		{"\xE2\x82A", "\uFFFDA"},               // the ASCII byte is kept
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: A0 is out of range after ED
		{"\xF0\x80", "\uFFFD\uFFFD"},           // overlong
		{"\xC0\xAF", "\uFFFD\uFFFD"},
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		if got := DecodeUTF8(tt.in); got != tt.want {
			t.Errorf("DecodeUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// checkChunked feeds b in every split into two chunks and byte by byte:
// the events must not depend on where the network cut the stream.
func checkChunked(t *testing.T, b []byte, want []Event) {
	t.Helper()
	for i := range len(b) + 1 {
		var p Parser
		got := append(p.Feed(b[:i]), p.Feed(b[i:])...)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("split at %d of %q:\n got %+v\nwant %+v", i, b, got, want)
		}
	}
	var p Parser
	var got []Event
	for i := range b {
		got = append(got, p.Feed(b[i:i+1])...)
	}
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("byte by byte %q:\n got %+v\nwant %+v", b, got, want)
	}
}

// TestGoldenVectors parses the encoder's golden wire files
// (internal/sse/testdata, shared with the browser client) whole and in
// chunks, and compares with the events recorded for them in events.json.
func TestGoldenVectors(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "sse", "testdata")
	raw, err := os.ReadFile(filepath.Join(dir, "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors map[string][]struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Data  string `json:"data"`
		Retry int64  `json:"retry"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("events.json has no vectors")
	}
	for name, evs := range vectors {
		b, err := os.ReadFile(filepath.Join(dir, name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		var want []Event
		for _, v := range evs {
			want = append(want, Event{ID: v.ID, Name: v.Type, Data: v.Data, Retry: v.Retry})
		}
		if got := Parse(b); !slices.Equal(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
		checkChunked(t, b, want)
		// The same stream with CRLF and with lone CR line endings.
		for _, eol := range []string{"\r\n", "\r"} {
			alt := []byte(strings.ReplaceAll(string(b), "\n", eol))
			if got := Parse(alt); !slices.Equal(got, want) {
				t.Errorf("%s with %q: got %+v, want %+v", name, eol, got, want)
			}
		}
	}
}
