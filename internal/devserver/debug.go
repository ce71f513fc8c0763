package devserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/machinedash/sse/internal/channel"
	"github.com/machinedash/sse/internal/device"
	"github.com/machinedash/sse/internal/sim"
	"github.com/machinedash/sse/internal/web"
)

// The debug panel's endpoints, dev server only like /dev/login: the field
// catalogue, the service's counters, and publishing a test event through
// Redis exactly as the ingest would.

// KindMalformed publishes a message the hub must drop and count (not
// JSON) on the realtime channel, so the malformed counter can be seen
// moving.
const KindMalformed = "malformed"

// maxPublishBody bounds a /dev/publish body.
const maxPublishBody = 16 << 10

func (s *Server) debugRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/dev/fields", func(w http.ResponseWriter, r *http.Request) {
		if !web.Method(w, r, http.MethodGet) {
			return
		}
		web.JSON(w, http.StatusOK, map[string]any{"fields": sim.Fields})
	})
	mux.HandleFunc("/dev/stats", s.stats)
	mux.HandleFunc("/dev/publish", s.publish)
}

// stats serves GET /dev/stats: the hub's counters (malformed messages
// among them), the streams open in this process with their queue
// counters by lease id (the ids /sse/status lists), and the simulator's.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	if !web.Method(w, r, http.MethodGet) {
		return
	}
	a := s.App
	h := a.Hub.Stats()
	sm := s.SimStats()
	web.JSON(w, http.StatusOK, map[string]any{
		"hub": map[string]int64{
			"received": h.Received, "malformed": h.Malformed, "deliveries": h.Deliveries, "resets": h.Resets,
		},
		"openStreams": a.Streams.Open(),
		"streams":     a.Hub.StreamStats(),
		"simulator": map[string]any{
			"on": s.sim != nil, "steps": sm.Steps, "failed": sm.Failed, "published": sm.Published, "alerts": sm.Alerts,
		},
	})
}

// publish serves POST /dev/publish {"kind":"alert","deviceId":"C01",
// "data":{...}}: data is the Data object of a realtime/SPC/series event,
// or the alert or alarm object. The body must be JSON (Content-Type
// application/json), so a page of another origin cannot post it without a
// CORS preflight, which only the allowed origins pass.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	if !web.Method(w, r, http.MethodPost) {
		return
	}
	a := s.App
	bad := func(message string) { web.Fail(w, r, a.Log, web.WithMessage(web.ErrBadRequest, message)) }
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		web.Fail(w, r, a.Log, web.WithMessage(web.ErrMediaType, "Content-Type must be application/json"))
		return
	}
	raw, err := web.ReadBody(w, r, maxPublishBody)
	if err != nil {
		web.Fail(w, r, a.Log, web.ErrPayloadTooLarge) // 413 here, where the API's bodies answer 400
		return
	}
	var body struct {
		Kind     string         `json:"kind"`
		DeviceID string         `json:"deviceId"`
		Data     map[string]any `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // forward numbers as written
	if err := dec.Decode(&body); err != nil || dec.More() {
		bad(`Body must be {"kind", "deviceId", "data": {...}}`)
		return
	}
	if !slices.Contains(sim.Kinds, body.Kind) && body.Kind != KindMalformed {
		bad("kind must be one of " + strings.Join(append(slices.Clone(sim.Kinds), KindMalformed), ", "))
		return
	}
	if !device.Valid(body.DeviceID) {
		bad("deviceId is not a valid device id")
		return
	}
	if body.Data == nil && body.Kind != KindMalformed {
		bad("data must be a JSON object")
		return
	}
	var n int64
	if body.Kind == KindMalformed {
		n, err = a.Redis.Publish(r.Context(), a.Config.Keys.Channel(channel.Realtime), "not json: "+body.DeviceID).Result()
	} else {
		n, err = sim.Publish(r.Context(), a.Redis, a.Config.Keys, body.Kind, body.DeviceID, body.Data, a.Clock.Now())
	}
	if err != nil {
		if errors.Is(err, r.Context().Err()) {
			return
		}
		web.Fail(w, r, a.Log, &web.Error{Err: fmt.Errorf("%w: dev publish: %w", web.ErrUnavailable, err), Message: "Redis unavailable"})
		return
	}
	a.Log.InfoContext(r.Context(), "dev publish", slog.String("kind", body.Kind), slog.String("deviceId", body.DeviceID))
	web.JSON(w, http.StatusOK, map[string]any{"kind": body.Kind, "deviceId": body.DeviceID, "receivers": n})
}
