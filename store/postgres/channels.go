package postgres

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
	var out herald.Chat
	err := db.do(ctx, locks{users: []int64{c.CreatedBy}}, func(ctx context.Context, t *tx) error {
		ups = nil
		ch := c
		ch.Kind, ch.Broadcast = herald.Channel, true
		if err := dialect.InsertChat(ctx, shim{t}, &ch); err != nil {
			return err
		}
		if ch.Username != "" {
			if _, err := t.exec(ctx, sqlstore.InsertChatName, ch.Username, ch.ID); err != nil {
				return dialect.Taken("CreateChannel", err, "name", ch.Username)
			}
		}
		bt := &batch{}
		var added int64
		addMember(bt, ch.ID, ch.CreatedBy, herald.RoleOwner, ch.CreatedAt, &added)
		recountMembers(bt, ch.ID)
		logUpdate(bt, herald.Update{UserID: ch.CreatedBy, Kind: herald.UpdChatJoined, ChatID: ch.ID, ActorID: ch.CreatedBy, At: ch.CreatedAt}, &ups)
		queueChat(bt, ch.ID, &out)
		return classify("postgres.CreateChannel", bt.run(ctx, t))
	})
	if err != nil {
		return c, nil, err
	}
	return out, ups, nil
}

// UpdateChat implements store.Store.
func (db *DB) UpdateChat(ctx context.Context, c herald.Chat) error {
	return db.do(ctx, rowLocks(c.ID), func(ctx context.Context, t *tx) error { return dialect.UpdateChat(ctx, shim{t}, c) })
}

// SetMuted implements store.Store.
func (db *DB) SetMuted(ctx context.Context, chatID, userID int64, muted bool) error {
	return db.do(ctx, rowLocks(chatID), func(ctx context.Context, t *tx) error {
		return dialect.SetMuted(ctx, shim{t}, chatID, userID, muted)
	})
}

// ViewPosts implements store.Store.
func (db *DB) ViewPosts(ctx context.Context, chatID, userID, seq int64) error {
	// The chat's lock (held from the start of the transaction) makes two
	// views by the same member, on two nodes, count each post once.
	return db.do(ctx, rowLocks(chatID), func(ctx context.Context, t *tx) error {
		var n int
		if err := t.queryRow(ctx, sqlstore.IsMember, chatID, userID).Scan(&n); err != nil {
			return classify("postgres.ViewPosts", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		var from int64
		err := t.queryRow(ctx, sqlstore.ViewSeq, chatID, userID).Scan(&from)
		if err != nil && !noRows(err) {
			return classify("postgres.ViewPosts", err)
		}
		if seq <= from {
			return nil
		}
		bt := &batch{}
		bt.exec(sqlstore.SetViewSeq, chatID, userID, seq)
		bt.exec(sqlstore.CountViews, chatID, from, seq)
		return classify("postgres.ViewPosts", bt.run(ctx, t))
	})
}

// CreateChatInvite implements store.Store.
func (db *DB) CreateChatInvite(ctx context.Context, code string, chatID, by int64, at time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		return dialect.CreateChatInvite(ctx, shim{t}, code, chatID, by, at)
	})
}

// RevokeChatInvite implements store.Store.
func (db *DB) RevokeChatInvite(ctx context.Context, chatID int64, code string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.RevokeChatInvite(ctx, shim{t}, chatID, code) })
}

// MakeBroadcast implements store.Store.
func (db *DB) MakeBroadcast(ctx context.Context, chatID int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		var pts int64
		err := t.queryRow(ctx, sqlstore.MakeBroadcast, chatID).Scan(&pts)
		if noRows(err) {
			return nil // already broadcast
		}
		if err != nil {
			return classify("postgres.MakeBroadcast", err)
		}
		bt := &batch{}
		logForMembers(bt, chatID, herald.Update{Kind: herald.UpdChatJoined, ChatID: chatID, Seq: pts, At: at}, nil, &ups)
		return classify("postgres.MakeBroadcast", bt.run(ctx, t))
	})
	return ups, err
}
