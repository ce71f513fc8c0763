package ticket

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LimitError is ErrRateLimited with the time until the user's window ends.
type LimitError struct{ RetryAfter time.Duration }

func (e *LimitError) Error() string { return ErrRateLimited.Error() }
func (e *LimitError) Is(err error) bool {
	return err == ErrRateLimited
}

// issueLimit caps how many tickets one user is issued per window: each is
// a Redis record that lives up to an hour, so an unbounded loop of them is
// an unbounded amount of Redis memory.
type issueLimit struct {
	n         int
	window    time.Duration
	keyPrefix string
}

// countScript counts one issue in the user's fixed window; it returns the
// count and the window's remaining milliseconds. INCR and PEXPIRE in one
// script, so a counter can never be left without its expiry.
var countScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {n, ttl}
`)

// LimitIssue makes Issue refuse, with a *LimitError, more than n tickets
// per user within window; the counters live at keyPrefix+userID. n <= 0
// removes the limit.
func (s *Service) LimitIssue(n int, window time.Duration, keyPrefix string) {
	s.limit = issueLimit{n: n, window: window, keyPrefix: keyPrefix}
}

// allow counts one issue for userID and reports a *LimitError over the
// limit.
func (s *Service) allow(ctx context.Context, userID string) error {
	if s.limit.n <= 0 {
		return nil
	}
	res, err := countScript.Run(ctx, s.rdb, []string{s.limit.keyPrefix + userID}, s.limit.window.Milliseconds()).Int64Slice()
	if err != nil {
		return fmt.Errorf("ticket: issue limit: %w", err)
	}
	if res[0] > int64(s.limit.n) {
		return &LimitError{RetryAfter: time.Duration(res[1]) * time.Millisecond}
	}
	return nil
}
