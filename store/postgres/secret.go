package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

var _ store.Secret = (*DB)(nil)

// The reads of keys and envelopes are sqlstore.Reads'.

// PublishKeys implements store.Secret.
func (db *DB) PublishKeys(ctx context.Context, k herald.DeviceKeys, oneTime []herald.PreKey) (herald.KeyStatus, error) {
	var st herald.KeyStatus
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		st, err = dialect.PublishKeys(ctx, shim{t}, k, oneTime)
		return err
	})
	return st, err
}

// ClaimBundles implements store.Secret.
func (db *DB) ClaimBundles(ctx context.Context, userID int64, deviceIDs []int64) ([]herald.Bundle, error) {
	var out []herald.Bundle
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		out, err = dialect.ClaimBundles(ctx, shim{t}, sqlstore.ClaimPreKeyLocked, userID, deviceIDs)
		return err
	})
	return out, err
}

// Enqueue implements store.Secret.
func (db *DB) Enqueue(ctx context.Context, envs []herald.Envelope) ([]herald.Envelope, error) {
	var out []herald.Envelope
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		out, err = dialect.Enqueue(ctx, shim{t}, envs)
		return err
	})
	return out, err
}

// Ack implements store.Secret.
func (db *DB) Ack(ctx context.Context, deviceID int64, ids []int64) (int, error) {
	n := 0
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		n, err = dialect.Ack(ctx, shim{t}, deviceID, ids)
		return err
	})
	return n, err
}

// ExpireEnvelopes implements store.Secret.
func (db *DB) ExpireEnvelopes(ctx context.Context, now time.Time, limit int) (int, error) {
	n := 0
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		n, err = dialect.ExpireEnvelopes(ctx, shim{t}, now, limit)
		return err
	})
	return n, err
}

// GrantFile implements store.Secret.
func (db *DB) GrantFile(ctx context.Context, fileID string, userIDs []int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.GrantFile(ctx, shim{t}, fileID, userIDs) })
}

// ForgetDevice implements store.Secret.
func (db *DB) ForgetDevice(ctx context.Context, deviceID int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.ForgetDevice(ctx, shim{t}, deviceID) })
}

// CreateSecretGroup implements store.Secret.
func (db *DB) CreateSecretGroup(ctx context.Context, creator int64, members []int64, at time.Time) (int64, error) {
	var id int64
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		id, err = dialect.CreateSecretGroup(ctx, shim{t}, creator, members, at)
		return err
	})
	return id, err
}

// AddSecretGroupMembers implements store.Secret.
func (db *DB) AddSecretGroupMembers(ctx context.Context, groupID int64, userIDs []int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		return dialect.AddSecretGroupMembers(ctx, shim{t}, groupID, userIDs)
	})
}

// RemoveSecretGroupMember implements store.Secret.
func (db *DB) RemoveSecretGroupMember(ctx context.Context, groupID, userID int64) (bool, error) {
	var ok bool
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		ok, err = dialect.RemoveSecretGroupMember(ctx, shim{t}, groupID, userID)
		return err
	})
	return ok, err
}
