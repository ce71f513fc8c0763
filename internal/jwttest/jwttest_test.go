package jwttest

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestSignedBy: the oracle sees what the jwt library signed, and nothing
// with another key, another algorithm in the header or a changed payload.
func TestSignedBy(t *testing.T) {
	t.Parallel()
	k := TestKeys(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := With(jwt.MapClaims{"sub": "1", "x": 1}, map[string]any{"x": nil, "y": "z"})
	if _, ok := c["x"]; ok || c["y"] != "z" || c["sub"] != "1" {
		t.Fatalf("With = %v", c)
	}
	for _, tc := range []struct {
		alg        string
		m          jwt.SigningMethod
		key, right any
		wrong      any
	}{
		{"HS256", jwt.SigningMethodHS256, secret, secret, []byte("another secret, just as long...!")},
		{"RS256", jwt.SigningMethodRS256, k.RSA, &k.RSA.PublicKey, &k.RSAOther.PublicKey},
		{"ES256", jwt.SigningMethodES256, k.EC, &k.EC.PublicKey, &k.ECOther.PublicKey},
	} {
		tok := Mint(t, tc.m, tc.key, c)
		if !SignedBy(tok, tc.alg, tc.right) {
			t.Errorf("%s: a token it signed is not seen as signed", tc.alg)
		}
		if SignedBy(tok, tc.alg, tc.wrong) {
			t.Errorf("%s: signed with another key", tc.alg)
		}
		if SignedBy(tok, "HS384", tc.right) {
			t.Errorf("%s: header alg not checked", tc.alg)
		}
		p := strings.Split(tok, ".")
		if SignedBy(p[0]+"."+B64(`{"sub":"2"}`)+"."+p[2], tc.alg, tc.right) {
			t.Errorf("%s: changed payload seen as signed", tc.alg)
		}
	}
	if raw := HS256(t, secret, `{"alg":"HS256"}`, `{"sub":"1","sub":"2"}`); !SignedBy(raw, "HS256", secret) {
		t.Error("HS256 of hand-written JSON is not seen as signed")
	}
}
