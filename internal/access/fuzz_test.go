package access

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signedBy is an oracle independent of the jwt library: it reports whether
// token's header names alg and its signature verifies with key.
func signedBy(token, alg string, key any) bool {
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

// FuzzUserID feeds arbitrary strings to an HS256, an RS256 and an ES256
// verifier: none may panic or yield a user id for a token that the oracle
// does not see signed with its key and algorithm. The same input, taken as a
// claims payload and signed with the HS secret, must either be refused or
// yield a well-formed user id.
func FuzzUserID(f *testing.F) {
	k := keys(f)
	hs := jwt.SigningMethodHS256
	seeds := []string{
		mint(f, hs, hsSecret, claims(nil)),
		mint(f, hs, hsSecret, claims(map[string]any{"sub": 1})),
		mint(f, hs, hsSecret, claims(map[string]any{"sub": json.Number("1.5e3")})),
		mint(f, hs, hsSecret, claims(map[string]any{"nbf": t0.Unix()})),
		mint(f, jwt.SigningMethodRS256, k.rsa, claims(nil)),
		mint(f, jwt.SigningMethodES256, k.ec, claims(nil)),
		mint(f, hs, []byte(k.rsaPKIX), claims(nil)),
		b64(`{"alg":"none"}`) + "." + b64(`{"sub":"1","exp":1900000000}`) + ".",
		`{"sub":"1","exp":1900000000}`,
		`{"sub":12345678901234567890,"exp":1900000000,"iat":1}`,
		`{"sub":"x","exp":1e300}`,
		"",
		"a.b.c",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	verifiers := []struct {
		v   *Verifier
		alg string
		key any
	}{
		{k.hsVerifier, "HS256", hsSecret},
		{k.rsaVerifier, "RS256", &k.rsa.PublicKey},
		{k.ecVerifier, "ES256", &k.ec.PublicKey},
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, vv := range verifiers {
			id, err := vv.v.UserID(s)
			if err != nil {
				if id != "" {
					t.Fatalf("%s: id %q returned with error %v", vv.alg, id, err)
				}
				continue
			}
			if !signedBy(s, vv.alg, vv.key) {
				t.Fatalf("%s verifier accepted a token not signed with its key: %q", vv.alg, s)
			}
			if !ValidUserID(id) {
				t.Fatalf("%s: malformed user id %q", vv.alg, id)
			}
		}

		// s as a payload signed with the right key: claim checks alone decide.
		tok := hsRaw(t, hsSecret, `{"alg":"HS256","typ":"JWT"}`, s)
		id, err := k.hsVerifier.UserID(tok)
		if err != nil {
			return
		}
		if !ValidUserID(id) {
			t.Fatalf("malformed user id %q from payload %q", id, s)
		}
		var c map[string]any
		if json.Unmarshal([]byte(s), &c) != nil {
			t.Fatalf("accepted a payload that is not a JSON object: %q", s)
		}
		exp, ok := c["exp"].(float64)
		if !ok || exp < float64(t0.Add(-Leeway-time.Second).Unix()) {
			t.Fatalf("accepted payload without a live exp: %q", s)
		}
	})
}
