package devserver

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printBanner tells the developer where things are and how to try them.
func printBanner(w io.Writer, s *Server, dev map[string]string, simulate bool) {
	cfg := s.App.Config
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("")
	p("machinedash SSE - local server")
	p("  dashboard   %s/", s.URL)
	if s.mini != nil {
		p("  redis       embedded (miniredis at %s); set REDIS_URL to use a real one", s.mini.Addr())
	} else {
		p("  redis       REDIS_URL")
	}
	if simulate {
		p("  simulator   on: %s (realtime 1 Hz, SPC per cycle, occasional alerts and alarms)", strings.Join(demoMachines(s.Users), " "))
	} else {
		p("  simulator   off (-simulate=false): publish to the channels yourself")
	}
	life := "up to 15m, as in Lambda (-max-stream to shorten)"
	if cfg.StreamMaxDuration > 0 {
		life = cfg.StreamMaxDuration.String() + " (then the browser reconnects with Last-Event-ID)"
	}
	p("  streams     rotate after %s", life)
	p("  CORS        %s", strings.Join(cfg.CORSAllowedOrigins, ", "))
	if len(dev) > 0 {
		for _, k := range []string{"ACCESS_TOKEN_SECRET", "STREAM_TICKET_SECRET"} {
			if v, ok := dev[k]; ok {
				p("  dev secret  %s=%s (unset in the environment)", k, v)
			}
		}
	}
	p("  demo users")
	for _, u := range s.Users {
		p("    user %d -> %s", u.ID, strings.Join(u.Devices, ", "))
	}
	p("  try it (README: local walk-through)")
	p(`    TOKEN=$(curl -s -X POST %s/dev/login -d '{"userId":1}' | jq -r .accessToken)`, s.URL)
	p(`    TICKET=$(curl -s -X POST %s/sse/stream-ticket -H "Authorization: Bearer $TOKEN" -d '{"purpose":"data"}' | jq -r .ticket)`, s.URL)
	p(`    curl -N "%s/sse/stream?ticket=$TICKET&deviceId=C01"`, s.URL)
	p("  debug       the page's Debug panel (at the bottom; %s/#user=1 opens as user 1): publish a test event, open connections, counters", s.URL)
	p(`    or: curl -X POST %s/dev/publish -H 'Content-Type: application/json' -d '{"kind":"alert","deviceId":"C01","data":{"alertType":"critical","code":1102,"message":"test"}}'`, s.URL)
	p("  flags       -h lists the flags and the environment; make dev DEV_FLAGS='-alert-every 10s -alarm-every 1m -max-stream 30s'")
	p("  started %s; Ctrl-C stops", time.Now().Format(time.TimeOnly))
	p("")
	_, _ = io.WriteString(w, b.String())
}
