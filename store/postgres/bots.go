package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

var _ store.Bots = (*DB)(nil)

// CreateBot implements store.Bots.
func (db *DB) CreateBot(ctx context.Context, u herald.User, ownerID int64, tokenHash []byte) (herald.Bot, error) {
	var b herald.Bot
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		b = herald.Bot{OwnerID: ownerID, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt}
		err := t.queryRow(ctx, sqlstore.InsertBotUser, u.Username, u.DisplayName, sqlstore.Millis(u.CreatedAt)).Scan(&b.UserID)
		if err == nil {
			bt := &batch{}
			bt.exec(sqlstore.InsertUserName, u.Username, b.UserID)
			bt.exec(sqlstore.InsertBot, b.UserID, ownerID, tokenHash, sqlstore.Millis(u.CreatedAt))
			err = bt.run(ctx, t)
		}
		if err != nil {
			return dialect.Taken("CreateBot", err, "username", u.Username)
		}
		return nil
	})
	return b, err
}

// SetBotToken implements store.Bots.
func (db *DB) SetBotToken(ctx context.Context, userID int64, tokenHash []byte) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.SetBotToken(ctx, shim{t}, userID, tokenHash) })
}

// UpdateBot implements store.Bots.
func (db *DB) UpdateBot(ctx context.Context, b herald.Bot) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.UpdateBot(ctx, shim{t}, b) })
}

// DeleteBot implements store.Bots.
func (db *DB) DeleteBot(ctx context.Context, userID int64) error {
	return db.do(ctx, locks{users: []int64{userID}}, func(ctx context.Context, t *tx) error { return dialect.DeleteBot(ctx, shim{t}, userID) })
}

// ForgetUpdates implements store.Bots.
func (db *DB) ForgetUpdates(ctx context.Context, userID, before int64, olderThan time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		return dialect.ForgetUpdates(ctx, shim{t}, userID, before, olderThan)
	})
}

// FollowChat implements store.Bots.
func (db *DB) FollowChat(ctx context.Context, botID, chatID, pts int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.FollowChat(ctx, shim{t}, botID, chatID, pts) })
}

// PullChat implements store.Bots.
func (db *DB) PullChat(ctx context.Context, botID, chatID, from, to int64, ups []herald.Update) ([]herald.Update, error) {
	var out []herald.Update
	err := db.do(ctx, locks{users: []int64{botID}}, func(ctx context.Context, t *tx) error {
		out = nil
		n, err := t.exec(ctx, sqlstore.MoveCursor, to, botID, chatID, from)
		if err != nil {
			return classify("postgres.PullChat", err)
		}
		if n == 0 || len(ups) == 0 {
			return nil
		}
		b := &batch{}
		for _, u := range ups {
			u.UserID = botID
			logUpdate(b, u, &out)
		}
		return classify("postgres.PullChat", b.run(ctx, t))
	})
	return out, err
}

// SetExtra implements store.Bots.
func (db *DB) SetExtra(ctx context.Context, chatID, seq int64, extra []byte) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.SetExtra(ctx, shim{t}, chatID, seq, extra) })
}

// LogCallback implements store.Bots.
func (db *DB) LogCallback(ctx context.Context, c herald.Callback) (herald.Callback, herald.Update, error) {
	var u herald.Update
	out := c
	err := db.do(ctx, locks{users: []int64{c.BotID}}, func(ctx context.Context, t *tx) error {
		out = c
		if err := t.queryRow(ctx, sqlstore.InsertCallback, c.BotID, c.UserID, c.ChatID, c.Seq, c.Data, sqlstore.Millis(c.At)).Scan(&out.ID); err != nil {
			return classify("postgres.LogCallback", err)
		}
		var got []herald.Update
		b := &batch{}
		logUpdate(b, herald.Update{UserID: c.BotID, Kind: herald.UpdCallback, ChatID: c.ChatID, Seq: c.Seq, ActorID: c.UserID, Seqs: []int64{out.ID}, At: c.At}, &got)
		if err := b.run(ctx, t); err != nil {
			return classify("postgres.LogCallback", err)
		}
		if len(got) == 1 {
			u = got[0]
		}
		return nil
	})
	return out, u, err
}

// AnswerCallback implements store.Bots.
func (db *DB) AnswerCallback(ctx context.Context, id int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.AnswerCallback(ctx, shim{t}, id) })
}
