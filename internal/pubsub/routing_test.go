package pubsub

import (
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/purpose"
)

// The device is read from the exact top-level "deviceId" member, as the
// browser reads it; a message where that is ambiguous is malformed.
func TestParseReadsTheExactDeviceIDMember(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, device string
	}{
		{"case variants are other members", `{"deviceId":"C04","DeviceId":"C01","DEVICEID":"C02","deviceid":"C03"}`, "C04"},
		{"case variant first", `{"DeviceId":"C01","deviceId":"C04"}`, "C04"},
		{"escaped name is the same name", `{"device\u0049d":"C04"}`, "C04"},
		{"nested deviceId is data", `{"data":{"deviceId":"C01"},"deviceId":"C04"}`, "C04"},
		{"nested duplicates are data", `{"deviceId":"C04","data":{"a":1,"a":2}}`, "C04"},
		{"only a case variant", `{"DeviceId":"C01"}`, ""},
		{"twice", `{"deviceId":"C04","deviceId":"C01"}`, ""},
		{"twice, once escaped", `{"deviceId":"C04","device\u0049d":"C01"}`, ""},
		{"timestamp twice", `{"deviceId":"C04","timestamp":"2026-01-01T00:00:00Z","timestamp":"2099-01-01T00:00:00Z"}`, ""},
		{"null device", `{"deviceId":null}`, ""},
		{"object device", `{"deviceId":{"id":"C04"}}`, ""},
		{"two objects", `{"deviceId":"C04"}{"deviceId":"C01"}`, ""},
	} {
		m, err := Parse(channel.Alert, []byte(tc.in), t0)
		switch {
		case tc.device == "" && err != ErrMalformed:
			t.Errorf("%s: err %v, want malformed", tc.name, err)
		case tc.device != "" && err != nil:
			t.Errorf("%s: err %v, want device %s", tc.name, err, tc.device)
		case tc.device != "" && m.Device != tc.device:
			t.Errorf("%s: device %s, want %s", tc.name, m.Device, tc.device)
		}
	}
	// "Timestamp" is not "timestamp": the one the browser reads is added.
	m, err := Parse(channel.Alert, []byte(`{"deviceId":"C04","Timestamp":"2099-01-01T00:00:00Z"}`), t0)
	if err != nil || !m.Stamp.IsZero() || !strings.HasSuffix(string(m.Data), `"timestamp":"2026-01-27T12:34:56.789Z"}`) {
		t.Fatalf("%v %s %v", err, m.Data, m.Stamp)
	}
}

// Against real Redis: a payload whose case-variant key names another
// device reaches the owner of the exact deviceId only; an ambiguous one
// reaches nobody and is counted.
func TestHubRoutesByTheExactDeviceIDKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c01 := f.sub(t, "", Filter{Devices: []string{"C01"}, Purpose: purpose.Alerts})
	c04 := f.sub(t, "", Filter{Devices: []string{"C04"}, Purpose: purpose.Alerts})
	f.pub("alerts", `{"deviceId":"C04","DeviceId":"C01","alert":"mixed case"}`)
	f.pub("alerts", `{"deviceId":"C04","deviceId":"C01","alert":"duplicate"}`)
	f.pub("alerts", `{"deviceId":"C01","alert":"marker"}`)
	if got := next(t, c01, 1); !strings.Contains(string(got[0].Data), "marker") {
		t.Fatalf("owner of C01 got %s", got[0].Data)
	}
	if got := next(t, c04, 1); !strings.Contains(string(got[0].Data), "mixed case") {
		t.Fatalf("owner of C04 got %s", got[0].Data)
	}
	for _, s := range []*Subscription{c01, c04} {
		if rest, _, _ := s.Drain(t0.Add(time.Hour), nil); len(rest) != 0 {
			t.Fatalf("extra: %s", drained(rest))
		}
	}
	if st := f.hub.Stats(); st.Malformed != 1 {
		t.Fatalf("malformed %d, want 1", st.Malformed)
	}
}
