package registry

import (
	"context"
	_ "embed"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/machinedash/sse/internal/purpose"
)

var (
	//go:embed close.lua
	closeSrc    string
	closeScript = redis.NewScript(closeSrc)
)

// ErrNotLive is Close's refusal: no live lease of that id belongs to the
// given user and ticket (forged, foreign, ended or expired alike, so a
// caller learns nothing about other users' streams).
var ErrNotLive = errors.New("registry: no such live stream")

// Close ends a live lease on its client's request: the slot is free at
// once and the lease stays resumable for the grace window. Only the lease's
// own user and ticket may close it. A revoked ticket (its record deleted,
// or generation, the ticket's, behind the user's revocation generation)
// gets ErrRevoked, as from Connect, whatever the id.
// The caller tells the process serving it through the control channel.
func (r *Registry) Close(ctx context.Context, id, userID, ticketKey, ticketID string, generation int64) error {
	keys := []string{r.leaseKey(id), ticketKey, r.userKey(userID, purpose.Alerts), r.userKey(userID, purpose.Data), r.keys.UserGeneration(userID)}
	res, err := closeScript.Run(ctx, r.rdb, keys, userID, ticketID, r.grace.Milliseconds(), id, generation).Text()
	if err != nil {
		return err
	}
	switch res {
	case "ok":
		return nil
	case "revoked":
		return ErrRevoked
	}
	return ErrNotLive
}

// Owner returns the user and purpose of a lease that still has its record
// (live, or ended within the grace window); found is false once it is gone.
func (r *Registry) Owner(ctx context.Context, id string) (userID string, p purpose.Purpose, found bool, err error) {
	v, err := r.rdb.HMGet(ctx, r.leaseKey(id), "userId", "purpose").Result()
	if err != nil {
		return "", "", false, err
	}
	u, _ := v[0].(string)
	ps, _ := v[1].(string)
	return u, purpose.Purpose(ps), u != "", nil
}
