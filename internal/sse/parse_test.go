package sse_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// parsedEvent is one event as a browser's EventSource dispatches it.
type parsedEvent struct {
	id    string // the event source's last event ID string at dispatch
	name  string // event type; "message" when the stream sent none
	data  string
	retry int64 // reconnection time in ms at dispatch; -1 if never set
}

// streamParser follows the WHATWG HTML "event stream interpretation"
// algorithm (section 9.2.6), including the dispatch steps for web browsers.
type streamParser struct {
	data      strings.Builder // data buffer
	eventType string          // event type buffer
	idBuffer  string          // last event ID buffer
	lastID    string          // the event source's last event ID string
	retry     int64

	events []parsedEvent
	fields []string // names of all field lines processed, for the tests
	blanks int      // blank lines seen (dispatch attempts), for the tests
}

// parseStream parses a complete stream. As at the end of a real stream,
// a final line without its line ending and an event without its blank line
// are discarded.
func parseStream(b []byte) []parsedEvent {
	p := streamParser{retry: -1}
	p.feed(b)
	return p.events
}

func (p *streamParser) feed(b []byte) {
	// The stream is decoded as UTF-8 (invalid bytes become U+FFFD), and one
	// leading BOM is ignored.
	s := strings.TrimPrefix(decodeUTF8(string(b)), "\uFEFF")
	for {
		// Lines end with CRLF, a lone LF or a lone CR.
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return
		}
		line := s[:i]
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
		p.line(line)
	}
}

func (p *streamParser) line(line string) {
	switch {
	case line == "":
		p.blanks++
		p.dispatch()
		return
	case line[0] == ':':
		return // comment
	}
	field, value, found := strings.Cut(line, ":")
	if found {
		value = strings.TrimPrefix(value, " ") // at most one space
	} // else the whole line is the field name and the value is ""
	p.fields = append(p.fields, field)
	switch field {
	case "event":
		p.eventType = value
	case "data":
		p.data.WriteString(value)
		p.data.WriteByte('\n')
	case "id":
		if !strings.ContainsRune(value, 0) {
			p.idBuffer = value
		}
	case "retry":
		if value != "" && strings.Trim(value, "0123456789") == "" {
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				p.retry = n
			}
		}
	default:
		// ignored
	}
}

func (p *streamParser) dispatch() {
	p.lastID = p.idBuffer // the buffer itself is not reset
	if p.data.Len() == 0 {
		p.eventType = ""
		return
	}
	data := strings.TrimSuffix(p.data.String(), "\n")
	name := p.eventType
	if name == "" {
		name = "message"
	}
	p.events = append(p.events, parsedEvent{id: p.lastID, name: name, data: data, retry: p.retry})
	p.data.Reset()
	p.eventType = ""
}

// decodeUTF8 is the Encoding Standard's UTF-8 decoder (without BOM
// handling): each maximal invalid subpart becomes one U+FFFD. Valid UTF-8
// comes back unchanged.
func decodeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if needed == 0 {
			switch {
			case b <= 0x7F:
				out = append(out, b)
			case 0xC2 <= b && b <= 0xDF:
				needed, cp = 1, rune(b&0x1F)
			case 0xE0 <= b && b <= 0xEF:
				if b == 0xE0 {
					lower = 0xA0
				} else if b == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(b&0x0F)
			case 0xF0 <= b && b <= 0xF4:
				if b == 0xF0 {
					lower = 0x90
				} else if b == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(b&0x07)
			default:
				out = utf8.AppendRune(out, utf8.RuneError)
			}
			continue
		}
		if b < lower || b > upper {
			cp, needed, seen = 0, 0, 0
			lower, upper = 0x80, 0xBF
			i-- // the byte is processed again
			out = utf8.AppendRune(out, utf8.RuneError)
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(b&0x3F)
		seen++
		if seen == needed {
			out = utf8.AppendRune(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return string(out)
}

// TestParseStream checks the test parser itself against the examples of the
// WHATWG spec and the edge cases the fuzzers rely on.
func TestParseStream(t *testing.T) {
	t.Parallel()
	ev := func(id, name, data string, retry int64) parsedEvent {
		return parsedEvent{id: id, name: name, data: data, retry: retry}
	}
	tests := []struct {
		name string
		in   string
		want []parsedEvent
	}{
		{"spec stock example", "data: YHOO\ndata: +2\ndata: 10\n\n",
			[]parsedEvent{ev("", "message", "YHOO\n+2\n10", -1)}},
		{"spec ids and comment", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			[]parsedEvent{
				ev("1", "message", "first event", -1),
				ev("", "message", "second event", -1),
				ev("", "message", " third event", -1),
			}},
		{"spec empty data and unterminated", "data\n\ndata\ndata\n\ndata:",
			[]parsedEvent{ev("", "message", "", -1), ev("", "message", "\n", -1)}},
		{"spec one space stripped", "data:test\n\ndata: test\n\n",
			[]parsedEvent{ev("", "message", "test", -1), ev("", "message", "test", -1)}},
		{"CRLF and lone CR", "event: a\r\ndata: 1\r\rdata: 2\r\n\r\n",
			[]parsedEvent{ev("", "a", "1", -1), ev("", "message", "2", -1)}},
		{"no data: no dispatch, type reset", "event: a\n\ndata: x\n\n",
			[]parsedEvent{ev("", "message", "x", -1)}},
		{"id kept across events", "id: 7\ndata: a\n\ndata: b\n\n",
			[]parsedEvent{ev("7", "message", "a", -1), ev("7", "message", "b", -1)}},
		{"id set by event without data", "id: 7\n\ndata: b\n\n",
			[]parsedEvent{ev("7", "message", "b", -1)}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
			[]parsedEvent{ev("1", "message", "a", -1), ev("1", "message", "b", -1)}},
		{"retry digits only", "retry: 1500\ndata: a\n\nretry: 1.5\nretry: x\nretry:\nretry: -1\ndata: b\n\n",
			[]parsedEvent{ev("", "message", "a", 1500), ev("", "message", "b", 1500)}},
		{"unknown field ignored", "foo: bar\ndata: a\n\n",
			[]parsedEvent{ev("", "message", "a", -1)}},
		{"value keeps second colon", "data: a: b\n\n",
			[]parsedEvent{ev("", "message", "a: b", -1)}},
		{"leading BOM ignored once", "\uFEFFdata: a\n\n",
			[]parsedEvent{ev("", "message", "a", -1)}},
		{"invalid UTF-8 replaced", "data: a\xE2\x82b\xFF\n\n",
			[]parsedEvent{ev("", "message", "a\uFFFDb\uFFFD", -1)}},
		{"unterminated event discarded", "data: a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseStream([]byte(tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("parseStream(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
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
		if got := decodeUTF8(tt.in); got != tt.want {
			t.Errorf("decodeUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
