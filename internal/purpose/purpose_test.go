package purpose

import "testing"

// Moved from internal/ticket (TestPurpose) with its cases; Parse now says
// ok where ticket.ParsePurpose returned ErrBadPurpose.
func TestPurpose(t *testing.T) {
	t.Parallel()
	parse := []struct {
		in      string
		want    Purpose
		wantErr bool
	}{
		{"", Any, false},
		{"alerts", Alerts, false},
		{"data", Data, false},
		{"any", "", true},
		{"Alerts", "", true},
		{"both", "", true},
		{" data", "", true},
	}
	for _, tt := range parse {
		got, ok := Parse(tt.in)
		if tt.wantErr != !ok || got != tt.want {
			t.Errorf("Parse(%q) = %q, %v", tt.in, got, ok)
		}
	}

	names := map[Purpose]string{Any: "any", Alerts: "alerts", Data: "data"}
	for p, want := range names {
		if got := p.Name(); got != want {
			t.Errorf("%q.Name() = %q, want %q", string(p), got, want)
		}
	}

	allows := []struct {
		ticket, want Purpose
		ok           bool
	}{
		{Any, Alerts, true},
		{Any, Data, true},
		{Alerts, Alerts, true},
		{Alerts, Data, false},
		{Data, Data, true},
		{Data, Alerts, false},
		{Any, Any, false},
		{Alerts, Any, false},
		{Any, Purpose("other"), false},
		{Purpose("other"), Purpose("other"), false},
	}
	for _, tt := range allows {
		if got := tt.ticket.Allows(tt.want); got != tt.ok {
			t.Errorf("%s.Allows(%s) = %v, want %v", tt.ticket.Name(), tt.want.Name(), got, tt.ok)
		}
	}

	for _, p := range Streams() {
		if !p.Stream() || p.Other() == p || !p.Other().Stream() || p.Other().Other() != p {
			t.Errorf("%s: Stream %v, Other %q", p, p.Stream(), p.Other())
		}
	}
	if Any.Stream() {
		t.Error("Any is a stream purpose")
	}
}
