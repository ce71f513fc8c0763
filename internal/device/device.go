// Package device validates and normalizes device ids taken from browsers
// and from Redis.
//
// A valid id is 1-64 bytes of letters, digits, space and "_.:-", with no
// leading or trailing space: safe inside Redis key patterns, JSON and logs.
package device

import (
	"errors"
	"strings"
)

// MaxLen is the longest device id accepted.
const MaxLen = 64

var (
	ErrNone     = errors.New("device: no device id")
	ErrInvalid  = errors.New("device: invalid device id")
	ErrTooMany  = errors.New("device: too many device ids")
	ErrConflict = errors.New("device: give deviceId or deviceIds, not both")
)

// Valid reports whether id is a well-formed device id.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLen || id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ' ', c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ParseQuery turns the deviceId and deviceIds query values into a list of
// 1..max distinct valid ids, trimmed, in the order given. At most one of the
// two parameters may be used.
func ParseQuery(single, csv string, max int) ([]string, error) {
	single, csv = strings.TrimSpace(single), strings.TrimSpace(csv)
	var raw []string
	switch {
	case single != "" && csv != "":
		return nil, ErrConflict
	case single != "":
		raw = []string{single}
	case csv != "":
		raw = strings.Split(csv, ",")
	default:
		return nil, ErrNone
	}
	out := make([]string, 0, len(raw))
	seen := make(map[string]struct{}, len(raw))
	for _, id := range raw {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !Valid(id) {
			return nil, ErrInvalid
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
		if len(out) > max {
			return nil, ErrTooMany
		}
	}
	if len(out) == 0 {
		return nil, ErrNone
	}
	return out, nil
}
