package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

var _ store.Bots = (*DB)(nil)

const botCols = `b.user_id, b.owner_id, u.username, u.display_name, b.created_at, b.token_hash IS NULL,
	b.read_all, b.webhook_url, b.webhook_secret, b.allowed_updates, b.max_connections, b.commands, b.token_hash`

func scanBot(s interface{ Scan(...any) error }) (herald.Bot, []byte, error) {
	var b herald.Bot
	var created int64
	var deleted, readAll int
	var allowed, commands string
	var hash []byte
	err := s.Scan(&b.UserID, &b.OwnerID, &b.Username, &b.DisplayName, &created, &deleted,
		&readAll, &b.WebhookURL, &b.WebhookSecret, &allowed, &b.MaxConnections, &commands, &hash)
	if err != nil {
		return b, nil, err
	}
	b.CreatedAt, b.Deleted, b.ReadAll = sqlstore.FromMillis(created), deleted != 0, readAll != 0
	if allowed != "" {
		b.AllowedUpdates = strings.Split(allowed, ",")
	}
	if commands != "" {
		if err := json.Unmarshal([]byte(commands), &b.Commands); err != nil {
			return b, nil, err
		}
	}
	return b, hash, nil
}

// CreateBot implements store.Bots.
func (db *DB) CreateBot(ctx context.Context, u herald.User, ownerID int64, tokenHash []byte) (herald.Bot, error) {
	b := herald.Bot{OwnerID: ownerID, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt}
	err := db.do(ctx, func(tx querier) error {
		// "!" is no Argon2id hash, so no password ever matches it.
		err := tx.QueryRowContext(ctx,
			`INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, '!', ?) RETURNING id`,
			u.Username, u.DisplayName, sqlstore.Millis(u.CreatedAt)).Scan(&b.UserID)
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO names (name, user_id) VALUES (?, ?)`, u.Username, b.UserID)
		}
		if err != nil {
			err = classify("sqlite.CreateBot", err)
			if herald.IsKind(err, herald.AlreadyExists) {
				return herald.Errorf(herald.AlreadyExists, "the username @%s is taken", u.Username)
			}
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO bots (user_id, owner_id, token_hash, created_at) VALUES (?, ?, ?, ?)`,
			b.UserID, ownerID, tokenHash, sqlstore.Millis(u.CreatedAt))
		return classify("sqlite.CreateBot", err)
	})
	return b, err
}

// Bot implements store.Bots.
func (db *DB) Bot(ctx context.Context, userID int64) (herald.Bot, []byte, error) {
	b, hash, err := scanBot(db.rq.QueryRowContext(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id WHERE b.user_id = ?`, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil, herald.Errorf(herald.NotFound, "no bot %d", userID)
	}
	return b, hash, classify("sqlite.Bot", err)
}

// BotsOf implements store.Bots.
func (db *DB) BotsOf(ctx context.Context, ownerID int64) ([]herald.Bot, error) {
	rows, err := db.rq.QueryContext(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id
		WHERE b.owner_id = ? AND b.token_hash IS NOT NULL ORDER BY b.user_id`, ownerID)
	if err != nil {
		return nil, classify("sqlite.BotsOf", err)
	}
	defer rows.Close()
	var out []herald.Bot
	for rows.Next() {
		b, _, err := scanBot(rows)
		if err != nil {
			return nil, classify("sqlite.BotsOf", err)
		}
		out = append(out, b)
	}
	return out, classify("sqlite.BotsOf", rows.Err())
}

// WebhookBots implements store.Bots.
func (db *DB) WebhookBots(ctx context.Context) ([]herald.Bot, error) {
	rows, err := db.rq.QueryContext(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id
		WHERE b.webhook_url != '' AND b.token_hash IS NOT NULL ORDER BY b.user_id`)
	if err != nil {
		return nil, classify("sqlite.WebhookBots", err)
	}
	defer rows.Close()
	var out []herald.Bot
	for rows.Next() {
		b, _, err := scanBot(rows)
		if err != nil {
			return nil, classify("sqlite.WebhookBots", err)
		}
		out = append(out, b)
	}
	return out, classify("sqlite.WebhookBots", rows.Err())
}

// SetBotToken implements store.Bots.
func (db *DB) SetBotToken(ctx context.Context, userID int64, tokenHash []byte) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE bots SET token_hash = ? WHERE user_id = ? AND token_hash IS NOT NULL`, tokenHash, userID)
		return affected(res, err, "sqlite.SetBotToken", "no such bot")
	})
}

// UpdateBot implements store.Bots.
func (db *DB) UpdateBot(ctx context.Context, b herald.Bot) error {
	commands := ""
	if len(b.Commands) > 0 {
		j, err := json.Marshal(b.Commands)
		if err != nil {
			return herald.Wrap("sqlite.UpdateBot", err)
		}
		commands = string(j)
	}
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE bots SET read_all = ?, webhook_url = ?, webhook_secret = ?, allowed_updates = ?,
			max_connections = ?, commands = ? WHERE user_id = ? AND token_hash IS NOT NULL`,
			sqlstore.Flag(b.ReadAll), b.WebhookURL, b.WebhookSecret, strings.Join(b.AllowedUpdates, ","), b.MaxConnections, commands, b.UserID)
		return affected(res, err, "sqlite.UpdateBot", "no such bot")
	})
}

// DeleteBot implements store.Bots.
func (db *DB) DeleteBot(ctx context.Context, userID int64) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE bots SET token_hash = NULL, webhook_url = '', webhook_secret = '', commands = ''
			WHERE user_id = ? AND token_hash IS NOT NULL`, userID)
		if err := affected(res, err, "sqlite.DeleteBot", "no such bot"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM bot_cursors WHERE bot_id = ?`, userID); err != nil {
			return classify("sqlite.DeleteBot", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM updates WHERE user_id = ?`, userID)
		return classify("sqlite.DeleteBot", err)
	})
}

// ForgetUpdates implements store.Bots.
func (db *DB) ForgetUpdates(ctx context.Context, userID, before int64, olderThan time.Time) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM updates WHERE user_id = ? AND (pts < ? OR at < ?)`, userID, before, sqlstore.Millis(olderThan))
		return classify("sqlite.ForgetUpdates", err)
	})
}

// FollowChat implements store.Bots.
func (db *DB) FollowChat(ctx context.Context, botID, chatID, pts int64) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bot_cursors (bot_id, chat_id, pts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, botID, chatID, pts)
		return classify("sqlite.FollowChat", err)
	})
}

// BotCursors implements store.Bots.
func (db *DB) BotCursors(ctx context.Context, botID int64) (map[int64]int64, error) {
	rows, err := db.rq.QueryContext(ctx, `SELECT chat_id, pts FROM bot_cursors WHERE bot_id = ?`, botID)
	if err != nil {
		return nil, classify("sqlite.BotCursors", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var chat, pts int64
		if err := rows.Scan(&chat, &pts); err != nil {
			return nil, classify("sqlite.BotCursors", err)
		}
		out[chat] = pts
	}
	return out, classify("sqlite.BotCursors", rows.Err())
}

// PullChat implements store.Bots.
func (db *DB) PullChat(ctx context.Context, botID, chatID, from, to int64, ups []herald.Update) ([]herald.Update, error) {
	var out []herald.Update
	err := db.do(ctx, func(tx querier) error {
		out = nil
		res, err := tx.ExecContext(ctx, `UPDATE bot_cursors SET pts = ? WHERE bot_id = ? AND chat_id = ? AND pts = ?`, to, botID, chatID, from)
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
	return db.do(ctx, func(tx querier) error {
		var err error
		if len(extra) == 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM message_extras WHERE chat_id = ? AND seq = ?`, chatID, seq)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO message_extras (chat_id, seq, extra) VALUES (?, ?, ?)
				ON CONFLICT (chat_id, seq) DO UPDATE SET extra = excluded.extra`, chatID, seq, extra)
		}
		return classify("sqlite.SetExtra", err)
	})
}

// Extra implements store.Bots.
func (db *DB) Extra(ctx context.Context, chatID, seq int64) ([]byte, error) {
	var extra []byte
	err := db.rq.QueryRowContext(ctx, `SELECT extra FROM message_extras WHERE chat_id = ? AND seq = ?`, chatID, seq).Scan(&extra)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return extra, classify("sqlite.Extra", err)
}

// LogCallback implements store.Bots.
func (db *DB) LogCallback(ctx context.Context, c herald.Callback) (herald.Callback, herald.Update, error) {
	var u herald.Update
	err := db.do(ctx, func(tx querier) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO callbacks (bot_id, user_id, chat_id, seq, data, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			c.BotID, c.UserID, c.ChatID, c.Seq, c.Data, sqlstore.Millis(c.At)).Scan(&c.ID); err != nil {
			return classify("sqlite.LogCallback", err)
		}
		u = herald.Update{UserID: c.BotID, Kind: herald.UpdCallback, ChatID: c.ChatID, Seq: c.Seq, ActorID: c.UserID, Seqs: []int64{c.ID}, At: c.At}
		return logUpdate(ctx, tx, &u)
	})
	return c, u, err
}

// Callback implements store.Bots.
func (db *DB) Callback(ctx context.Context, id int64) (herald.Callback, error) {
	var c herald.Callback
	var at int64
	var answered int
	err := db.rq.QueryRowContext(ctx, `SELECT id, bot_id, user_id, chat_id, seq, data, at, answered FROM callbacks WHERE id = ?`, id).
		Scan(&c.ID, &c.BotID, &c.UserID, &c.ChatID, &c.Seq, &c.Data, &at, &answered)
	if errors.Is(err, sql.ErrNoRows) {
		return c, herald.Errorf(herald.NotFound, "no callback query %d", id)
	}
	c.At, c.Answered = sqlstore.FromMillis(at), answered != 0
	return c, classify("sqlite.Callback", err)
}

// AnswerCallback implements store.Bots.
func (db *DB) AnswerCallback(ctx context.Context, id int64) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE callbacks SET answered = 1 WHERE id = ? AND answered = 0`, id)
		if err != nil {
			return classify("sqlite.AnswerCallback", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var x int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM callbacks WHERE id = ?`, id).Scan(&x); errors.Is(err, sql.ErrNoRows) {
				return herald.Errorf(herald.NotFound, "no callback query %d", id)
			}
			return herald.Errorf(herald.AlreadyExists, "callback query %d was already answered", id)
		}
		return nil
	})
}
