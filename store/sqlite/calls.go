package sqlite

import (
	"context"

	"github.com/heraldim/herald"
)

// CreateCall implements store.Store.
func (db *DB) CreateCall(ctx context.Context, c herald.Call) error {
	return db.do(ctx, func(tx querier) error { return dialect.CreateCall(ctx, shim{tx}, c) })
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
