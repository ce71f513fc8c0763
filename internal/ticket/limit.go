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

// prepareScript runs before a ticket is made, in one round trip: it
// counts the issue in the user's fixed window (KEYS[1], "" for no limit;
// INCR with its PEXPIRE, so no counter is left without expiry) and reads
// the user's revocation generation (KEYS[2], "" when not tracked). It
// returns the count, the window's remaining ms and the generation.
var prepareScript = redis.NewScript(`
local n, ttl, gen = 0, 0, 0
if KEYS[1] ~= '' then
  n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
end
if KEYS[2] ~= '' then gen = tonumber(redis.call('GET', KEYS[2]) or '0') or 0 end
return {n, ttl, gen}
`)

// LimitIssue makes Issue refuse, with a *LimitError, more than n tickets
// per user within window; the counters live at keyPrefix+userID. n <= 0
// removes the limit.
func (s *Service) LimitIssue(n int, window time.Duration, keyPrefix string) {
	s.limit = issueLimit{n: n, window: window, keyPrefix: keyPrefix}
}

// TrackGeneration makes Issue stamp each ticket with its user's revocation
// generation, read from key(userID): the main app INCRs it to end every
// stream, ticket and cursor of the user issued before (the stream checks
// it at connect and at every lease renewal).
func (s *Service) TrackGeneration(key func(userID string) string) { s.genKey = key }

// prepare counts one issue for userID, reporting a *LimitError over the
// limit, and returns the user's revocation generation.
func (s *Service) prepare(ctx context.Context, userID string) (int64, error) {
	keys := []string{"", ""}
	if s.limit.n > 0 {
		keys[0] = s.limit.keyPrefix + userID
	}
	if s.genKey != nil {
		keys[1] = s.genKey(userID)
	}
	if keys[0] == "" && keys[1] == "" {
		return 0, nil
	}
	res, err := prepareScript.Run(ctx, s.rdb, keys, s.limit.window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("ticket: prepare: %w", err)
	}
	if s.limit.n > 0 && res[0] > int64(s.limit.n) {
		return 0, &LimitError{RetryAfter: time.Duration(res[1]) * time.Millisecond}
	}
	return res[2], nil
}
