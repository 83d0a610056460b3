package sqlite

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
	b := herald.Bot{OwnerID: ownerID, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt}
	err := db.do(ctx, func(tx querier) error {
		err := tx.QueryRowContext(ctx, sqlstore.InsertBotUser, u.Username, u.DisplayName, sqlstore.Millis(u.CreatedAt)).Scan(&b.UserID)
		if err == nil {
			_, err = tx.ExecContext(ctx, sqlstore.InsertUserName, u.Username, b.UserID)
		}
		if err != nil {
			return dialect.Taken("CreateBot", err, "username", u.Username)
		}
		_, err = tx.ExecContext(ctx, sqlstore.InsertBot, b.UserID, ownerID, tokenHash, sqlstore.Millis(u.CreatedAt))
		return classify("sqlite.CreateBot", err)
	})
	return b, err
}

// SetBotToken implements store.Bots.
func (db *DB) SetBotToken(ctx context.Context, userID int64, tokenHash []byte) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetBotToken(ctx, shim{tx}, userID, tokenHash) })
}

// UpdateBot implements store.Bots.
func (db *DB) UpdateBot(ctx context.Context, b herald.Bot) error {
	return db.do(ctx, func(tx querier) error { return dialect.UpdateBot(ctx, shim{tx}, b) })
}

// DeleteBot implements store.Bots.
func (db *DB) DeleteBot(ctx context.Context, userID int64) error {
	return db.do(ctx, func(tx querier) error { return dialect.DeleteBot(ctx, shim{tx}, userID) })
}

// ForgetUpdates implements store.Bots.
func (db *DB) ForgetUpdates(ctx context.Context, userID, before int64, olderThan time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.ForgetUpdates(ctx, shim{tx}, userID, before, olderThan) })
}

// FollowChat implements store.Bots.
func (db *DB) FollowChat(ctx context.Context, botID, chatID, pts int64) error {
	return db.do(ctx, func(tx querier) error { return dialect.FollowChat(ctx, shim{tx}, botID, chatID, pts) })
}

// PullChat implements store.Bots.
func (db *DB) PullChat(ctx context.Context, botID, chatID, from, to int64, ups []herald.Update) ([]herald.Update, error) {
	var out []herald.Update
	err := db.do(ctx, func(tx querier) error {
		out = nil
		res, err := tx.ExecContext(ctx, sqlstore.MoveCursor, to, botID, chatID, from)
		if err != nil {
			return classify("sqlite.PullChat", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		for _, u := range ups {
			u.UserID = botID
			if err := logUpdate(ctx, tx, &u); err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// SetExtra implements store.Bots.
func (db *DB) SetExtra(ctx context.Context, chatID, seq int64, extra []byte) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetExtra(ctx, shim{tx}, chatID, seq, extra) })
}

// LogCallback implements store.Bots.
func (db *DB) LogCallback(ctx context.Context, c herald.Callback) (herald.Callback, herald.Update, error) {
	var u herald.Update
	err := db.do(ctx, func(tx querier) error {
		if err := tx.QueryRowContext(ctx, sqlstore.InsertCallback, c.BotID, c.UserID, c.ChatID, c.Seq, c.Data, sqlstore.Millis(c.At)).Scan(&c.ID); err != nil {
			return classify("sqlite.LogCallback", err)
		}
		u = herald.Update{UserID: c.BotID, Kind: herald.UpdCallback, ChatID: c.ChatID, Seq: c.Seq, ActorID: c.UserID, Seqs: []int64{c.ID}, At: c.At}
		return logUpdate(ctx, tx, &u)
	})
	return c, u, err
}

// AnswerCallback implements store.Bots.
func (db *DB) AnswerCallback(ctx context.Context, id int64) error {
	return db.do(ctx, func(tx querier) error { return dialect.AnswerCallback(ctx, shim{tx}, id) })
}
