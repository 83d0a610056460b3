package sqlite

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// The reads of files are sqlstore.Reads'.

// CreateFile implements store.Store.
func (db *DB) CreateFile(ctx context.Context, f herald.File) error {
	return db.do(ctx, func(tx querier) error { return dialect.CreateFile(ctx, shim{tx}, f) })
}

// ResealFile implements store.Store.
func (db *DB) ResealFile(ctx context.Context, id string, key []byte, sealedUntil time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.ResealFile(ctx, shim{tx}, id, key, sealedUntil) })
}

// DeleteFile implements store.Store.
func (db *DB) DeleteFile(ctx context.Context, id string) error {
	return db.do(ctx, func(tx querier) error { return dialect.DeleteFile(ctx, shim{tx}, id) })
}

// ReserveUpload implements store.Store. The single writer serialises
// reservations.
func (db *DB) ReserveUpload(ctx context.Context, id string, ownerID, size int64, at time.Time, quota int64) (int64, bool, error) {
	var used int64
	var ok bool
	err := db.do(ctx, func(tx querier) error {
		var err error
		used, ok, err = dialect.ReserveUpload(ctx, shim{tx}, id, ownerID, size, at, quota)
		return err
	})
	return used, ok, err
}

// ReleaseUpload implements store.Store.
func (db *DB) ReleaseUpload(ctx context.Context, id string) error {
	return db.do(ctx, func(tx querier) error { return dialect.ReleaseUpload(ctx, shim{tx}, id) })
}
