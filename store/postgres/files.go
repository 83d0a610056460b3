package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// The reads of files are sqlstore.Reads'.

// CreateFile implements store.Store.
func (db *DB) CreateFile(ctx context.Context, f herald.File) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.CreateFile(ctx, shim{t}, f) })
}

// ResealFile implements store.Store.
func (db *DB) ResealFile(ctx context.Context, id string, key []byte, sealedUntil time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		return dialect.ResealFile(ctx, shim{t}, id, key, sealedUntil)
	})
}

// DeleteFile implements store.Store.
func (db *DB) DeleteFile(ctx context.Context, id string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.DeleteFile(ctx, shim{t}, id) })
}

// ReserveUpload implements store.Store. The owner's row lock (taken by the
// writer before the op runs) serialises one owner's reservations on every
// node.
func (db *DB) ReserveUpload(ctx context.Context, id string, ownerID, size int64, at time.Time, quota int64) (int64, bool, error) {
	var used int64
	var ok bool
	err := db.do(ctx, locks{users: []int64{ownerID}}, func(ctx context.Context, t *tx) error {
		var err error
		used, ok, err = dialect.ReserveUpload(ctx, shim{t}, id, ownerID, size, at, quota)
		return err
	})
	return used, ok, err
}

// ReleaseUpload implements store.Store.
func (db *DB) ReleaseUpload(ctx context.Context, id string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.ReleaseUpload(ctx, shim{t}, id) })
}
