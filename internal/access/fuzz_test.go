package access

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/machinedash/sse/internal/jwttest"
)

// FuzzUserID feeds arbitrary strings to an HS256, an RS256 and an ES256
// verifier: none may panic or yield a user id for a token that the oracle
// does not see signed with its key and algorithm. The same input, taken as a
// claims payload and signed with the HS secret, must either be refused or
// yield a well-formed user id.
func FuzzUserID(f *testing.F) {
	k := keys(f)
	hs := jwt.SigningMethodHS256
	seeds := []string{
		jwttest.Mint(f, hs, hsSecret, claims(nil)),
		jwttest.Mint(f, hs, hsSecret, claims(map[string]any{"sub": 1})),
		jwttest.Mint(f, hs, hsSecret, claims(map[string]any{"sub": json.Number("1.5e3")})),
		jwttest.Mint(f, hs, hsSecret, claims(map[string]any{"nbf": t0.Unix()})),
		jwttest.Mint(f, jwt.SigningMethodRS256, k.rsa, claims(nil)),
		jwttest.Mint(f, jwt.SigningMethodES256, k.ec, claims(nil)),
		jwttest.Mint(f, hs, []byte(k.rsaPKIX), claims(nil)),
		jwttest.B64(`{"alg":"none"}`) + "." + jwttest.B64(`{"sub":"1","exp":1900000000}`) + ".",
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
			if !jwttest.SignedBy(s, vv.alg, vv.key) {
				t.Fatalf("%s verifier accepted a token not signed with its key: %q", vv.alg, s)
			}
			if !ValidUserID(id) {
				t.Fatalf("%s: malformed user id %q", vv.alg, id)
			}
		}

		// s as a payload signed with the right key: claim checks alone decide.
		tok := jwttest.HS256(t, hsSecret, `{"alg":"HS256","typ":"JWT"}`, s)
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
