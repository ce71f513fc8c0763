// Package devserver is the local server of `make dev`: every route of the
// service on one port, the same handlers the functions serve, plus an
// embedded Redis (unless REDIS_URL is set), seeded demo users, a dev-only
// login, the telemetry simulator and the demo dashboard.
//
// Invariants: it reads the same environment as the functions, through the
// getenv it is given, and fills in only what is unset, with dev values
// that it prints; /dev/login and the dashboard exist only here, never in a
// function; access tokens and tickets never reach its logs.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jonboulle/clockwork"

	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/sim"
	"github.com/machinedash/sse/internal/web"
)

// Dev secrets, used only when the environment leaves them unset; printed at
// start. Each is at least ticket.MinSecretLen bytes.
const (
	DevAccessTokenSecret  = "dev-access-token-secret-not-for-production"
	DevStreamTicketSecret = "dev-stream-ticket-secret-not-for-production"
)

// DashboardDevOrigins are allowed by CORS by default besides the server's
// own origin: a dashboard dev server (Vite) on its usual port.
var DashboardDevOrigins = []string{"http://localhost:5173", "http://127.0.0.1:5173"}

// shutdownTimeout bounds the graceful part of Close: draining streams end
// at once, unless a write of theirs is stalled; whatever is still open
// then is cut.
const shutdownTimeout = 3 * time.Second

// cutTimeout bounds the wait for cut streams to end (release their leases).
const cutTimeout = time.Second

// Options configure the server.
type Options struct {
	Addr      string              // listen address, e.g. 127.0.0.1:8080; port 0 picks a free one
	Simulate  bool                // run the simulator for the demo machines
	MaxStream time.Duration       // stream lifetime; 0: STREAM_MAX_DURATION, else as Lambda (15m)
	Getenv    func(string) string // the environment; nil: nothing set
	Out       io.Writer           // start-up banner; nil: none
	// Sim tunes the simulator (rates, seed); Keys, Machines, Clock and
	// Log are set by the server.
	Sim sim.Config
	// Clock is the service's clock (tickets, leases, timestamps); nil:
	// real time. Tests move it to expire tickets without waiting.
	Clock clockwork.Clock
	// Log receives the service's JSON logs; nil: stdout.
	Log io.Writer
	// SeedEvery is how often the demo users' ownership is added again, so
	// a restarted or flushed Redis heals by itself; 0: DefaultSeedEvery.
	SeedEvery time.Duration
	// CPUProfile is a file that functions/local writes a CPU profile of
	// the whole run to (-cpuprofile, for go tool pprof); "": none. Run
	// itself ignores it.
	CPUProfile string
}

// DefaultSeedEvery is how often the demo ownership is re-added: a stream
// refused with 403 after a Redis restart works again within this.
const DefaultSeedEvery = 5 * time.Second

// Server is a running local server.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// App is the assembled service the routes come from.
	App *app.App
	// Users are the demo users seeded into Redis.
	Users []User

	srv      *http.Server
	served   chan error
	mini     *miniredis.Miniredis // nil with REDIS_URL
	sim      *sim.Simulator       // nil without -simulate
	simStop  context.CancelFunc
	simDone  chan error
	bgStop   context.CancelFunc // the re-seeding loop
	bgDone   chan struct{}
	closeOne sync.Once
	closeErr error
}

// Run starts the server, serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o Options) error {
	s, err := Start(ctx, o)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-s.served:
		s.served <- err // let Close see it too
	}
	return s.Close()
}

// Start listens, assembles the app, seeds the demo users, starts the
// simulator (and waits for its first tick, so every machine has a status)
// and serves. Close releases everything.
func Start(ctx context.Context, o Options) (_ *Server, err error) {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	ln, err := net.Listen("tcp", o.Addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen %s: the port is taken (another make dev?); pick another with -addr, e.g. make dev DEV_FLAGS='-addr %s'", o.Addr, nextPort(o.Addr))
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", o.Addr, err)
	}
	s := &Server{URL: "http://" + displayHost(ln.Addr().(*net.TCPAddr)), Users: slices.Clone(DemoUsers)}
	defer func() {
		if err != nil {
			_ = ln.Close()
			s.release()
		}
	}()

	env := map[string]string{}
	if strings.TrimSpace(o.Getenv("REDIS_URL")) == "" {
		s.mini, err = startEmbedded()
		if err != nil {
			return nil, err
		}
		env["REDIS_URL"] = "redis://" + s.mini.Addr()
	}
	dev := devDefaults(o.Getenv, ln.Addr().(*net.TCPAddr), o.MaxStream)
	for k, v := range dev {
		env[k] = v
	}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return o.Getenv(k)
	}
	if o.Log == nil {
		o.Log = os.Stdout
	}
	a, err := app.LoadLog(ctx, getenv, config.NeedRedis|config.NeedTicketSecret|config.NeedAccessToken, o.Clock, o.Log, app.AccessTokens)
	if err != nil {
		return nil, err
	}
	s.App = a
	if a.Streams != nil {
		// Many streams in one process: each takes its connection over from
		// net/http once admitted (internal/stream, out.go), which frees
		// net/http's goroutine and buffers per stream.
		a.Streams.TakeConns()
	}
	if err := ping(ctx, a); err != nil {
		return nil, err
	}
	a.LoadScripts(ctx)
	if err := seedUsers(ctx, a, s.Users); err != nil {
		return nil, fmt.Errorf("redis: seeding demo users: %w", err)
	}
	s.startReseed(o.SeedEvery)
	if o.Simulate {
		if err := s.startSim(o.Sim); err != nil {
			return nil, err
		}
	}

	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		// More than web.MaxHeaderBytes, so that oversized headers up to
		// here get the seed's JSON 431 from web.Wrap, not net/http's text.
		MaxHeaderBytes: 4 << 20,
		ErrorLog:       slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()

	printBanner(o.Out, s, dev, o.Simulate)
	a.Log.Info("dev server listening", slog.String("url", s.URL), slog.Bool("embeddedRedis", s.mini != nil), slog.Bool("simulate", o.Simulate))
	return s, nil
}

// ping checks Redis before anything else uses it, so that a wrong
// REDIS_URL is one clear line.
func ping(ctx context.Context, a *app.App) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s (REDIS_URL) is unreachable: %w; unset REDIS_URL for an embedded one", a.Redis.Options().Addr, err)
	}
	return nil
}

// nextPort suggests the port after addr's, for the "port is taken" hint.
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n <= 0 || n >= 65535 {
		return "127.0.0.1:8081"
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// startEmbedded runs miniredis on a free loopback port. TTLs follow the wall
// clock, as in a real Redis, so ticket records and leases expire.
func startEmbedded() (*miniredis.Miniredis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	m.ClockTTL(true)
	return m, nil
}

// devDefaults returns the settings the local server fills in: the secrets
// the environment leaves unset, CORS for the server's own origin and a
// dashboard dev server, and the -max-stream lifetime.
func devDefaults(getenv func(string) string, addr *net.TCPAddr, maxStream time.Duration) map[string]string {
	set := func(k string) bool { return strings.TrimSpace(getenv(k)) != "" }
	env := map[string]string{}
	if !set("ACCESS_TOKEN_SECRET") && !set("ACCESS_TOKEN_SECRET_ARN") && !set("ACCESS_TOKEN_PUBLIC_KEY") {
		env["ACCESS_TOKEN_SECRET"] = DevAccessTokenSecret
	}
	if !set("STREAM_TICKET_SECRET") && !set("STREAM_TICKET_SECRET_ARN") {
		env["STREAM_TICKET_SECRET"] = DevStreamTicketSecret
	}
	if !set("CORS_ALLOWED_ORIGINS") {
		env["CORS_ALLOWED_ORIGINS"] = strings.Join(ownOrigins(addr), ",")
	}
	if maxStream > 0 {
		env["STREAM_MAX_DURATION"] = maxStream.String()
	}
	return env
}

// ownOrigins are the origins a browser may use to reach addr: as given,
// and as localhost/127.0.0.1 when it is a loopback or wildcard address,
// plus the dashboard dev server's.
func ownOrigins(addr *net.TCPAddr) []string {
	port := fmt.Sprint(addr.Port)
	var out []string
	if addr.IP.IsLoopback() || addr.IP.IsUnspecified() {
		out = append(out, "http://localhost:"+port, "http://127.0.0.1:"+port)
	} else {
		out = append(out, "http://"+addr.String())
	}
	for _, o := range DashboardDevOrigins {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// displayHost is the host:port to print and to put in URLs.
func displayHost(addr *net.TCPAddr) string {
	if addr.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	}
	return addr.String()
}

func (s *Server) startSim(c sim.Config) error {
	a := s.App
	c.Keys, c.Machines, c.Log, c.Clock = a.Config.Keys, demoMachines(s.Users), a.Log, a.Clock
	sm, err := sim.New(a.Redis, c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.sim, s.simStop, s.simDone = sm, cancel, make(chan error, 1)
	go func() { s.simDone <- sm.Run(ctx) }()
	select {
	case <-sm.Ready():
	case <-time.After(5 * time.Second):
		return errors.New("simulator: first tick did not finish in 5s")
	}
	return nil
}

func (s *Server) routes() http.Handler {
	a := s.App
	mux := http.NewServeMux()
	mux.Handle("/", a.Mux())
	// The figures the stream function writes as EMF lines on Lambda.
	mux.Handle("GET /metrics", a.Metrics.Handler())
	mux.Handle("/dev/", web.Wrap(s.devRoutes(), web.Options{
		AllowedOrigins: a.Config.CORSAllowedOrigins,
		OriginSecret:   a.Config.OriginVerifySecret.Value,
		Log:            a.Log,
	}))
	mux.Handle("GET /{$}", page())
	mux.Handle("GET /assets/", assets())
	return mux
}

// Close shuts down gracefully: open streams are told to drain (they wake
// and end with a retry), the HTTP server and the stream handler (for the
// streams on hijacked connections) get a short while to finish them, then
// the simulator, the hub, the Redis client and the embedded Redis stop. It
// is idempotent.
func (s *Server) Close() error {
	s.closeOne.Do(func() {
		a := s.App
		if a.Streams != nil {
			a.Streams.Drain()
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		err := s.srv.Shutdown(ctx)
		if err == nil && a.Streams != nil {
			// Streams on connections taken over (TakeConns) are not the
			// HTTP server's any more: Shutdown neither waits for them nor
			// closes them.
			err = a.Streams.Wait(ctx)
		}
		cancel()
		if err != nil {
			// Streams that did not end in time (a write stalled) are cut;
			// their browsers reconnect once a server is back.
			_ = s.srv.Close()
			if a.Streams != nil {
				a.Streams.Cut()
				ctx, cancel := context.WithTimeout(context.Background(), cutTimeout)
				_ = a.Streams.Wait(ctx) // their leases are released before Redis closes
				cancel()
			}
		}
		if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			s.closeErr = serr
		}
		s.release()
		a.Log.Info("dev server stopped", slog.Int64("openStreams", a.Streams.Open()))
	})
	return s.closeErr
}

// release stops what Start started besides the HTTP server.
func (s *Server) release() {
	if s.bgStop != nil {
		s.bgStop()
		<-s.bgDone
	}
	if s.simStop != nil {
		s.simStop()
		<-s.simDone
	}
	if s.App != nil {
		s.App.Hub.Close()
		_ = s.App.Redis.Close()
	}
	if s.mini != nil {
		s.mini.Close()
	}
}

// SimStats returns the simulator's counters (zero without -simulate).
func (s *Server) SimStats() sim.Stats {
	if s.sim == nil {
		return sim.Stats{}
	}
	return s.sim.Stats()
}
