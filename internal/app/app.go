// Package app assembles the service from its configuration: Redis client,
// ticket service, token verifier, registry, hub and the HTTP handlers.
//
// The Lambda mains and the local server call the same constructors, so the
// handlers a browser meets locally are the ones deployed.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/api"
	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/jsclient"
	"github.com/machinedash/sse/internal/metrics"
	"github.com/machinedash/sse/internal/pubsub"
	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/stream"
	"github.com/machinedash/sse/internal/ticket"
	"github.com/machinedash/sse/internal/web"
)

// App is the assembled service.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Redis    *redis.Client
	Tickets  *ticket.Service
	Access   *access.Verifier // nil unless an access-token key is configured and Load was asked for AccessTokens
	Registry *registry.Registry
	Hub      *pubsub.Hub
	Streams  *stream.Handler
	Metrics  *metrics.Recorder // the stream figures; the stream function emits them as EMF
	Clock    clockwork.Clock
}

// Load reads the environment, resolves secrets given by ARN (Secrets
// Manager, once, at start-up), checks that what the function needs is
// there, and assembles the app. Every configuration problem is reported at
// once.
func Load(ctx context.Context, getenv func(string) string, need config.Need, parts ...Part) (*App, error) {
	return LoadClock(ctx, getenv, need, nil, parts...)
}

// MustLoad is Load for a Lambda main: on a configuration problem it prints
// every one to stderr and exits 1, which Lambda reports as an init failure.
func MustLoad(need config.Need, parts ...Part) *App {
	a, err := Load(context.Background(), os.Getenv, need, parts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return a
}

// LoadClock is Load with the app's clock given (nil: real time). The local
// server's browser test uses it to move the service's notion of "now".
func LoadClock(ctx context.Context, getenv func(string) string, need config.Need, clock clockwork.Clock, parts ...Part) (*App, error) {
	return LoadLog(ctx, getenv, need, clock, os.Stdout, parts...)
}

// LoadLog is LoadClock with the JSON logs written to out instead of
// stdout (the local server's browser tests read them).
func LoadLog(ctx context.Context, getenv func(string) string, need config.Need, clock clockwork.Clock, out io.Writer, parts ...Part) (*App, error) {
	// Every problem at once: what Load found and what is missing.
	cfg, err := config.Load(getenv)
	if err := errors.Join(err, cfg.Require(need)); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if cfg.NeedsSecretsManager() {
		sm, err := config.NewSecretsManager(getenv)
		if err != nil {
			return nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
		if err := cfg.Resolve(ctx, sm); err != nil {
			return nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
	} else if err := cfg.Resolve(ctx, nil); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := NewLogger(out, cfg.LogLevel)
	useRedisLog(log)
	rdb, err := NewRedis(cfg)
	if err != nil {
		return nil, err
	}
	a, err := assemble(cfg, rdb, log, clock)
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		if err := part(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// A Part is a piece of the app that only some functions use, built when
// their main asks Load for it, so that the binaries of the others do not
// link it (as a main names its routes).
type Part func(*App) error

// AccessTokens builds the verifier of the app's access tokens
// (ACCESS_TOKEN_SECRET or ACCESS_TOKEN_PUBLIC_KEY; without either, none),
// which the ticket route needs: the ticket function and the local server
// ask for it. Its key parsing (PEM, PKIX, RSA and ECDSA keys) was 8.6 KB of
// the stream bootstrap.
func AccessTokens(a *App) error {
	cfg := a.Config
	if cfg.AccessTokenSecret.Value == "" && cfg.AccessTokenPublicKey == "" {
		return nil
	}
	v, err := access.NewVerifier([]byte(cfg.AccessTokenSecret.Value), cfg.AccessTokenPublicKey, cfg.AccessTokenUserClaim, a.Clock.Now)
	if err != nil {
		return fmt.Errorf("ACCESS_TOKEN_SECRET / ACCESS_TOKEN_PUBLIC_KEY: %w", err)
	}
	a.Access = v
	return nil
}

// NewLogger returns the JSON logger every function uses (on stdout, which
// Lambda sends to CloudWatch). A line logged with the context of a Lambda
// invocation (the ctx variants: InfoContext, LogAttrs) carries its
// "requestId", as lambdacontext.NewLogger's lines do: one process may serve
// many invocations at once (Lambda Managed Instances), so a line must say
// which one it is of.
func NewLogger(out io.Writer, level slog.Level) *slog.Logger {
	return slog.New(requestIDHandler{slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})})
}

// requestIDHandler adds the invocation's request id to each record, the
// way lambdacontext.NewLogHandler (aws-lambda-go v1.52+) does. That
// handler itself is not used: it writes to os.Stdout, takes its level and
// format from AWS_LAMBDA_LOG_LEVEL/_FORMAT (TEXT unless set) rather than
// LOG_LEVEL, and renames the msg and time keys.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// redisLog sends go-redis's own messages (its pool's dial retries, in
// plain text on stderr by default) to the JSON log at debug level: what
// they report also comes back as the failing command's error, which the
// caller logs or returns once. go-redis's logger is one global, set once
// without a lock, so it is installed once and follows the logger of the
// app loaded last (a process has one; tests load many at once).
type redisLog struct{}

var (
	redisLogOnce sync.Once
	redisLogTo   atomic.Pointer[slog.Logger]
)

func useRedisLog(log *slog.Logger) {
	redisLogTo.Store(log)
	redisLogOnce.Do(func() { redis.SetLogger(redisLog{}) })
}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	if log := redisLogTo.Load(); log != nil {
		log.DebugContext(ctx, "redis client", slog.String("detail", fmt.Sprintf(format, v...)))
	}
}

// NewRedis returns a client for REDIS_URL (TLS with rediss://), with the
// AUTH secret, when given, overriding the URL's password.
func NewRedis(cfg config.Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if cfg.RedisAuth.Value != "" {
		opt.Password = cfg.RedisAuth.Value
	}
	opt.DialTimeout = 3 * time.Second
	opt.ReadTimeout = 3 * time.Second
	opt.WriteTimeout = 3 * time.Second
	opt.PoolSize = PoolSize(cfg.MaxConcurrency)
	opt.MinIdleConns = 1
	// Connections of a frozen Lambda go stale; never keep one for long.
	opt.ConnMaxIdleTime = 4 * time.Minute
	// Maintenance notifications are a Redis Enterprise handshake; ElastiCache
	// and plain Redis do not use them.
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(opt), nil
}

// PoolSize is the Redis connection pool of a process serving n
// invocations at once (the pub/sub connection is apart from it). Each
// stream uses a pooled connection only for moments: admission, a renewal
// per heartbeat, the release. The pool is sized for the burst, n streams
// connecting in the same second after a deploy or a rotation wave, not
// for n at once: 10 (a classic environment) plus one per 8 concurrent
// invocations, at most 64, so that a few environments stay far below
// Redis's maxclients.
func PoolSize(n int) int { return min(10+max(n-1, 0)/8, 64) }

// New assembles the app around a Redis client, with every Part, as the
// tests want it. clock nil means real time.
func New(cfg config.Config, rdb *redis.Client, log *slog.Logger, clock clockwork.Clock) (*App, error) {
	a, err := assemble(cfg, rdb, log, clock)
	if err != nil {
		return nil, err
	}
	if err := AccessTokens(a); err != nil {
		return nil, err
	}
	return a, nil
}

// assemble is New without the parts.
func assemble(cfg config.Config, rdb *redis.Client, log *slog.Logger, clock clockwork.Clock) (*App, error) {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	a := &App{Config: cfg, Log: log, Redis: rdb, Clock: clock}
	if cfg.StreamTicketSecret.Value != "" {
		t, err := ticket.New([]byte(cfg.StreamTicketSecret.Value), rdb, cfg.Keys.Ticket(""), clock.Now)
		if err != nil {
			return nil, fmt.Errorf("STREAM_TICKET_SECRET: %w", err)
		}
		t.LimitIssue(cfg.MaxTicketsPerMinute, time.Minute, cfg.Keys.TicketRate(""))
		t.TrackGeneration(cfg.Keys.UserGeneration)
		a.Tickets = t
	}
	a.Registry = registry.New(rdb, cfg.Keys, registry.Limits{
		Alerts: cfg.MaxAlertStreams, Data: cfg.MaxDataStreams, PerIP: cfg.MaxStreamsPerIP, Policy: cfg.ConnectionLimitPolicy,
	}, LeaseTTL(cfg.HeartbeatInterval), ResumeWindow)
	a.Hub = pubsub.NewHub(rdb, Channels(cfg.Keys), log, clock.Now)
	// Open streams and malformed messages keep their owners; the recorder
	// reads them when it writes.
	a.Metrics = metrics.New(metrics.Sources{
		OpenStreams: func() int64 {
			if a.Streams == nil {
				return 0
			}
			return a.Streams.Open()
		},
		Malformed: func() int64 { return a.Hub.Stats().Malformed },
	}, clock.Now)
	if a.Tickets != nil {
		a.Streams = stream.New(stream.Deps{
			Tickets: a.Tickets, Registry: a.Registry, Hub: a.Hub, Redis: rdb, Keys: cfg.Keys,
			MaxDevices: cfg.MaxDevicesPerStream, TrustedIP: cfg.TrustedClientIPHeader,
			Log: log, Clock: clock, Metrics: a.Metrics,
			Timing: stream.Timing{
				Heartbeat: cfg.HeartbeatInterval, RealtimeMin: cfg.RealtimeMinInterval,
				MaxDuration: cfg.StreamMaxDuration, RotationWindow: cfg.RotationWindow,
				MaxBytes: int64(cfg.StreamMaxBytes), FlushInterval: cfg.StreamFlushInterval,
			},
		})
	}
	return a, nil
}

// LoadScripts puts the registry's scripts into Redis's script cache, once
// at start-up (registry.LoadScripts): a fresh process's first burst of
// connects then runs them at once instead of each answering NOSCRIPT and
// being sent again with the script's source. A failure loses only that: it
// is logged, and every script still runs through that fallback.
func (a *App) LoadScripts(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, scriptLoadTimeout)
	defer cancel()
	if err := a.Registry.LoadScripts(ctx); err != nil {
		a.Log.WarnContext(ctx, "redis scripts not loaded", slog.String("err", err.Error()))
	}
}

// scriptLoadTimeout bounds LoadScripts, which runs before a process serves
// (in a Lambda function's init): a Redis that does not answer by then
// fails the first connects anyway.
const scriptLoadTimeout = 2 * time.Second

// LeaseTTL is how long a lease lives without renewal: it outlives two
// missed heartbeats, then frees its slot.
func LeaseTTL(heartbeat time.Duration) time.Duration { return 2*heartbeat + 5*time.Second }

// ResumeWindow is how long an ended stream's cursor stays valid.
const ResumeWindow = 2 * time.Minute

// Channels is what the hub subscribes to: every configured channel with
// its kind, and the control channel.
func Channels(k config.Keys) pubsub.Channels {
	return pubsub.Channels{Kinds: k.Channels(), Control: k.Control()}
}

// A Route is one path of the service and the handler it has there, built
// from the app: nil when the app is not configured for it (no ticket secret,
// no access-token key). A Lambda main names its own routes, so that its
// binary links only their handlers (every function linking every handler
// was 254 KiB of the stream bootstrap).
type Route func(a *App) (path string, h http.Handler)

// The service's routes, one function each.
func HealthRoute(a *App) (string, http.Handler) {
	return "/health", api.Health(a.Redis, a.Config.Keys.MalformedCount())
}

func ClientJSRoute(*App) (string, http.Handler) {
	return jsclient.PathJS, jsclient.Handler(jsclient.PathJS)
}

func ClientDTSRoute(*App) (string, http.Handler) {
	return jsclient.PathDTS, jsclient.Handler(jsclient.PathDTS)
}

func StreamRoute(a *App) (string, http.Handler) {
	return "/sse/stream", ofStreams(a, (*stream.Handler).Data)
}

func AlertsRoute(a *App) (string, http.Handler) {
	return "/sse/alerts", ofStreams(a, (*stream.Handler).Alerts)
}

func CloseRoute(a *App) (string, http.Handler) {
	return "/sse/close", ofStreams(a, (*stream.Handler).Close)
}

func StatusRoute(a *App) (string, http.Handler) {
	return "/sse/status", ofStreams(a, func(*stream.Handler) http.Handler {
		return api.Status(a.Tickets, a.Registry, a.Clock.Now, a.Log, a.Config.TrustedClientIPHeader)
	})
}

// ofStreams is a handler of the streams' part of the service, which needs the
// ticket secret: nil without it.
func ofStreams(a *App, h func(*stream.Handler) http.Handler) http.Handler {
	if a.Streams == nil {
		return nil
	}
	return h(a.Streams)
}

func TicketRoute(a *App) (string, http.Handler) {
	if a.Access == nil || a.Tickets == nil {
		return "/sse/stream-ticket", nil
	}
	return "/sse/stream-ticket", api.Ticket(a.Access, a.Tickets, a.Log, a.Config.TrustedClientIPHeader)
}

// AllRoutes are every route, as the local server serves them.
func AllRoutes() []Route {
	return []Route{HealthRoute, ClientJSRoute, ClientDTSRoute, StreamRoute, AlertsRoute, CloseRoute, StatusRoute, TicketRoute}
}

// Mux serves every route the app is configured for (the local server, the
// tests). A Lambda main uses Serve with its own.
func (a *App) Mux() http.Handler { return a.Serve(AllRoutes()...) }

// Serve serves the given routes that the app is configured for, behind
// CORS and the origin check; any other path is a JSON 404.
//
// A route is one exact path, so a map finds it: net/http's ServeMux, whose
// patterns (methods, wildcards, hosts, subtrees, conflict checks) no route
// uses, was 64 KB of each Lambda bootstrap. What ServeMux did besides: it
// answered a path that is not clean ("/sse//stream", "/sse/./stream") with a
// redirect (307) to the clean one; here that is a path the service does not
// have (the 404). The local server keeps a ServeMux in front (devserver), so
// its redirects are as before.
func (a *App) Serve(routes ...Route) http.Handler {
	paths := map[string]http.Handler{}
	for _, r := range routes {
		if path, h := r(a); h != nil {
			paths[path] = h
		}
	}
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := paths[r.URL.Path]; h != nil {
			h.ServeHTTP(w, r)
			return
		}
		web.NotFound(w, r)
	})
	return web.Wrap(route, web.Options{
		AllowedOrigins: a.Config.CORSAllowedOrigins,
		OriginSecret:   a.Config.OriginVerifySecret.Value,
		Log:            a.Log,
	})
}
