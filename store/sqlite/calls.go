package sqlite

import (
	"context"

	"github.com/heraldim/herald"
)

// CreateCall implements store.Store.
func (db *DB) CreateCall(ctx context.Context, c herald.Call) (int64, error) {
	var busy int64
	err := db.do(ctx, func(tx querier) error {
		var err error
		busy, err = dialect.CreateCall(ctx, shim{tx}, c)
		return err
	})
	return busy, err
}

// UpdateCall implements store.Store.
func (db *DB) UpdateCall(ctx context.Context, c herald.Call, from herald.CallState) (bool, error) {
	var ok bool
	err := db.do(ctx, func(tx querier) error {
		var err error
		ok, err = dialect.UpdateCall(ctx, shim{tx}, c, from)
		return err
	})
	return ok, err
}
