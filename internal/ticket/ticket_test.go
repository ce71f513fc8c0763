package ticket

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/google/uuid"
	"github.com/machinedash/sse/internal/jwttest"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/purpose"
	"github.com/machinedash/sse/internal/redistest"
)

var (
	t0     = time.Date(2026, 1, 28, 21, 0, 0, 0, time.UTC)
	secret = []byte("ticket-test-secret-0123456789abcdef")
)

// clock is an injectable time source that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newService returns a Service on the real test Redis, with records under the
// test's own prefix, and its clock (at t0).
func newService(t *testing.T) (*Service, *redis.Client, *clock) {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	clk := &clock{t: t0}
	s, err := New(secret, rdb, prefix+DefaultKeyPrefix, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb, clk
}

// offlineService returns a Service whose Redis client is already closed, so
// every command fails at once: for paths that must not need Redis or must
// fail cleanly without it.
func offlineService(t testing.TB, now func() time.Time) *Service {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	_ = rdb.Close()
	s, err := New(secret, rdb, "", now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wire returns valid ticket claims issued at t0 with overrides applied; a nil
// override value deletes the claim.
func wire(over map[string]any) jwt.MapClaims {
	return jwttest.With(jwt.MapClaims{
		"sub":     "42",
		"purpose": "data",
		"jti":     "7f0c2b8e-3d1a-4c5e-9b2f-1a2b3c4d5e6f",
		"iat":     t0.Unix(),
		"exp":     t0.Add(DefaultTTL).Unix(),
	}, over)
}

func TestNew(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	_ = rdb.Close() // New never talks to Redis
	if _, err := New(secret[:31], rdb, "", nil); err == nil {
		t.Error("New with a 31-byte secret: want error")
	}
	if _, err := New(secret, nil, "", nil); err == nil {
		t.Error("New with nil redis: want error")
	}
	s, err := New(secret, rdb, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Key("abc"); got != "sse:ticket:abc" {
		t.Errorf("Key = %q, want default prefix", got)
	}
	if s.now == nil {
		t.Error("now nil not defaulted")
	}
}

func TestIssueVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		purpose purpose.Purpose
		ttl     time.Duration
	}{
		{purpose.Any, DefaultTTL},
		{purpose.Alerts, MinTTL},
		{purpose.Data, MaxTTL},
	}
	for _, tt := range tests {
		t.Run(tt.purpose.Name()+"/"+tt.ttl.String(), func(t *testing.T) {
			t.Parallel()
			s, rdb, _ := newService(t)
			ctx := context.Background()
			tok, c, err := s.Issue(ctx, "user-1", tt.purpose, tt.ttl)
			if err != nil {
				t.Fatal(err)
			}
			want := Claims{ID: c.ID, UserID: "user-1", Purpose: tt.purpose, IssuedAt: t0, ExpiresAt: t0.Add(tt.ttl)}
			if !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(tt.ttl)) || c.UserID != want.UserID || c.Purpose != want.Purpose {
				t.Fatalf("Issue claims = %+v, want %+v", c, want)
			}
			if u, err := uuid.Parse(c.ID); err != nil || u.Version() != 4 || u.String() != c.ID {
				t.Fatalf("ticket id %q is not a canonical UUID v4", c.ID)
			}

			got, err := s.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.ID != c.ID || got.UserID != c.UserID || got.Purpose != c.Purpose ||
				!got.IssuedAt.Equal(c.IssuedAt) || !got.ExpiresAt.Equal(c.ExpiresAt) {
				t.Fatalf("Verify claims = %+v, want %+v", got, c)
			}

			// The payload carries exactly the contract's claims.
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(payload, &m); err != nil {
				t.Fatal(err)
			}
			wantKeys := map[string]bool{"sub": true, "jti": true, "iat": true, "exp": true, "purpose": tt.purpose != purpose.Any}
			for k := range m {
				if !wantKeys[k] {
					t.Errorf("unexpected claim %q in %s", k, payload)
				}
			}
			for k, present := range wantKeys {
				if _, ok := m[k]; ok != present {
					t.Errorf("claim %q present = %v, want %v (%s)", k, ok, present, payload)
				}
			}
			if m["jti"] != c.ID || m["sub"] != "user-1" {
				t.Errorf("payload %s does not match claims %+v", payload, c)
			}

			// The record lives as long as the ticket.
			ttl, err := rdb.TTL(ctx, s.Key(c.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if d := ttl - tt.ttl; d < -time.Second || d > time.Second {
				t.Errorf("record TTL = %v, want %v ±1s", ttl, tt.ttl)
			}
			val, err := rdb.Get(ctx, s.Key(c.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(val), &rec); err != nil {
				t.Fatalf("record %q: %v", val, err)
			}
			if rec["userId"] != "user-1" || rec["purpose"] != tt.purpose.Name() || rec["iat"] != float64(t0.Unix()) || len(rec) != 3 {
				t.Errorf("record = %s", val)
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newService(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		userID  string
		purpose purpose.Purpose
		ttl     time.Duration
		wantErr error
	}{
		{"ttl 59s", "1", purpose.Any, 59 * time.Second, ErrBadTTL},
		{"ttl 3601s", "1", purpose.Any, 3601 * time.Second, ErrBadTTL},
		{"ttl not whole seconds", "1", purpose.Any, 90*time.Second + time.Millisecond, ErrBadTTL},
		{"ttl zero", "1", purpose.Any, 0, ErrBadTTL},
		{"purpose any spelled out", "1", purpose.Purpose("any"), DefaultTTL, ErrBadPurpose},
		{"purpose unknown", "1", purpose.Purpose("Alerts"), DefaultTTL, ErrBadPurpose},
		{"empty user", "", purpose.Any, DefaultTTL, ErrBadUserID},
		{"user with space", "a b", purpose.Any, DefaultTTL, ErrBadUserID},
		{"user too long", strings.Repeat("u", 129), purpose.Any, DefaultTTL, ErrBadUserID},
	}
	for _, tt := range tests {
		tok, c, err := s.Issue(ctx, tt.userID, tt.purpose, tt.ttl)
		if !errors.Is(err, tt.wantErr) || tok != "" || c != (Claims{}) {
			t.Errorf("%s: Issue = %q, %+v, %v; want %v", tt.name, tok, c, err, tt.wantErr)
		}
	}
	if keys, err := rdb.Keys(ctx, s.Key("*")).Result(); err != nil || len(keys) != 0 {
		t.Errorf("refused issues left records %v (err %v)", keys, err)
	}
}

func TestIssueWithoutRedisReturnsNoToken(t *testing.T) {
	t.Parallel()
	s := offlineService(t, func() time.Time { return t0 })
	tok, c, err := s.Issue(context.Background(), "1", purpose.Alerts, DefaultTTL)
	if err == nil || tok != "" || c != (Claims{}) {
		t.Fatalf("Issue with Redis down = %q, %+v, %v; want only an error", tok, c, err)
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrBadTTL) {
		t.Fatalf("Redis failure reported as a client error: %v", err)
	}
}

func TestVerifyRevoked(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newService(t)
	ctx := context.Background()

	tok1, c1, err := s.Issue(ctx, "7", purpose.Data, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	tok2, c2, err := s.Issue(ctx, "7", purpose.Data, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	// Deleting the key by hand revokes, and only that ticket.
	if err := rdb.Del(ctx, s.Key(c1.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Verify(ctx, tok1); !errors.Is(err, ErrRevoked) || c != (Claims{}) {
		t.Fatalf("Verify after DEL = %+v, %v; want zero, ErrRevoked", c, err)
	}
	if _, err := s.Verify(ctx, tok2); err != nil {
		t.Fatalf("other ticket: %v", err)
	}
	// Parse alone does not look at Redis.
	if _, err := s.Parse(tok1); err != nil {
		t.Fatalf("Parse of a revoked ticket: %v", err)
	}
	// Revoke does the same.
	if err := s.Revoke(ctx, c2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok2); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify after Revoke: err = %v, want ErrRevoked", err)
	}
	if err := s.Revoke(ctx, c2.ID); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if err := s.Revoke(ctx, "*"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Revoke(\"*\") = %v, want ErrInvalid", err)
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	s, rdb, clk := newService(t)
	ctx := context.Background()
	tok, c, err := s.Issue(ctx, "9", purpose.Alerts, MinTTL)
	if err != nil {
		t.Fatal(err)
	}

	clk.Set(c.ExpiresAt.Add(-time.Second))
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatalf("one second before exp: %v", err)
	}

	for _, at := range []time.Time{c.ExpiresAt, c.ExpiresAt.Add(time.Hour)} {
		clk.Set(at)
		got, err := s.Parse(tok)
		if !errors.Is(err, ErrExpired) || got != c {
			t.Fatalf("Parse at %v = %+v, %v; want %+v, ErrExpired", at, got, err, c)
		}
		got, err = s.Verify(ctx, tok)
		if !errors.Is(err, ErrExpired) || got != c {
			t.Fatalf("Verify at %v = %+v, %v; want %+v, ErrExpired", at, got, err, c)
		}
	}

	// An expired ticket is reported as such without asking Redis.
	off := offlineService(t, clk.Now)
	if got, err := off.Verify(ctx, tok); !errors.Is(err, ErrExpired) || got != c {
		t.Fatalf("Verify of expired ticket with Redis down = %+v, %v", got, err)
	}

	// The record expiring a moment before our clock says exp is expiry, not
	// revocation; earlier, its absence is revocation.
	if err := rdb.Del(ctx, s.Key(c.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	clk.Set(c.ExpiresAt.Add(-2 * time.Second))
	if got, err := s.Verify(ctx, tok); !errors.Is(err, ErrExpired) || got != c {
		t.Fatalf("record gone 2s before exp: %+v, %v; want claims, ErrExpired", got, err)
	}
	clk.Set(c.ExpiresAt.Add(-10 * time.Second))
	if _, err := s.Verify(ctx, tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("record gone 10s before exp: %v; want ErrRevoked", err)
	}
}

func TestVerifyRedisDown(t *testing.T) {
	t.Parallel()
	s, _, clk := newService(t)
	tok, _, err := s.Issue(context.Background(), "1", purpose.Any, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	off := offlineService(t, clk.Now)
	c, err := off.Verify(context.Background(), tok)
	if err == nil || c != (Claims{}) || errors.Is(err, ErrRevoked) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
		t.Fatalf("Verify with Redis down = %+v, %v; want a plain error", c, err)
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	s := offlineService(t, func() time.Time { return t0.Add(time.Minute) })
	hs := jwt.SigningMethodHS256
	valid := jwttest.Mint(t, hs, secret, wire(nil))
	if _, err := s.Parse(valid); err != nil {
		t.Fatalf("baseline token refused: %v", err)
	}
	parts := strings.Split(valid, ".")
	payload := func(over map[string]any) string {
		b, err := json.Marshal(wire(over))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	with := func(over map[string]any) string { return jwttest.Mint(t, hs, secret, wire(over)) }
	header := `{"alg":"HS256","typ":"JWT"}`

	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		// Signature and algorithm.
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Map(func(r rune) rune {
			if r == 'A' {
				return 'B'
			}
			return 'A'
		}, parts[2][:1]) + parts[2][1:], ErrInvalid},
		{"tampered payload", parts[0] + "." + jwttest.B64(payload(map[string]any{"sub": "1"})) + "." + parts[2], ErrInvalid},
		{"other secret", jwttest.Mint(t, hs, []byte("another-secret-another-secret-xyz"), wire(nil)), ErrInvalid},
		{"other secret, expired", jwttest.Mint(t, hs, []byte("another-secret-another-secret-xyz"), wire(map[string]any{"exp": t0.Add(MinTTL - time.Hour).Unix(), "iat": t0.Add(-time.Hour).Unix()})), ErrInvalid},
		{"alg none", jwttest.B64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + ".", ErrInvalid},
		{"alg none with signature", jwttest.B64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], ErrInvalid},
		{"alg NONE", jwttest.B64(`{"alg":"NONE"}`) + "." + parts[1] + ".", ErrInvalid},
		{"alg missing", jwttest.HS256(t, secret, `{"typ":"JWT"}`, payload(nil)), ErrInvalid},
		{"alg swap HS256 header on HS512 signature", func() string {
			p := strings.Split(jwttest.Mint(t, jwt.SigningMethodHS512, secret, wire(nil)), ".")
			return jwttest.B64(header) + "." + p[1] + "." + p[2]
		}(), ErrInvalid},
		{"HS384 with the secret", jwttest.Mint(t, jwt.SigningMethodHS384, secret, wire(nil)), ErrInvalid},
		{"HS512 with the secret", jwttest.Mint(t, jwt.SigningMethodHS512, secret, wire(nil)), ErrInvalid},
		{"RS256", jwttest.Mint(t, jwt.SigningMethodRS256, jwttest.TestKeys(t).RSA, wire(nil)), ErrInvalid},
		{"ES256", jwttest.Mint(t, jwt.SigningMethodES256, jwttest.TestKeys(t).EC, wire(nil)), ErrInvalid},

		// Shape.
		{"empty", "", ErrInvalid},
		{"two segments", parts[0] + "." + parts[1], ErrInvalid},
		{"four segments", valid + ".x", ErrInvalid},
		{"padded segment", parts[0] + "." + parts[1] + "=." + parts[2], ErrInvalid},
		{"over 4 KiB", with(map[string]any{"pad": strings.Repeat("x", MaxTokenLen)}), ErrInvalid},
		{"payload not an object", jwttest.HS256(t, secret, header, `"x"`), ErrInvalid},

		// Claims.
		{"jti missing", with(map[string]any{"jti": nil}), ErrInvalid},
		{"jti not a UUID", with(map[string]any{"jti": "ticket-1"}), ErrInvalid},
		{"jti UUID v1", with(map[string]any{"jti": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}), ErrInvalid},
		{"jti uppercase", with(map[string]any{"jti": "7F0C2B8E-3D1A-4C5E-9B2F-1A2B3C4D5E6F"}), ErrInvalid},
		{"jti in braces", with(map[string]any{"jti": "{7f0c2b8e-3d1a-4c5e-9b2f-1a2b3c4d5e6f}"}), ErrInvalid},
		{"jti urn", with(map[string]any{"jti": "urn:uuid:7f0c2b8e-3d1a-4c5e-9b2f-1a2b3c4d5e6f"}), ErrInvalid},
		{"sub missing", with(map[string]any{"sub": nil}), ErrInvalid},
		{"sub empty", with(map[string]any{"sub": ""}), ErrInvalid},
		{"sub number", with(map[string]any{"sub": 42}), ErrInvalid},
		{"sub with space", with(map[string]any{"sub": "a b"}), ErrInvalid},
		{"purpose any", with(map[string]any{"purpose": "any"}), ErrInvalid},
		{"purpose empty", with(map[string]any{"purpose": ""}), ErrInvalid},
		{"purpose other", with(map[string]any{"purpose": "Data"}), ErrInvalid},
		{"purpose number", with(map[string]any{"purpose": 1}), ErrInvalid},
		{"purpose null", jwttest.HS256(t, secret, header, strings.Replace(payload(nil), `"purpose":"data"`, `"purpose":null`, 1)), ErrInvalid},
		{"iat missing", with(map[string]any{"iat": nil}), ErrInvalid},
		{"exp missing", with(map[string]any{"exp": nil}), ErrInvalid},
		{"exp string", with(map[string]any{"exp": "soon"}), ErrInvalid},
		{"iat in the future", with(map[string]any{"iat": t0.Add(time.Minute + 6*time.Second).Unix(), "exp": t0.Add(time.Hour).Unix()}), ErrInvalid},
		{"lifetime 59s", with(map[string]any{"iat": t0.Add(30 * time.Second).Unix(), "exp": t0.Add(89 * time.Second).Unix()}), ErrInvalid},
		{"lifetime 3601s", with(map[string]any{"exp": t0.Add(3601 * time.Second).Unix()}), ErrInvalid},
		{"not valid yet", with(map[string]any{"nbf": t0.Add(time.Hour).Unix()}), ErrInvalid},
		{"expired and not valid yet", with(map[string]any{"nbf": t0.Add(time.Hour).Unix(), "iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-time.Hour + MinTTL).Unix()}), ErrInvalid},
		{"expired with malformed jti", with(map[string]any{"jti": "x", "iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-time.Hour + MinTTL).Unix()}), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := s.Parse(tt.token)
			if !errors.Is(err, tt.wantErr) || c != (Claims{}) {
				t.Fatalf("Parse = %+v, %v; want zero, %v", c, err, tt.wantErr)
			}
			if errors.Is(err, ErrExpired) {
				t.Fatalf("Parse = %v; must not also be ErrExpired", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestParseTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     json.RawMessage
		want    time.Duration
		wantErr bool
	}{
		{raw: nil, want: DefaultTTL},
		{raw: json.RawMessage(``), want: DefaultTTL},
		{raw: json.RawMessage(`null`), want: DefaultTTL},
		{raw: json.RawMessage(`60`), want: 60 * time.Second},
		{raw: json.RawMessage(`300`), want: 300 * time.Second},
		{raw: json.RawMessage(` 3600 `), want: 3600 * time.Second},
		{raw: json.RawMessage(`59`), wantErr: true},
		{raw: json.RawMessage(`3601`), wantErr: true},
		{raw: json.RawMessage(`0`), wantErr: true},
		{raw: json.RawMessage(`-300`), wantErr: true},
		{raw: json.RawMessage(`300.5`), wantErr: true},
		{raw: json.RawMessage(`300.0`), wantErr: true},
		{raw: json.RawMessage(`3e2`), wantErr: true},
		{raw: json.RawMessage(`0300`), wantErr: true},
		{raw: json.RawMessage(`"300"`), wantErr: true},
		{raw: json.RawMessage(`true`), wantErr: true},
		{raw: json.RawMessage(`{}`), wantErr: true},
		{raw: json.RawMessage(`[300]`), wantErr: true},
		{raw: json.RawMessage(`99999999999999999999999`), wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTTL(tt.raw)
		if tt.wantErr {
			if !errors.Is(err, ErrBadTTL) || got != 0 {
				t.Errorf("ParseTTL(%s) = %v, %v; want ErrBadTTL", tt.raw, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTTL(%s) = %v, %v; want %v", tt.raw, got, err, tt.want)
		}
	}

	// A handler passes the raw field of the decoded body.
	var body struct {
		TTLSeconds json.RawMessage `json:"ttlSeconds"`
	}
	if err := json.Unmarshal([]byte(`{"ttlSeconds":null}`), &body); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseTTL(body.TTLSeconds); err != nil || got != DefaultTTL {
		t.Errorf("ParseTTL(body null) = %v, %v", got, err)
	}
}
