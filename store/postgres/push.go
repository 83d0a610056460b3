package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

var _ store.Push = (*DB)(nil)

// The reads of subscriptions and settings are sqlstore.Reads'.

// AddPushSubscription implements store.Push.
func (db *DB) AddPushSubscription(ctx context.Context, sub herald.PushSubscription, max int) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.AddPushSubscription(ctx, shim{t}, sub, max) })
}

// DeletePushSubscription implements store.Push.
func (db *DB) DeletePushSubscription(ctx context.Context, userID int64, endpoint string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		return dialect.DeletePushSubscription(ctx, shim{t}, userID, endpoint)
	})
}

// DropPushEndpoint implements store.Push.
func (db *DB) DropPushEndpoint(ctx context.Context, endpoint string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.DropPushEndpoint(ctx, shim{t}, endpoint) })
}

// SetPushFocus implements store.Push.
func (db *DB) SetPushFocus(ctx context.Context, deviceID int64, until time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.SetPushFocus(ctx, shim{t}, deviceID, until) })
}

// SetPushPrefs implements store.Push.
func (db *DB) SetPushPrefs(ctx context.Context, userID int64, p herald.PushPrefs) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.SetPushPrefs(ctx, shim{t}, userID, p) })
}

// SetChatNotify implements store.Push.
func (db *DB) SetChatNotify(ctx context.Context, userID, chatID int64, n herald.ChatNotify) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.SetChatNotify(ctx, shim{t}, userID, chatID, n) })
}

// VAPIDKey implements store.Push.
func (db *DB) VAPIDKey(ctx context.Context, private, public []byte) ([]byte, []byte, error) {
	var priv, pub []byte
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		priv, pub, err = dialect.VAPIDKey(ctx, shim{t}, private, public)
		return err
	})
	return priv, pub, err
}
