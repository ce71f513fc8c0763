package access

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/machinedash/sse/internal/jwttest"
)

var t0 = time.Date(2026, 1, 28, 21, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

var hsSecret = []byte("access-test-secret-0123456789abcdef")

// testKeys are generated once per test binary: RSA generation is slow under -race.
type testKeys struct {
	rsa, rsaOther  *rsa.PrivateKey
	rsaPKIX        string
	rsaPKCS1       string
	rsa1024PKIX    string
	ec, ecOther    *ecdsa.PrivateKey
	ecPEM          string
	ec384          *ecdsa.PrivateKey
	ec384PEM       string
	ed25519PEM     string
	rsaPrivatePEM  string
	certificatePEM string
	hsVerifier     *Verifier
	rsaVerifier    *Verifier
	rsaPKCS1Verif  *Verifier
	ecVerifier     *Verifier
	customVerifier *Verifier
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	pk, err := jwttest.Generate()
	if err != nil {
		return nil, err
	}
	k := &testKeys{rsa: pk.RSA, rsaOther: pk.RSAOther, ec: pk.EC, ecOther: pk.ECOther, ec384: pk.EC384}
	small := pk.RSA1024
	pkix := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	k.rsaPKIX = pkix(&k.rsa.PublicKey)
	k.rsaPKCS1 = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
	k.rsa1024PKIX = pkix(&small.PublicKey)
	k.ecPEM = pkix(&k.ec.PublicKey)
	k.ec384PEM = pkix(&k.ec384.PublicKey)
	// A fixed Ed25519 SubjectPublicKeyInfo (RFC 8410 example key).
	k.ed25519PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	k.rsaPrivatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	k.certificatePEM = "-----BEGIN CERTIFICATE-----\n" + strings.TrimSpace(strings.Split(k.rsaPKIX, "\n")[1]) + "\n-----END CERTIFICATE-----\n"

	mk := func(secret []byte, pemText, claim string) *Verifier {
		v, err := NewVerifier(secret, pemText, claim, fixedNow)
		if err != nil {
			panic(err)
		}
		return v
	}
	k.hsVerifier = mk(hsSecret, "", "")
	k.rsaVerifier = mk(nil, k.rsaPKIX, "")
	k.rsaPKCS1Verif = mk(nil, k.rsaPKCS1, "")
	k.ecVerifier = mk(nil, k.ecPEM, "")
	k.customVerifier = mk(hsSecret, "", "userId")
	return k, nil
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	return k
}

// claims returns valid claims for t0 with overrides applied; a nil override
// value deletes the claim.
func claims(over map[string]any) jwt.MapClaims {
	return jwttest.With(jwt.MapClaims{
		"sub": "42",
		"iat": t0.Add(-time.Minute).Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(),
	}, over)
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	k := keys(t)
	tests := []struct {
		name    string
		secret  []byte
		pem     string
		wantAlg string
		wantErr bool
	}{
		{name: "secret is HS256", secret: hsSecret, wantAlg: "HS256"},
		{name: "RSA PKIX is RS256", pem: k.rsaPKIX, wantAlg: "RS256"},
		{name: "RSA PKCS1 is RS256", pem: k.rsaPKCS1, wantAlg: "RS256"},
		{name: "P-256 is ES256", pem: k.ecPEM, wantAlg: "ES256"},
		{name: "PEM with surrounding whitespace", pem: "\n  " + k.ecPEM + "\n\n", wantAlg: "ES256"},
		{name: "neither", wantErr: true},
		{name: "both", secret: hsSecret, pem: k.rsaPKIX, wantErr: true},
		{name: "not PEM", pem: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", wantErr: true},
		{name: "P-384 refused", pem: k.ec384PEM, wantErr: true},
		{name: "Ed25519 refused", pem: k.ed25519PEM, wantErr: true},
		{name: "RSA 1024 refused", pem: k.rsa1024PKIX, wantErr: true},
		{name: "private key block refused", pem: k.rsaPrivatePEM, wantErr: true},
		{name: "certificate block refused", pem: k.certificatePEM, wantErr: true},
		{name: "garbage in PUBLIC KEY block", pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(tt.secret, tt.pem, "", nil)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewVerifier: want error, got verifier with %s", v.method.Alg())
				}
				return
			}
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if got := v.method.Alg(); got != tt.wantAlg {
				t.Errorf("alg = %s, want %s", got, tt.wantAlg)
			}
			if v.userClaim != "sub" {
				t.Errorf("userClaim = %q, want default sub", v.userClaim)
			}
		})
	}
}

func TestUserID(t *testing.T) {
	t.Parallel()
	k := keys(t)
	hs256 := jwt.SigningMethodHS256
	pemAsSecret := []byte(k.rsaPKIX)
	noneHeader := func(alg string) string { return jwttest.B64(`{"alg":"` + alg + `","typ":"JWT"}`) }
	validPayload := func() string {
		b, _ := json.Marshal(claims(nil))
		return jwttest.B64(string(b))
	}
	hsValid := func() string { return jwttest.Mint(t, hs256, hsSecret, claims(nil)) }

	tests := []struct {
		name    string
		v       *Verifier
		token   string
		want    string
		wantErr error
	}{
		// Accepted.
		{name: "HS256 string sub", v: k.hsVerifier, token: hsValid(), want: "42"},
		{name: "numeric sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": 1})), want: "1"},
		{name: "numeric sub 1.0 is integral", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("1.0")})), want: "1"},
		{name: "numeric sub 1e3", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("1e3")})), want: "1000"},
		{name: "numeric sub 2.5E1", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("2.5E1")})), want: "25"},
		{name: "numeric sub beyond float64 precision stays exact", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("12345678901234567891")})), want: "12345678901234567891"},
		{name: "numeric sub 0", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": 0})), want: "0"},
		{name: "custom user claim", v: k.customVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"userId": "u-7", "sub": "other"})), want: "u-7"},
		{name: "custom user claim numeric", v: k.customVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"userId": 7, "sub": nil})), want: "7"},
		{name: "RS256 PKIX", v: k.rsaVerifier, token: jwttest.Mint(t, jwt.SigningMethodRS256, k.rsa, claims(nil)), want: "42"},
		{name: "RS256 PKCS1", v: k.rsaPKCS1Verif, token: jwttest.Mint(t, jwt.SigningMethodRS256, k.rsa, claims(nil)), want: "42"},
		{name: "ES256", v: k.ecVerifier, token: jwttest.Mint(t, jwt.SigningMethodES256, k.ec, claims(nil)), want: "42"},
		{name: "expired within leeway", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"exp": t0.Add(-29 * time.Second).Unix()})), want: "42"},
		{name: "nbf within leeway", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"nbf": t0.Add(29 * time.Second).Unix()})), want: "42"},
		{name: "no iat", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"iat": nil})), want: "42"},
		{name: "max length id", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": strings.Repeat("a", 128)})), want: strings.Repeat("a", 128)},

		// Refused: time.
		{name: "expired", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"exp": t0.Add(-31 * time.Second).Unix()})), wantErr: ErrInvalid},
		{name: "no exp", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"exp": nil})), wantErr: ErrInvalid},
		{name: "exp as string", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"exp": "2099-01-01"})), wantErr: ErrInvalid},
		{name: "not yet valid", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"nbf": t0.Add(31 * time.Second).Unix()})), wantErr: ErrInvalid},
		{name: "issued in the future", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"iat": t0.Add(time.Minute).Unix()})), wantErr: ErrInvalid},

		// Refused: user claim.
		{name: "no user claim", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": nil})), wantErr: ErrInvalid},
		{name: "custom claim absent though sub present", v: k.customVerifier, token: hsValid(), wantErr: ErrInvalid},
		{name: "empty sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": ""})), wantErr: ErrInvalid},
		{name: "null sub", v: k.hsVerifier, token: jwttest.HS256(t, hsSecret, `{"alg":"HS256","typ":"JWT"}`, `{"sub":null,"exp":1900000000}`), wantErr: ErrInvalid},
		{name: "bool sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": true})), wantErr: ErrInvalid},
		{name: "object sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": map[string]any{"id": 1}})), wantErr: ErrInvalid},
		{name: "array sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": []any{"1"}})), wantErr: ErrInvalid},
		{name: "non-integral sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": 1.5})), wantErr: ErrInvalid},
		{name: "tiny sub 1e-3", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("1e-3")})), wantErr: ErrInvalid},
		{name: "huge exponent sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("1e999999999")})), wantErr: ErrInvalid},
		{name: "129 digit sub", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": json.Number("1e128")})), wantErr: ErrInvalid},
		{name: "sub too long", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": strings.Repeat("a", 129)})), wantErr: ErrInvalid},
		{name: "sub with space", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": "a b"})), wantErr: ErrInvalid},
		{name: "sub with newline", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": "a\nb"})), wantErr: ErrInvalid},
		{name: "sub non-ASCII", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"sub": "ü"})), wantErr: ErrInvalid},

		// Refused: signature and algorithm.
		{name: "wrong secret", v: k.hsVerifier, token: jwttest.Mint(t, hs256, []byte("another-secret-another-secret-xx"), claims(nil)), wantErr: ErrInvalid},
		{name: "tampered payload", v: k.hsVerifier, token: func() string {
			p := strings.Split(hsValid(), ".")
			b, _ := json.Marshal(claims(map[string]any{"sub": "1"}))
			return p[0] + "." + jwttest.B64(string(b)) + "." + p[2]
		}(), wantErr: ErrInvalid},
		{name: "tampered signature", v: k.hsVerifier, token: func() string {
			s := hsValid()
			last := s[len(s)-2]
			if last == 'A' {
				last = 'B'
			} else {
				last = 'A'
			}
			return s[:len(s)-2] + string(last) + s[len(s)-1:]
		}(), wantErr: ErrInvalid},
		{name: "alg none", v: k.hsVerifier, token: noneHeader("none") + "." + validPayload() + ".", wantErr: ErrInvalid},
		{name: "alg None", v: k.hsVerifier, token: noneHeader("None") + "." + validPayload() + ".", wantErr: ErrInvalid},
		{name: "alg none against RSA", v: k.rsaVerifier, token: noneHeader("none") + "." + validPayload() + ".", wantErr: ErrInvalid},
		{name: "alg none with HS signature", v: k.hsVerifier, token: func() string {
			p := strings.Split(hsValid(), ".")
			return noneHeader("none") + "." + p[1] + "." + p[2]
		}(), wantErr: ErrInvalid},
		{name: "no alg", v: k.hsVerifier, token: jwttest.HS256(t, hsSecret, `{"typ":"JWT"}`, `{"sub":"42","exp":1900000000}`), wantErr: ErrInvalid},
		{name: "alg confusion: HS256 keyed with the RSA PEM", v: k.rsaVerifier, token: jwttest.Mint(t, hs256, pemAsSecret, claims(nil)), wantErr: ErrInvalid},
		{name: "alg confusion: HS256 keyed with the EC PEM", v: k.ecVerifier, token: jwttest.Mint(t, hs256, []byte(k.ecPEM), claims(nil)), wantErr: ErrInvalid},
		{name: "HS384 with the right secret", v: k.hsVerifier, token: jwttest.Mint(t, jwt.SigningMethodHS384, hsSecret, claims(nil)), wantErr: ErrInvalid},
		{name: "RS256 against HS verifier", v: k.hsVerifier, token: jwttest.Mint(t, jwt.SigningMethodRS256, k.rsa, claims(nil)), wantErr: ErrInvalid},
		{name: "ES256 against HS verifier", v: k.hsVerifier, token: jwttest.Mint(t, jwt.SigningMethodES256, k.ec, claims(nil)), wantErr: ErrInvalid},
		{name: "ES256 against RSA verifier", v: k.rsaVerifier, token: jwttest.Mint(t, jwt.SigningMethodES256, k.ec, claims(nil)), wantErr: ErrInvalid},
		{name: "RS256 against EC verifier", v: k.ecVerifier, token: jwttest.Mint(t, jwt.SigningMethodRS256, k.rsa, claims(nil)), wantErr: ErrInvalid},
		{name: "PS256 with the right RSA key", v: k.rsaVerifier, token: jwttest.Mint(t, jwt.SigningMethodPS256, k.rsa, claims(nil)), wantErr: ErrInvalid},
		{name: "RS512 with the right RSA key", v: k.rsaVerifier, token: jwttest.Mint(t, jwt.SigningMethodRS512, k.rsa, claims(nil)), wantErr: ErrInvalid},
		{name: "ES384 against EC verifier", v: k.ecVerifier, token: jwttest.Mint(t, jwt.SigningMethodES384, k.ec384, claims(nil)), wantErr: ErrInvalid},
		{name: "RS256 other key", v: k.rsaVerifier, token: jwttest.Mint(t, jwt.SigningMethodRS256, k.rsaOther, claims(nil)), wantErr: ErrInvalid},
		{name: "ES256 other key", v: k.ecVerifier, token: jwttest.Mint(t, jwt.SigningMethodES256, k.ecOther, claims(nil)), wantErr: ErrInvalid},

		// Refused: shape.
		{name: "empty", v: k.hsVerifier, token: "", wantErr: ErrMissing},
		{name: "one segment", v: k.hsVerifier, token: "abc", wantErr: ErrInvalid},
		{name: "two segments", v: k.hsVerifier, token: "a.b", wantErr: ErrInvalid},
		{name: "four segments", v: k.hsVerifier, token: hsValid() + ".x", wantErr: ErrInvalid},
		{name: "garbage segments", v: k.hsVerifier, token: "a.b.c", wantErr: ErrInvalid},
		{name: "padded base64", v: k.hsVerifier, token: func() string {
			p := strings.Split(hsValid(), ".")
			return p[0] + "." + p[1] + "=." + p[2]
		}(), wantErr: ErrInvalid},
		{name: "payload not an object", v: k.hsVerifier, token: jwttest.HS256(t, hsSecret, `{"alg":"HS256"}`, `[1,2]`), wantErr: ErrInvalid},
		{name: "over MaxTokenLen", v: k.hsVerifier, token: jwttest.Mint(t, hs256, hsSecret, claims(map[string]any{"pad": strings.Repeat("x", MaxTokenLen)})), wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.v.UserID(tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != "" {
					t.Fatalf("UserID = %q, %v; want \"\", %v", got, err, tt.wantErr)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("UserID = %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

func TestUserIDUsesInjectedClock(t *testing.T) {
	t.Parallel()
	now := t0
	v, err := NewVerifier(hsSecret, "", "", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Sign(hsSecret, "", "42", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.UserID(tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	now = t0.Add(time.Minute + Leeway)
	if _, err := v.UserID(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("after exp+leeway: err = %v, want ErrInvalid", err)
	}
}

func TestIntegral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lit  string
		want string
		ok   bool
	}{
		{"1", "1", true},
		{"-1", "-1", true},
		{"0", "0", true},
		{"-0", "0", true},
		{"0.0", "0", true},
		{"0e5", "0", true},
		{"007", "7", true},
		{"1.000", "1", true},
		{"1e0", "1", true},
		{"1E+2", "100", true},
		{"1.5e1", "15", true},
		{"1500e-2", "15", true},
		{"120e-1", "12", true},
		{"1e127", "1" + strings.Repeat("0", 127), true},
		{"1e128", "", false},
		{"1.5", "", false},
		{"15e-2", "", false},
		{"0.1", "", false},
		{"1e-1", "", false},
		{"1e99999999999999999999", "", false},
		{"", "", false},
		{"e5", "", false},
		{"1x", "", false},
	}
	for _, tt := range tests {
		got, ok := integral(tt.lit)
		if got != tt.want || ok != tt.ok {
			t.Errorf("integral(%q) = %q, %v; want %q, %v", tt.lit, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header  string
		want    string
		wantErr bool
	}{
		{header: "Bearer abc.def.ghi", want: "abc.def.ghi"},
		{header: "bearer abc", want: "abc"},
		{header: "BEARER abc", want: "abc"},
		{header: "  Bearer   abc  ", want: "abc"},
		{header: "", wantErr: true},
		{header: "Bearer", wantErr: true},
		{header: "Bearer ", wantErr: true},
		{header: "Bearerabc", wantErr: true},
		{header: "Basic abc", wantErr: true},
		{header: "Token abc", wantErr: true},
		{header: "Bearer a b", wantErr: true},
		{header: "Bearer a\tb", wantErr: true},
		{header: "abc", wantErr: true},
	}
	for _, tt := range tests {
		got, err := BearerToken(tt.header)
		if tt.wantErr {
			if !errors.Is(err, ErrMissing) || got != "" {
				t.Errorf("BearerToken(%q) = %q, %v; want ErrMissing", tt.header, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", tt.header, got, err, tt.want)
		}
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	k := keys(t)
	tok, err := Sign(hsSecret, "userId", "u-1", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.customVerifier.UserID(tok); err != nil || got != "u-1" {
		t.Fatalf("custom claim round trip = %q, %v", got, err)
	}
	if _, err := k.hsVerifier.UserID(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sub verifier on userId token: err = %v, want ErrInvalid", err)
	}
	for name, call := range map[string]func() (string, error){
		"empty secret":  func() (string, error) { return Sign(nil, "", "1", time.Hour, t0) },
		"zero ttl":      func() (string, error) { return Sign(hsSecret, "", "1", 0, t0) },
		"bad user id":   func() (string, error) { return Sign(hsSecret, "", "a b", time.Hour, t0) },
		"claim exp":     func() (string, error) { return Sign(hsSecret, "exp", "1", time.Hour, t0) },
		"empty user id": func() (string, error) { return Sign(hsSecret, "", "", time.Hour, t0) },
	} {
		if tok, err := call(); err == nil {
			t.Errorf("%s: Sign = %q, want error", name, tok)
		}
	}
}
