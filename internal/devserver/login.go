package devserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/app"
	"github.com/machinedash/sse/internal/sim"
	"github.com/machinedash/sse/internal/web"
)

// User is a demo user and the devices it owns.
type User struct {
	ID      int      `json:"userId"`
	Devices []string `json:"devices"`
}

// DemoUsers are seeded into the ownership sets at start: the simulator's
// demo owners, so make dev and a demo deployment agree.
var DemoUsers = demoUsers(sim.DemoOwners)

func demoUsers(owners map[string][]string) []User {
	users := make([]User, 0, len(owners))
	for id, devices := range owners {
		n, err := strconv.Atoi(id)
		if err != nil {
			panic("devserver: demo user ids are integers: " + id)
		}
		users = append(users, User{ID: n, Devices: slices.Clone(devices)})
	}
	slices.SortFunc(users, func(a, b User) int { return a.ID - b.ID })
	return users
}

// TokenTTL is the lifetime of a dev access token: a working day.
const TokenTTL = 12 * time.Hour

// maxLoginBody bounds the /dev/login body.
const maxLoginBody = 1 << 10

// seedUsers adds each demo user's devices to its ownership set. It only
// adds: against a shared REDIS_URL, other members stay.
func seedUsers(ctx context.Context, a *app.App, users []User) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	owners := make(map[string][]string, len(users))
	for _, u := range users {
		owners[strconv.Itoa(u.ID)] = u.Devices
	}
	return sim.SeedOwners(ctx, a.Redis, a.Config.Keys, owners)
}

// startReseed adds the demo ownership again every d (DefaultSeedEvery
// when 0), until Close: after a Redis restart, or a flush of a REDIS_URL
// Redis, the demo users' streams work again without a restart of make
// dev. Adding is idempotent and never removes anything.
func (s *Server) startReseed(d time.Duration) {
	if d <= 0 {
		d = DefaultSeedEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.bgStop, s.bgDone = cancel, make(chan struct{})
	go func() {
		defer close(s.bgDone)
		t := s.App.Clock.NewTicker(d)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.Chan():
			}
			err := seedUsers(ctx, s.App, s.Users)
			switch {
			case err != nil && !failing && ctx.Err() == nil:
				s.App.Log.Warn("demo ownership re-seed failing", slog.String("err", err.Error()))
			case err == nil && failing:
				s.App.Log.Info("demo ownership re-seeded")
			}
			failing = err != nil
		}
	}()
}

// demoMachines are the devices of all demo users, in order.
func demoMachines(users []User) []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range users {
		for _, d := range u.Devices {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

func (s *Server) user(id int) (User, bool) {
	for _, u := range s.Users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

// devRoutes serves /dev/login, /dev/users and the debug panel's /dev/fields,
// /dev/stats and /dev/publish; other /dev/ paths are a JSON 404.
func (s *Server) devRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/dev/login", s.login)
	mux.HandleFunc("/dev/users", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			web.Fail(w, r, s.App.Log, web.ErrMethod)
			return
		}
		web.JSON(w, http.StatusOK, map[string]any{"users": s.Users})
	})
	s.debugRoutes(mux)
	mux.HandleFunc("/", web.NotFound)
	return mux
}

// login serves POST /dev/login {"userId":1}: an HS256 access token for a
// demo user, signed with the configured (or dev) ACCESS_TOKEN_SECRET and
// carrying the user in ACCESS_TOKEN_USER_CLAIM, as the real app's would.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !web.Method(w, r, http.MethodPost) {
		return
	}
	cfg, log := s.App.Config, s.App.Log
	secret := cfg.AccessTokenSecret.Value
	if secret == "" {
		web.Fail(w, r, log, web.WithMessage(web.ErrNotImplemented, "Dev login needs ACCESS_TOKEN_SECRET (HS256); a public key cannot sign"))
		return
	}
	raw, err := web.ReadBody(w, r, maxLoginBody)
	if err != nil {
		web.Fail(w, r, log, err)
		return
	}
	id, ok := parseLogin(raw)
	if !ok {
		web.Fail(w, r, log, web.WithMessage(web.ErrBadRequest, `Body must be {"userId": <demo user id>}`))
		return
	}
	u, ok := s.user(id)
	if !ok {
		web.Fail(w, r, log, web.WithMessage(web.ErrNotFound, "Unknown demo user"))
		return
	}
	tok, err := access.Sign([]byte(secret), cfg.AccessTokenUserClaim, strconv.Itoa(u.ID), TokenTTL, s.App.Clock.Now())
	if err != nil {
		web.Fail(w, r, log, fmt.Errorf("dev login: %w", err)) // no row: a logged 500
		return
	}
	log.InfoContext(r.Context(), "dev login", slog.Int("user", u.ID))
	web.JSON(w, http.StatusOK, map[string]any{
		"accessToken":      tok,
		"tokenType":        "Bearer",
		"expiresInSeconds": int(TokenTTL / time.Second),
		"userId":           u.ID,
		"devices":          u.Devices,
	})
}

// parseLogin reads {"userId": 1} (or "1"): one JSON object whose userId is
// an integer or a string of one.
func parseLogin(raw []byte) (int, bool) {
	var body struct {
		UserID json.RawMessage `json:"userId"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&body); err != nil || dec.More() || len(body.UserID) == 0 {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal(body.UserID, &n); err != nil {
		var s string
		if json.Unmarshal(body.UserID, &s) != nil {
			return 0, false
		}
		n = json.Number(s)
	}
	id, err := strconv.Atoi(string(n))
	return id, err == nil
}
