package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald/store"
)

var _ store.Annotations = (*DB)(nil)

// SetReaction implements store.Annotations.
func (db *DB) SetReaction(ctx context.Context, chatID, seq, userID int64, emoji string, on bool, at time.Time) (bool, error) {
	var changed bool
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		changed, err = dialect.SetReaction(ctx, shim{t}, chatID, seq, userID, emoji, on, at)
		return err
	})
	return changed, err
}

// AddMentions implements store.Annotations.
func (db *DB) AddMentions(ctx context.Context, chatID, seq int64, userIDs []int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		return dialect.AddMentions(ctx, shim{t}, chatID, seq, userIDs)
	})
}

// SetPin implements store.Annotations.
func (db *DB) SetPin(ctx context.Context, chatID, seq, by int64, on bool, at time.Time) (bool, error) {
	var changed bool
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		changed, err = dialect.SetPin(ctx, shim{t}, chatID, seq, by, on, at)
		return err
	})
	return changed, err
}
