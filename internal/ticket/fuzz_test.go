package ticket

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/google/uuid"
	"github.com/machinedash/sse/internal/jwttest"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/purpose"
)

// FuzzParse feeds arbitrary strings to Parse: it must not panic and must
// return Claims only for tokens signed with the secret. The same input, taken
// as a payload and signed with the secret, must either be refused with zero
// Claims or yield Claims that keep every ticket invariant.
func FuzzParse(f *testing.F) {
	now := t0.Add(time.Minute)
	s := offlineService(f, func() time.Time { return now })
	hs := jwt.SigningMethodHS256
	seeds := []string{
		jwttest.Mint(f, hs, secret, wire(nil)),
		jwttest.Mint(f, hs, secret, wire(map[string]any{"purpose": nil})),
		jwttest.Mint(f, hs, secret, wire(map[string]any{"purpose": "alerts", "exp": t0.Add(MinTTL).Unix()})),
		jwttest.Mint(f, hs, secret, wire(map[string]any{"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-time.Hour + MinTTL).Unix()})),
		jwttest.Mint(f, hs, []byte("another-secret-another-secret-xyz"), wire(nil)),
		jwttest.Mint(f, jwt.SigningMethodHS512, secret, wire(nil)),
		jwttest.B64(`{"alg":"none"}`) + "." + jwttest.B64(`{"sub":"1"}`) + ".",
		`{"sub":"42","jti":"7f0c2b8e-3d1a-4c5e-9b2f-1a2b3c4d5e6f","iat":1769634000,"exp":1769634300}`,
		`{"sub":"42","purpose":"data","jti":"7f0c2b8e-3d1a-4c5e-9b2f-1a2b3c4d5e6f","iat":1769634000,"exp":1769634060.5}`,
		`{"sub":"42","purpose":null,"jti":"7f0c2b8e-3d1a-4c5e-9b2f-1a2b3c4d5e6f","iat":1769634000,"exp":1769634300,"nbf":1}`,
		"",
		"a.b.c",
	}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := s.Parse(in)
		checkResult(t, in, c, err, now)
		if (err == nil || errors.Is(err, ErrExpired)) && !jwttest.SignedBy(in, "HS256", secret) {
			t.Fatalf("Parse accepted a token not signed with the secret: %q", in)
		}

		// in as a payload signed with the secret: claim checks alone decide.
		tok := jwttest.HS256(t, secret, `{"alg":"HS256","typ":"JWT"}`, in)
		c, err = s.Parse(tok)
		checkResult(t, tok, c, err, now)
	})
}

// checkResult asserts Parse's contract on one result.
func checkResult(t *testing.T, tok string, c Claims, err error, now time.Time) {
	t.Helper()
	switch {
	case err == nil, errors.Is(err, ErrExpired):
	case errors.Is(err, ErrInvalid):
		if c != (Claims{}) {
			t.Fatalf("claims %+v returned with %v", c, err)
		}
		return
	default:
		t.Fatalf("Parse(%q) error %v is neither ErrInvalid nor ErrExpired", tok, err)
	}
	if len(tok) > MaxTokenLen {
		t.Fatalf("accepted a %d-byte token", len(tok))
	}
	if u, perr := uuid.Parse(c.ID); perr != nil || u.String() != c.ID || u.Version() != 4 {
		t.Fatalf("accepted jti %q", c.ID)
	}
	if !access.ValidUserID(c.UserID) {
		t.Fatalf("accepted sub %q", c.UserID)
	}
	if c.Purpose != purpose.Any && c.Purpose != purpose.Alerts && c.Purpose != purpose.Data {
		t.Fatalf("accepted purpose %q", c.Purpose)
	}
	if ttl := c.ExpiresAt.Sub(c.IssuedAt); ttl < MinTTL || ttl > MaxTTL {
		t.Fatalf("accepted lifetime %v", ttl)
	}
	if expired := !now.Before(c.ExpiresAt); expired != errors.Is(err, ErrExpired) {
		t.Fatalf("exp %v at %v: err = %v", c.ExpiresAt, now, err)
	}
}
