package smoke_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/smoke"
)

// TestSmoke runs the check against the real local server (embedded Redis,
// 1 s heartbeats), directly and through proxies that buffer the stream.
func TestSmoke(t *testing.T) {
	t.Parallel()
	// The subtests run at once as one user from one address: limits high
	// enough that none evicts another.
	env := map[string]string{"HEARTBEAT_INTERVAL": "1s", "LOG_LEVEL": "warn",
		"MAX_DATA_STREAMS_PER_USER": "10", "MAX_ALERT_STREAMS_PER_USER": "10", "MAX_STREAMS_PER_IP": "20"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel) // the parallel subtests run after this function returns
	srv, err := devserver.Start(ctx, devserver.Options{Addr: "127.0.0.1:0", Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	token, device := login(t, srv.URL)

	cfg := func(base string) smoke.Config {
		return smoke.Config{
			URL: base, Token: token, Device: device,
			// A slack of a whole interval: the shared test machine delays
			// timers by hundreds of milliseconds at times.
			Heartbeat: time.Second, Slack: time.Second, Watch: 3500 * time.Millisecond,
			FirstEventMax: time.Second,
		}
	}

	t.Run("direct: streams arrive incrementally, heartbeats on time", func(t *testing.T) {
		t.Parallel()
		rep, err := smoke.Run(ctx, cfg(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		t.Log(rep)
		if !rep.OK() {
			t.Fatalf("problems: %v", rep.Problems)
		}
		for _, s := range rep.Streams {
			if !s.Incremental || len(s.Heartbeats) < 2 || s.FirstEvent > time.Second || s.Status != 200 {
				t.Errorf("%s: %+v", s.Path, s)
			}
		}
		if strings.Contains(rep.String(), token) {
			t.Error("the report shows the access token")
		}
	})

	for _, c := range []struct {
		name  string
		hold  int // bytes the proxy holds before it passes them on
		wants []string
	}{
		{"a proxy that buffers everything", 1 << 20, []string{"no complete event", "heartbeat was late"}},
		// About 130 bytes an event: the first burst is the fourth event, at
		// the third heartbeat.
		{"a proxy that passes bursts of 420 bytes", 420, []string{"first event after", "heartbeat was late"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			proxy := bufferingProxy(t, srv.URL, c.hold)
			rep, err := smoke.Run(ctx, cfg(proxy))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep)
			if rep.OK() {
				t.Fatal("a buffered stream passed")
			}
			all := strings.Join(rep.Problems, "\n")
			for _, w := range c.wants {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q do not say %q", all, w)
				}
			}
			for _, s := range rep.Streams {
				if s.Incremental {
					t.Errorf("%s judged incremental through a buffering proxy", s.Path)
				}
			}
		})
	}

	t.Run("a bad token is reported, not a crash", func(t *testing.T) {
		t.Parallel()
		c := cfg(srv.URL)
		c.Token = "not-a-token"
		rep, err := smoke.Run(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || !strings.Contains(strings.Join(rep.Problems, " "), "status 401") {
			t.Errorf("problems %v, want the ticket endpoint's 401", rep.Problems)
		}
	})
}

// login gets a demo user's access token and first device from the local
// server.
func login(t *testing.T, base string) (string, string) {
	t.Helper()
	resp, err := http.Post(base+"/dev/login", "application/json", strings.NewReader(`{"userId":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string   `json:"accessToken"`
		Devices     []string `json:"devices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" || len(out.Devices) == 0 {
		t.Fatalf("login: %+v, %v", out, err)
	}
	return out.AccessToken, out.Devices[0]
}

// bufferingProxy forwards every request to upstream and sends the response
// headers at once, but holds the body until hold bytes have come (or the
// upstream ends), as a buffering hop in front of a stream does.
func bufferingProxy(t *testing.T, upstream string, hold int) string {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI, out.Host = target.Scheme, target.Host, "", target.Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_ = http.NewResponseController(w).Flush()
		var held bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			held.Write(buf[:n])
			if held.Len() >= hold || err != nil {
				_, _ = w.Write(held.Bytes())
				_ = http.NewResponseController(w).Flush()
				held.Reset()
			}
			if err == io.EOF || err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
