package app

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/redistest"
)

// TestServeOnlyItsRoutes: Serve answers its own routes, and every other path of the service
// as a path it does not know (web.NotFound's 404), as a Lambda function does for the paths of
// the others; Mux answers all of them.
func TestServeOnlyItsRoutes(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.Client(t)
	keys := config.DefaultKeys().WithPrefix(prefix)
	env := keys.Env()
	env["REDIS_URL"] = redistest.URL(t)
	env["STREAM_TICKET_SECRET"] = strings.Repeat("k", 40)
	env["ACCESS_TOKEN_SECRET"] = "access-token-secret"
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, rdb, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(h http.Handler, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	_, unknown := get(a.Serve(), "/no-such-path")
	known := func(h http.Handler, path string) bool {
		code, body := get(h, path)
		return code != http.StatusNotFound || body != unknown
	}
	var paths []string
	for _, r := range AllRoutes() {
		path, h := r(a)
		if h == nil {
			t.Fatalf("%s: no handler with every secret set", path)
		}
		paths = append(paths, path)
	}
	if len(paths) != 8 {
		t.Fatalf("routes %v", paths)
	}
	for i, r := range AllRoutes() {
		h := a.Serve(r)
		for j, p := range paths {
			if got := known(h, p); got != (i == j) {
				t.Errorf("Serve(%s): %s known = %v", paths[i], p, got)
			}
		}
	}
	for _, p := range paths {
		if !known(a.Mux(), p) {
			t.Errorf("Mux: %s unknown", p)
		}
	}
	// A route is its exact path: any other spelling is a path the service does not have.
	for _, p := range []string{"/sse//stream", "/sse/./stream", "/sse/stream/", "/SSE/stream"} {
		if code, body := get(a.Mux(), p); code != http.StatusNotFound || body != unknown {
			t.Errorf("Mux: %s answered %d %s, want the 404 of an unknown path", p, code, body)
		}
	}
}

// TestRoutesNeedTheirSecrets: without the ticket secret and the access-token key, the routes
// that need them are absent, as Mux had them.
func TestRoutesNeedTheirSecrets(t *testing.T) {
	t.Parallel()
	a := &App{}
	for _, r := range []Route{StreamRoute, AlertsRoute, CloseRoute, StatusRoute, TicketRoute} {
		if path, h := r(a); h != nil {
			t.Errorf("%s served without its secrets", path)
		}
	}
}
