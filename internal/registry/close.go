package registry

import (
	"context"
	_ "embed"
	"errors"

	"github.com/machinedash/sse/internal/purpose"
)

var (
	//go:embed close.lua
	closeSrc    string
	closeScript = newScript(closeSrc)
)

// closeArgs are close.lua's arguments (see connectArgs).
type closeArgs struct {
	UserID     string `json:"userId"`   // the lease must be this user's
	TicketID   string `json:"ticketId"` // and this ticket's
	Grace      int64  `json:"grace"`    // ms the ended lease stays resumable
	ID         string `json:"id"`       // the lease
	Generation int64  `json:"gen,string"`
}

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
	keys := []string{r.keys.Lease(id), ticketKey, r.keys.UserLeases(userID, purpose.Alerts), r.keys.UserLeases(userID, purpose.Data), r.keys.UserGeneration(userID)}
	args := closeArgs{UserID: userID, TicketID: ticketID, Grace: r.grace.Milliseconds(), ID: id, Generation: generation}
	res, err := closeScript.Run(ctx, r.rdb, keys, scriptArgs(args)).Text()
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
	v, err := r.rdb.HMGet(ctx, r.keys.Lease(id), "userId", "purpose").Result()
	if err != nil {
		return "", "", false, err
	}
	u, _ := v[0].(string)
	ps, _ := v[1].(string)
	return u, purpose.Purpose(ps), u != "", nil
}
