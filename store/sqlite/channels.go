package sqlite

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// ChatByName, BroadcastChats and ChatInvite are sqlstore.Reads'.

// CreateChannel implements store.Store.
func (db *DB) CreateChannel(ctx context.Context, c herald.Chat) (herald.Chat, []herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		c.Kind, c.Broadcast = herald.Channel, true
		if err := dialect.InsertChat(ctx, shim{tx}, &c); err != nil {
			return err
		}
		if c.Username != "" {
			if _, err := tx.ExecContext(ctx, sqlstore.InsertChatName, c.Username, c.ID); err != nil {
				return dialect.Taken("CreateChannel", err, "name", c.Username)
			}
		}
		if _, err := addMember(ctx, tx, c.ID, c.CreatedBy, herald.RoleOwner, c.CreatedAt); err != nil {
			return err
		}
		u := herald.Update{UserID: c.CreatedBy, Kind: herald.UpdChatJoined, ChatID: c.ID, ActorID: c.CreatedBy, At: c.CreatedAt}
		if err := logUpdate(ctx, tx, &u); err != nil {
			return err
		}
		ups = []herald.Update{u}
		var err error
		c, err = chatByID(ctx, tx, c.ID)
		return err
	})
	return c, ups, err
}

// UpdateChat implements store.Store.
func (db *DB) UpdateChat(ctx context.Context, c herald.Chat) error {
	return db.do(ctx, func(tx querier) error { return dialect.UpdateChat(ctx, shim{tx}, c) })
}

// SetMuted implements store.Store.
func (db *DB) SetMuted(ctx context.Context, chatID, userID int64, muted bool) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetMuted(ctx, shim{tx}, chatID, userID, muted) })
}

// ViewPosts implements store.Store.
func (db *DB) ViewPosts(ctx context.Context, chatID, userID, seq int64) error {
	return db.do(ctx, func(tx querier) error {
		var n int
		if err := tx.QueryRowContext(ctx, sqlstore.IsMember, chatID, userID).Scan(&n); err != nil {
			return classify("sqlite.ViewPosts", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		var from int64
		err := tx.QueryRowContext(ctx, sqlstore.ViewSeq, chatID, userID).Scan(&from)
		if err != nil && !sqlstore.NoRows(err) {
			return classify("sqlite.ViewPosts", err)
		}
		if seq <= from {
			return nil
		}
		if _, err := tx.ExecContext(ctx, sqlstore.SetViewSeq, chatID, userID, seq); err != nil {
			return classify("sqlite.ViewPosts", err)
		}
		_, err = tx.ExecContext(ctx, sqlstore.CountViews, chatID, from, seq)
		return classify("sqlite.ViewPosts", err)
	})
}

// CreateChatInvite implements store.Store.
func (db *DB) CreateChatInvite(ctx context.Context, code string, chatID, by int64, at time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.CreateChatInvite(ctx, shim{tx}, code, chatID, by, at) })
}

// RevokeChatInvite implements store.Store.
func (db *DB) RevokeChatInvite(ctx context.Context, chatID int64, code string) error {
	return db.do(ctx, func(tx querier) error { return dialect.RevokeChatInvite(ctx, shim{tx}, chatID, code) })
}

// MakeBroadcast implements store.Store.
func (db *DB) MakeBroadcast(ctx context.Context, chatID int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		var pts int64
		err := tx.QueryRowContext(ctx, sqlstore.MakeBroadcast, chatID).Scan(&pts)
		if sqlstore.NoRows(err) {
			return nil // already broadcast
		}
		if err != nil {
			return classify("sqlite.MakeBroadcast", err)
		}
		ups, err = logForMembers(ctx, tx, chatID, herald.Update{Kind: herald.UpdChatJoined, ChatID: chatID, Seq: pts, At: at}, nil)
		return err
	})
	return ups, err
}
