package postgres

import (
	"context"

	"github.com/heraldim/herald"
)

// CreateCall implements store.Store. Both people's rows are locked, so two
// nodes placing calls to one person at once find one of them busy.
func (db *DB) CreateCall(ctx context.Context, c herald.Call) error {
	return db.do(ctx, locks{users: []int64{c.CallerID, c.CalleeID}}, func(ctx context.Context, t *tx) error {
		return dialect.CreateCall(ctx, shim{t}, c)
	})
}

// UpdateCall implements store.Store.
func (db *DB) UpdateCall(ctx context.Context, c herald.Call, from herald.CallState) (bool, error) {
	var ok bool
	err := db.do(ctx, locks{users: []int64{c.CallerID, c.CalleeID}}, func(ctx context.Context, t *tx) error {
		var err error
		ok, err = dialect.UpdateCall(ctx, shim{t}, c, from)
		return err
	})
	return ok, err
}
