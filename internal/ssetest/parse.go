// Package ssetest reads text/event-stream responses in tests as a browser's
// EventSource does, so a test sees exactly the events a browser would.
//
// The parser follows the WHATWG HTML "event stream interpretation"
// algorithm (section 9.2.6) with the dispatch steps for web browsers: lines
// end with CRLF, LF or CR; one leading BOM is ignored; comments are
// skipped; data lines are joined with LF; an id containing NUL is ignored;
// retry takes ASCII digits only; an event without data is not dispatched;
// at the end of the stream a partial line or event is discarded.
//
// Every wait of a Stream is bounded (Stream.Wait, or the caller's
// context), so a stream that a test did not expect to stay open makes the
// test fail instead of hang.
package ssetest

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Event is one event as a browser's EventSource dispatches it.
type Event struct {
	ID    string // the event source's last event ID string at dispatch
	Name  string // event type; "message" when the stream sent none
	Data  string
	Retry int64 // reconnection time in ms at dispatch; -1 if never set
}

// Parser is the incremental stream parser. The zero value is ready; feed it
// the stream's bytes in any chunks.
type Parser struct {
	// Trace, when set before the first Feed, records every field line's
	// name in Fields (for tests of an encoder's exact output).
	Trace  bool
	Fields []string
	// Blanks counts blank lines (dispatch attempts).
	Blanks int

	data      strings.Builder // data buffer
	eventType string          // event type buffer
	idBuffer  string          // last event ID buffer
	retry     int64
	retrySet  bool

	started   bool   // the BOM check is done
	pendingCR bool   // the last byte fed was a CR: an LF next completes it
	partial   []byte // bytes after the last line ending
}

// Parse parses a complete stream: a final line without its line ending and
// an event without its blank line are discarded, as at the end of a real
// stream.
func Parse(b []byte) []Event {
	var p Parser
	return p.Feed(b)
}

// Retry is the reconnection time in ms set so far, -1 if none.
func (p *Parser) Retry() int64 {
	if !p.retrySet {
		return -1
	}
	return p.retry
}

// Feed parses the next bytes of the stream and returns the events they
// complete.
func (p *Parser) Feed(b []byte) []Event {
	var out []Event
	for len(b) > 0 {
		if p.pendingCR {
			p.pendingCR = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := indexEOL(b)
		if i < 0 {
			p.partial = append(p.partial, b...)
			break
		}
		line := b[:i]
		if len(p.partial) > 0 {
			line = append(p.partial, line...)
			p.partial = p.partial[:0]
		}
		if b[i] == '\r' {
			if i+1 < len(b) {
				if b[i+1] == '\n' {
					i++
				}
			} else {
				p.pendingCR = true
			}
		}
		b = b[i+1:]
		if ev, ok := p.line(p.decode(line)); ok {
			out = append(out, ev)
		}
	}
	return out
}

func indexEOL(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}

// decode turns one line into text: the stream is UTF-8 with one leading BOM
// ignored. CR and LF never occur inside a UTF-8 sequence, so decoding line
// by line is decoding the stream.
func (p *Parser) decode(line []byte) string {
	s := DecodeUTF8(string(line))
	if !p.started {
		p.started = true
		s = strings.TrimPrefix(s, "\uFEFF")
	}
	return s
}

func (p *Parser) line(line string) (Event, bool) {
	switch {
	case line == "":
		p.Blanks++
		return p.dispatch()
	case line[0] == ':':
		return Event{}, false // comment
	}
	field, value, found := strings.Cut(line, ":")
	if found {
		value = strings.TrimPrefix(value, " ") // at most one space
	} // else the whole line is the field name and the value is ""
	if p.Trace {
		p.Fields = append(p.Fields, field)
	}
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
				p.retry, p.retrySet = n, true
			}
		}
	default:
		// ignored
	}
	return Event{}, false
}

func (p *Parser) dispatch() (Event, bool) {
	lastID := p.idBuffer // the buffer itself is not reset
	if p.data.Len() == 0 {
		p.eventType = ""
		return Event{}, false
	}
	data := strings.TrimSuffix(p.data.String(), "\n")
	name := p.eventType
	if name == "" {
		name = "message"
	}
	p.data.Reset()
	p.eventType = ""
	return Event{ID: lastID, Name: name, Data: data, Retry: p.Retry()}, true
}

// DecodeUTF8 is the Encoding Standard's UTF-8 decoder (without BOM
// handling): each maximal invalid subpart becomes one U+FFFD. Valid UTF-8
// comes back unchanged.
func DecodeUTF8(s string) string {
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
				needed, cp = 2, rune(b&0x0F)
			case 0xF0 <= b && b <= 0xF4:
				needed, cp = 3, rune(b&0x07)
			default:
				out = utf8.AppendRune(out, utf8.RuneError)
			}
			// These lead bytes narrow the next byte's range (no overlong
			// forms, no surrogates, nothing past U+10FFFF).
			switch b {
			case 0xE0:
				lower = 0xA0
			case 0xED:
				upper = 0x9F
			case 0xF0:
				lower = 0x90
			case 0xF4:
				upper = 0x8F
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
