// Package jwttest mints and inspects JWTs for tests of the access-token
// verifier and the stream tickets: tokens signed by the jwt library, tokens
// from hand-written JSON, claim sets with overrides, keys made once per test
// binary, and a signature oracle that does not use the jwt library.
//
// Invariant: nothing here verifies a token the way production code does;
// SignedBy is an independent check (only HS256, RS256 and ES256), so a
// fuzz test can compare the verifier with it.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Mint signs claims c with method m and key.
func Mint(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// B64 is a JWT segment: unpadded base64url.
func B64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// HS256 signs hand-written header and payload JSON with HS256 and secret,
// for tokens the jwt library would not write (duplicate keys, odd types).
func HS256(t testing.TB, secret []byte, header, payload string) string {
	t.Helper()
	signing := B64(header) + "." + B64(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signing, secret)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// With returns a copy of base with overrides applied; a nil override value
// deletes the claim.
func With(base jwt.MapClaims, over map[string]any) jwt.MapClaims {
	c := make(jwt.MapClaims, len(base)+len(over))
	for k, v := range base {
		c[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// Keys are private keys for the asymmetric algorithms.
type Keys struct {
	RSA, RSAOther *rsa.PrivateKey // 2048 bits
	RSA1024       *rsa.PrivateKey
	EC, ECOther   *ecdsa.PrivateKey // P-256
	EC384         *ecdsa.PrivateKey
}

// keysOnce: RSA generation is slow under -race, so once per test binary.
var keysOnce = sync.OnceValues(func() (*Keys, error) {
	k := &Keys{}
	var err error
	for _, r := range []struct {
		dst  **rsa.PrivateKey
		bits int
	}{{&k.RSA, 2048}, {&k.RSAOther, 2048}, {&k.RSA1024, 1024}} {
		if *r.dst, err = rsa.GenerateKey(rand.Reader, r.bits); err != nil {
			return nil, err
		}
	}
	for _, e := range []struct {
		dst   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&k.EC, elliptic.P256()}, {&k.ECOther, elliptic.P256()}, {&k.EC384, elliptic.P384()}} {
		if *e.dst, err = ecdsa.GenerateKey(e.curve, rand.Reader); err != nil {
			return nil, err
		}
	}
	return k, nil
})

// Generate returns the test binary's keys, made on first use.
func Generate() (*Keys, error) { return keysOnce() }

// TestKeys is Generate for a test: it fails the test on an error.
func TestKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	return k
}

// SignedBy is an oracle independent of the jwt library: it reports whether
// token's header names alg and its signature verifies with key (a []byte
// HMAC secret, an *rsa.PublicKey or an *ecdsa.PublicKey of P-256).
func SignedBy(token, alg string, key any) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != alg {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch k := key.(type) {
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(parts[0] + "." + parts[1]))
		return hmac.Equal(sig, m.Sum(nil))
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, sum[:], r, s)
	}
	return false
}
