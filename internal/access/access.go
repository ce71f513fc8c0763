// Package access verifies the existing app's access tokens, the Bearer token
// on POST /sse/stream-ticket, and yields the user id they carry.
//
// Invariants: the algorithm is pinned by the key (HS256 for a shared secret,
// RS256 for an RSA key, ES256 for a P-256 key), so "none" and algorithm swaps
// never verify; exp is required and checked against the injected clock with at
// most Leeway of slack; a returned user id is 1-128 bytes of printable ASCII
// without spaces.
package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	ErrMissing = errors.New("access: token missing")
	// ErrInvalid covers a bad signature, a wrong alg, a malformed token, an
	// expired or not yet valid token and a missing or malformed user claim.
	ErrInvalid = errors.New("access: token invalid")
)

const (
	// DefaultUserClaim is the claim that holds the user id unless configured.
	DefaultUserClaim = "sub"
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second
	// MaxTokenLen bounds the work spent on a token: longer ones are refused
	// before any decoding.
	MaxTokenLen = 8 << 10
	// MaxUserIDLen is the longest user id accepted, in bytes.
	MaxUserIDLen = 128
	// minRSABits refuses keys too weak to trust with identities.
	minRSABits = 2048
)

// Verifier checks access tokens with one key and one pinned algorithm. It is
// safe for concurrent use.
type Verifier struct {
	key       any // []byte, *rsa.PublicKey or *ecdsa.PublicKey
	method    jwt.SigningMethod
	userClaim string
	parser    *jwt.Parser
}

// NewVerifier returns a Verifier for exactly one of hsSecret (HS256) or
// publicKeyPEM (RS256 for an RSA key, ES256 for a P-256 ECDSA key, in a
// "PUBLIC KEY" PKIX or "RSA PUBLIC KEY" PKCS #1 block). userClaim "" means
// "sub"; now nil means time.Now.
func NewVerifier(hsSecret []byte, publicKeyPEM string, userClaim string, now func() time.Time) (*Verifier, error) {
	hasSecret, hasPEM := len(hsSecret) > 0, strings.TrimSpace(publicKeyPEM) != ""
	if hasSecret == hasPEM {
		return nil, errors.New("access: exactly one of an HS256 secret or a PEM public key is required")
	}
	if userClaim == "" {
		userClaim = DefaultUserClaim
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{userClaim: userClaim}
	if hasSecret {
		v.key, v.method = append([]byte(nil), hsSecret...), jwt.SigningMethodHS256
	} else {
		key, method, err := parsePublicKey(publicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.key, v.method = key, method
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{v.method.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithJSONNumber(),
		jwt.WithStrictDecoding(),
	)
	return v, nil
}

// parsePublicKey reads the first PEM block and picks the one algorithm its
// key may verify.
func parsePublicKey(s string) (any, jwt.SigningMethod, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, nil, errors.New("access: public key is not PEM")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, nil, fmt.Errorf("access: PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("access: parse public key: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, nil, fmt.Errorf("access: RSA key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		return k, jwt.SigningMethodRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, nil, errors.New("access: ECDSA key must be on P-256 (ES256)")
		}
		return k, jwt.SigningMethodES256, nil
	default:
		return nil, nil, fmt.Errorf("access: unsupported public key type %T", pub)
	}
}

// UserID verifies tokenString and returns the user id from the configured
// claim: a JSON string, or an integral JSON number rendered in plain decimal
// (1 -> "1", 1e3 -> "1000"). Every failure is ErrInvalid.
func (v *Verifier) UserID(tokenString string) (string, error) {
	if tokenString == "" {
		return "", ErrMissing
	}
	if len(tokenString) > MaxTokenLen {
		return "", fmt.Errorf("%w: token longer than %d bytes", ErrInvalid, MaxTokenLen)
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(tokenString, claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already pins the alg; this keeps the key and the
		// method tied together even if the parser options change.
		if t.Method != v.method {
			return nil, fmt.Errorf("unexpected alg %v", t.Header["alg"])
		}
		return v.key, nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id, err := claimString(claims[v.userClaim])
	if err != nil {
		return "", fmt.Errorf("%w: claim %q: %w", ErrInvalid, v.userClaim, err)
	}
	return id, nil
}

// claimString renders a user claim decoded with json.Number and validates it.
func claimString(raw any) (string, error) {
	var id string
	switch x := raw.(type) {
	case string:
		id = x
	case json.Number:
		s, ok := integral(string(x))
		if !ok {
			return "", errors.New("number is not a small integer")
		}
		id = s
	case nil:
		return "", errors.New("absent or null")
	default:
		return "", fmt.Errorf("unsupported type %T", raw)
	}
	if !ValidUserID(id) {
		return "", errors.New("not 1-128 printable ASCII bytes without spaces")
	}
	return id, nil
}

// integral renders a JSON number literal as a plain decimal integer, without
// exponent or fraction, if its value is integral and has at most
// MaxUserIDLen digits. It works on the digits, never on a float, so large ids
// stay exact and huge exponents cost nothing.
func integral(lit string) (string, bool) {
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, expText, hasExp := strings.Cut(lit, "e")
	if !hasExp {
		mant, expText, hasExp = strings.Cut(lit, "E")
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expText)
		if err != nil || e > 10000 || e < -10000 {
			return "", false
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	// The value is 0.digits * 10^point.
	point := len(intPart) + exp
	trimmed := strings.TrimLeft(digits, "0")
	point -= len(digits) - len(trimmed)
	digits = trimmed
	if digits == "" {
		return "0", true
	}
	if point <= 0 || point > MaxUserIDLen {
		return "", false
	}
	if point < len(digits) {
		if strings.Trim(digits[point:], "0") != "" {
			return "", false
		}
		digits = digits[:point]
	} else {
		digits += strings.Repeat("0", point-len(digits))
	}
	if neg {
		digits = "-" + digits
	}
	return digits, true
}

// ValidUserID reports whether id is 1-128 bytes of printable ASCII without
// spaces, the only user ids this service passes on (into Redis keys and logs).
func ValidUserID(id string) bool {
	if id == "" || len(id) > MaxUserIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// BearerToken extracts the token from an Authorization header value
// ("Bearer <token>", scheme case-insensitive). ErrMissing if the header is
// absent, has another scheme or is malformed.
func BearerToken(header string) (string, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMissing
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", ErrMissing
	}
	return token, nil
}

// Sign mints an HS256 access token carrying userID in userClaim ("" means
// "sub"), issued at now and expiring after ttl. Only the local dev server's
// /dev/login and tests use it; production tokens come from the existing app.
func Sign(secret []byte, userClaim, userID string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("access: empty secret")
	}
	if ttl <= 0 {
		return "", errors.New("access: ttl must be positive")
	}
	if !ValidUserID(userID) {
		return "", errors.New("access: user id must be 1-128 printable ASCII bytes without spaces")
	}
	if userClaim == "" {
		userClaim = DefaultUserClaim
	}
	if userClaim == "iat" || userClaim == "exp" {
		return "", fmt.Errorf("access: user claim %q is reserved", userClaim)
	}
	claims := jwt.MapClaims{
		"iat":     now.Unix(),
		"exp":     now.Add(ttl).Unix(),
		userClaim: userID,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
