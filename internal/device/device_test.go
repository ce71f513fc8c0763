package device

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		single, csv string
		want        string
		err         error
	}{
		{"C02", "", "[C02]", nil},
		{" Machine 1 ", "", "[Machine 1]", nil},
		{"", "C02,C03, C04 ", "[C02 C03 C04]", nil},
		{"", "C02,C02,,C03", "[C02 C03]", nil},
		{"", "", "", ErrNone},
		{"", " , ", "", ErrNone},
		{"C02", "C03", "", ErrConflict},
		{"C0\n2", "", "", ErrInvalid},
		{"", "C02,a/b", "", ErrInvalid},
		{strings.Repeat("x", 65), "", "", ErrInvalid},
		{"", "a,b,c,d", "", ErrTooMany},
		{"", "a,b,c,a", "[a b c]", nil},
		{"x{userId}", "", "", ErrInvalid},
		{"é", "", "", ErrInvalid},
	} {
		got, err := ParseQuery(tc.single, tc.csv, 3)
		if !errors.Is(err, tc.err) || (err == nil && fmt.Sprint(got) != tc.want) {
			t.Errorf("ParseQuery(%q, %q) = %v, %v; want %s, %v", tc.single, tc.csv, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	f.Add("C02", "")
	f.Add("", "C02,C03")
	f.Fuzz(func(t *testing.T, single, csv string) {
		ids, err := ParseQuery(single, csv, 10)
		if err != nil {
			return
		}
		if len(ids) == 0 || len(ids) > 10 {
			t.Fatalf("%d ids", len(ids))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !Valid(id) || seen[id] {
				t.Fatalf("bad or duplicate id %q", id)
			}
			seen[id] = true
		}
	})
}
