// Package ticket issues and checks stream tickets: short-lived HS256 JWTs
// (sub, purpose, jti, iat, exp) with a Redis record at <keyPrefix><jti>.
//
// Invariants: only HS256 with the service's secret verifies; a ticket's
// lifetime is 60-3600 whole seconds and its record has the same TTL; Issue
// returns a token only after its record is stored; deleting the record
// revokes the ticket; Parse returns Claims only for a ticket it verified
// (valid or expired), never for a forged or malformed one.
package ticket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/access"
	"github.com/machinedash/sse/internal/purpose"
)

const (
	MinTTL     = 60 * time.Second
	MaxTTL     = 3600 * time.Second
	DefaultTTL = 300 * time.Second

	// DefaultKeyPrefix is where records live unless configured.
	DefaultKeyPrefix = "sse:ticket:"
	// MaxTokenLen bounds the work spent on a token: longer ones are refused
	// before any decoding. Real tickets are about 300 bytes.
	MaxTokenLen = 4 << 10
	// MinSecretLen is the shortest signing secret New accepts (256 bits).
	MinSecretLen = 32
	// clockSkew is how far clocks may disagree: a ticket issued elsewhere may
	// carry an iat up to this far in our future, and a record that vanished
	// this close to exp expired with it rather than being revoked.
	clockSkew = 5 * time.Second
)

var (
	ErrBadTTL     = errors.New("ticket: ttlSeconds must be an integer from 60 to 3600")
	ErrBadPurpose = errors.New(`ticket: purpose must be "alerts" or "data"`)
	ErrBadUserID  = errors.New("ticket: user id must be 1-128 printable ASCII bytes without spaces")
	ErrInvalid    = errors.New("ticket: invalid") // signature, alg, malformed, claims missing or malformed
	ErrExpired    = errors.New("ticket: expired")
	ErrRevoked    = errors.New("ticket: revoked") // the Redis record is gone
	ErrMissing    = errors.New("ticket: missing") // a request that needs one carries none
	// ErrWrongPurpose: the ticket's purpose does not allow the stream asked for.
	ErrWrongPurpose = errors.New("ticket: not valid for this stream")
	// ErrRateLimited: more tickets than the issue limit allows (a *LimitError
	// says when to try again).
	ErrRateLimited = errors.New("ticket: too many tickets issued")
)

// Claims is what a verified ticket says.
type Claims struct {
	ID        string          // jti, a canonical UUID v4
	UserID    string          // sub
	Purpose   purpose.Purpose // purpose.Any when the ticket has no purpose claim
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Generation is the user's revocation generation when the ticket was
	// issued (TrackGeneration); a higher current one revokes it.
	Generation int64
}

// wireClaims is the JWT payload. Purpose stays raw so that a present but
// empty or null purpose can be told apart from an absent one and refused.
type wireClaims struct {
	jwt.RegisteredClaims
	Purpose json.RawMessage `json:"purpose,omitempty"`
	Gen     int64           `json:"gen,omitempty"` // the user's revocation generation at issue
}

// record is the JSON value stored at the ticket's key.
type record struct {
	UserID   string `json:"userId"`
	Purpose  string `json:"purpose"`
	IssuedAt int64  `json:"iat"`
}

// Service issues and checks tickets. It is safe for concurrent use.
type Service struct {
	secret    []byte
	rdb       redis.Cmdable
	keyPrefix string
	now       func() time.Time
	parser    *jwt.Parser
	limit     issueLimit                 // LimitIssue; zero: none
	genKey    func(userID string) string // TrackGeneration; nil: none
}

// New returns a Service signing with secret (at least 32 bytes) and keeping
// records in rdb under keyPrefix ("" means "sse:ticket:"). now nil means
// time.Now.
func New(secret []byte, rdb redis.Cmdable, keyPrefix string, now func() time.Time) (*Service, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("ticket: secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	if rdb == nil {
		return nil, errors.New("ticket: nil redis client")
	}
	if keyPrefix == "" {
		keyPrefix = DefaultKeyPrefix
	}
	if now == nil {
		now = time.Now
	}
	return &Service{
		secret:    append([]byte(nil), secret...),
		rdb:       rdb,
		keyPrefix: keyPrefix,
		now:       now,
		// No leeway on exp: the Redis record expires exactly ttl after it is
		// written, so a JWT that outlived it would only read as revoked.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Key returns the Redis key of ticket id, so a caller can fold the existence
// check into a bigger pipeline or script.
func (s *Service) Key(id string) string { return s.keyPrefix + id }

// Issue signs a ticket for userID and stores its record (SET key value EX
// ttl). The token is returned only after the SET succeeded. ttl must be whole
// seconds in [MinTTL, MaxTTL] (ErrBadTTL); p must be a known purpose
// (ErrBadPurpose); userID 1-128 printable ASCII bytes (ErrBadUserID); and
// the user within the issue limit, if one is set (a *LimitError).
func (s *Service) Issue(ctx context.Context, userID string, p purpose.Purpose, ttl time.Duration) (string, Claims, error) {
	if ttl < MinTTL || ttl > MaxTTL || ttl%time.Second != 0 {
		return "", Claims{}, ErrBadTTL
	}
	if _, ok := purpose.Parse(string(p)); !ok {
		return "", Claims{}, ErrBadPurpose
	}
	if !access.ValidUserID(userID) {
		return "", Claims{}, ErrBadUserID
	}
	gen, err := s.prepare(ctx, userID)
	if err != nil {
		return "", Claims{}, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return "", Claims{}, fmt.Errorf("ticket: new id: %w", err)
	}
	// JWT times are whole seconds; truncate once so Claims match the token.
	iat := time.Unix(s.now().Unix(), 0)
	c := Claims{ID: id.String(), UserID: userID, Purpose: p, IssuedAt: iat, ExpiresAt: iat.Add(ttl), Generation: gen}

	wc := wireClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   c.UserID,
		ID:        c.ID,
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
	}, Gen: gen}
	if p != purpose.Any {
		wc.Purpose, _ = json.Marshal(string(p))
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, wc).SignedString(s.secret)
	if err != nil {
		return "", Claims{}, fmt.Errorf("ticket: sign: %w", err)
	}
	val, err := json.Marshal(record{UserID: userID, Purpose: p.Name(), IssuedAt: iat.Unix()})
	if err != nil {
		return "", Claims{}, fmt.Errorf("ticket: encode record: %w", err)
	}
	if err := s.rdb.Set(ctx, s.Key(c.ID), val, ttl).Err(); err != nil {
		return "", Claims{}, fmt.Errorf("ticket: store record: %w", err)
	}
	return token, c, nil
}

// Parse checks the token's length, signature, alg and claims, without Redis.
// An expired ticket yields ErrExpired together with its Claims (the resume
// path needs to know whose it was); every other error comes with zero Claims.
func (s *Service) Parse(token string) (Claims, error) {
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxTokenLen)
	}
	var wc wireClaims
	_, err := s.parser.ParseWithClaims(token, &wc, func(t *jwt.Token) (any, error) {
		// WithValidMethods already pins the alg; this keeps the key and the
		// method tied together even if the parser options change.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected alg %v", t.Header["alg"])
		}
		return s.secret, nil
	})
	expired := false
	if err != nil {
		// Claims are validated only after the signature verified, so an
		// expiry error means the ticket is ours; anything else beside it
		// (not yet valid) makes it invalid.
		if !errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet) {
			return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		expired = true
	}
	c, err := s.claims(&wc)
	if err != nil {
		return Claims{}, err
	}
	if expired {
		return c, ErrExpired
	}
	return c, nil
}

// claims checks the shape of verified wire claims: a canonical UUID v4 jti,
// a well-formed sub, a known purpose, iat not in the future and a lifetime
// Issue could have given.
func (s *Service) claims(wc *wireClaims) (Claims, error) {
	bad := func(what string) (Claims, error) {
		return Claims{}, fmt.Errorf("%w: %s", ErrInvalid, what)
	}
	id, err := uuid.Parse(wc.ID)
	if err != nil || id.String() != wc.ID || id.Version() != 4 {
		return bad("jti is not a UUID v4")
	}
	if !access.ValidUserID(wc.Subject) {
		return bad("sub malformed")
	}
	p := purpose.Any
	if wc.Purpose != nil {
		var str string
		if json.Unmarshal(wc.Purpose, &str) != nil || bytes.Equal(wc.Purpose, []byte("null")) {
			return bad("purpose not a string")
		}
		if p = purpose.Purpose(str); !p.Stream() {
			return bad("purpose unknown")
		}
	}
	if wc.IssuedAt == nil || wc.ExpiresAt == nil {
		return bad("iat or exp missing")
	}
	iat, exp := wc.IssuedAt.Time, wc.ExpiresAt.Time
	if iat.After(s.now().Add(clockSkew)) {
		return bad("issued in the future")
	}
	if ttl := exp.Sub(iat); ttl < MinTTL || ttl > MaxTTL {
		return bad("lifetime out of range")
	}
	if wc.Gen < 0 {
		return bad("gen negative")
	}
	return Claims{ID: wc.ID, UserID: wc.Subject, Purpose: p, IssuedAt: iat, ExpiresAt: exp, Generation: wc.Gen}, nil
}

// Verify is Parse plus a check that the ticket's record still exists and,
// with TrackGeneration, that its user's generation has not moved past the
// ticket's (ErrRevoked if either fails). An expired ticket yields ErrExpired with its Claims
// without touching Redis. A Redis failure is returned wrapped, with zero
// Claims, and is neither ErrInvalid nor ErrRevoked.
func (s *Service) Verify(ctx context.Context, token string) (Claims, error) {
	c, err := s.Parse(token)
	if err != nil {
		return c, err
	}
	var exists *redis.IntCmd
	var gen *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, s.Key(c.ID))
		if s.genKey != nil {
			gen = p.Get(ctx, s.genKey(c.UserID))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Claims{}, fmt.Errorf("ticket: check record: %w", err)
	}
	if gen != nil {
		if g, _ := gen.Int64(); g > c.Generation {
			return Claims{}, ErrRevoked // the user's tickets were revoked since
		}
	}
	if exists.Val() == 0 {
		// The record expires by itself at the same moment as the ticket;
		// if our clock is slightly behind Redis's, its absence in the last
		// seconds is expiry, not revocation.
		if !s.now().Add(clockSkew).Before(c.ExpiresAt) {
			return c, ErrExpired
		}
		return Claims{}, ErrRevoked
	}
	return c, nil
}

// Revoke deletes the record of ticket id, so Verify refuses the ticket from
// now on. Revoking an unknown or already expired id is not an error.
func (s *Service) Revoke(ctx context.Context, id string) error {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return fmt.Errorf("%w: id is not a UUID", ErrInvalid)
	}
	if err := s.rdb.Del(ctx, s.Key(id)).Err(); err != nil {
		return fmt.Errorf("ticket: delete record: %w", err)
	}
	return nil
}

// ParseTTL reads the request body's raw ttlSeconds: absent (nil) or null
// means DefaultTTL; otherwise it must be a JSON integer literal (no fraction,
// exponent or quotes) from 60 to 3600, else ErrBadTTL.
func ParseTTL(raw json.RawMessage) (time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return DefaultTTL, nil
	}
	// Only plain positive integer literals can be in range; fractions,
	// exponents, strings, signs and leading zeros are refused outright.
	if len(raw) > 4 || raw[0] == '0' {
		return 0, ErrBadTTL
	}
	for _, b := range raw {
		if b < '0' || b > '9' {
			return 0, ErrBadTTL
		}
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil {
		return 0, ErrBadTTL
	}
	ttl := time.Duration(n) * time.Second
	if ttl < MinTTL || ttl > MaxTTL {
		return 0, ErrBadTTL
	}
	return ttl, nil
}
