package ticket

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// BenchmarkParse is a connect's ticket check: signature, alg and claims of a
// ticket as Issue signs it, without Redis.
func BenchmarkParse(b *testing.B) {
	s := offlineService(b, func() time.Time { return t0 })
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, wireClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "user-1", ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(DefaultTTL)),
	}, Purpose: []byte(`"data"`), Gen: 3}).SignedString(s.secret)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
