package postgres

import (
	"context"

	"github.com/heraldim/herald"
)

// CreateCall implements store.Store. Both people's rows are locked, so two
// nodes placing calls to one person at once find one of them busy.
func (db *DB) CreateCall(ctx context.Context, c herald.Call) (int64, error) {
	var busy int64
	err := db.do(ctx, locks{users: []int64{c.CallerID, c.CalleeID}}, func(ctx context.Context, t *tx) error {
		var err error
		busy, err = dialect.CreateCall(ctx, shim{t}, c)
		return err
	})
	return busy, err
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
