package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
)

var _ store.Bots = (*DB)(nil)

const botCols = `b.user_id, b.owner_id, u.username, u.display_name, b.created_at, b.token_hash IS NULL,
	b.read_all, b.webhook_url, b.webhook_secret, b.allowed_updates, b.max_connections, b.commands, b.token_hash`

func scanBot(s interface{ Scan(...any) error }) (herald.Bot, []byte, error) {
	var b herald.Bot
	var created int64
	var deleted bool
	var readAll int
	var allowed, commands string
	var hash []byte
	err := s.Scan(&b.UserID, &b.OwnerID, &b.Username, &b.DisplayName, &created, &deleted,
		&readAll, &b.WebhookURL, &b.WebhookSecret, &allowed, &b.MaxConnections, &commands, &hash)
	if err != nil {
		return b, nil, err
	}
	b.CreatedAt, b.Deleted, b.ReadAll = sqlstore.FromMillis(created), deleted, readAll != 0
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
	var b herald.Bot
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		b = herald.Bot{OwnerID: ownerID, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt}
		// "!" is no Argon2id hash, so no password ever matches it.
		err := t.queryRow(ctx,
			`INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, '!', ?) RETURNING id`,
			u.Username, u.DisplayName, sqlstore.Millis(u.CreatedAt)).Scan(&b.UserID)
		if err == nil {
			bt := &batch{}
			bt.exec(`INSERT INTO names (name, user_id) VALUES (?, ?)`, u.Username, b.UserID)
			bt.exec(`INSERT INTO bots (user_id, owner_id, token_hash, created_at) VALUES (?, ?, ?, ?)`, b.UserID, ownerID, tokenHash, sqlstore.Millis(u.CreatedAt))
			err = bt.run(ctx, t)
		}
		if err != nil {
			err = classify("postgres.CreateBot", err)
			if herald.IsKind(err, herald.AlreadyExists) {
				return herald.Errorf(herald.AlreadyExists, "the username @%s is taken", u.Username)
			}
			return err
		}
		return nil
	})
	return b, err
}

// Bot implements store.Bots.
func (db *DB) Bot(ctx context.Context, userID int64) (herald.Bot, []byte, error) {
	b, hash, err := scanBot(db.rq.queryRow(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id WHERE b.user_id = ?`, userID))
	if noRows(err) {
		return b, nil, herald.Errorf(herald.NotFound, "no bot %d", userID)
	}
	return b, hash, classify("postgres.Bot", err)
}

// BotsOf implements store.Bots.
func (db *DB) BotsOf(ctx context.Context, ownerID int64) ([]herald.Bot, error) {
	rows, err := db.rq.query(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id
		WHERE b.owner_id = ? AND b.token_hash IS NOT NULL ORDER BY b.user_id`, ownerID)
	if err != nil {
		return nil, classify("postgres.BotsOf", err)
	}
	defer rows.Close()
	var out []herald.Bot
	for rows.Next() {
		b, _, err := scanBot(rows)
		if err != nil {
			return nil, classify("postgres.BotsOf", err)
		}
		out = append(out, b)
	}
	return out, classify("postgres.BotsOf", rows.Err())
}

// WebhookBots implements store.Bots.
func (db *DB) WebhookBots(ctx context.Context) ([]herald.Bot, error) {
	rows, err := db.rq.query(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id
		WHERE b.webhook_url != '' AND b.token_hash IS NOT NULL ORDER BY b.user_id`)
	if err != nil {
		return nil, classify("postgres.WebhookBots", err)
	}
	defer rows.Close()
	var out []herald.Bot
	for rows.Next() {
		b, _, err := scanBot(rows)
		if err != nil {
			return nil, classify("postgres.WebhookBots", err)
		}
		out = append(out, b)
	}
	return out, classify("postgres.WebhookBots", rows.Err())
}

// SetBotToken implements store.Bots.
func (db *DB) SetBotToken(ctx context.Context, userID int64, tokenHash []byte) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE bots SET token_hash = ? WHERE user_id = ? AND token_hash IS NOT NULL`, tokenHash, userID)
		return affected(n, err, "postgres.SetBotToken", "no such bot")
	})
}

// UpdateBot implements store.Bots.
func (db *DB) UpdateBot(ctx context.Context, b herald.Bot) error {
	commands := ""
	if len(b.Commands) > 0 {
		j, err := json.Marshal(b.Commands)
		if err != nil {
			return herald.Wrap("postgres.UpdateBot", err)
		}
		commands = string(j)
	}
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE bots SET read_all = ?, webhook_url = ?, webhook_secret = ?, allowed_updates = ?,
			max_connections = ?, commands = ? WHERE user_id = ? AND token_hash IS NOT NULL`,
			sqlstore.Flag(b.ReadAll), b.WebhookURL, b.WebhookSecret, strings.Join(b.AllowedUpdates, ","), b.MaxConnections, commands, b.UserID)
		return affected(n, err, "postgres.UpdateBot", "no such bot")
	})
}

// DeleteBot implements store.Bots.
func (db *DB) DeleteBot(ctx context.Context, userID int64) error {
	return db.do(ctx, locks{users: []int64{userID}}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE bots SET token_hash = NULL, webhook_url = '', webhook_secret = '', commands = ''
			WHERE user_id = ? AND token_hash IS NOT NULL`, userID)
		if err := affected(n, err, "postgres.DeleteBot", "no such bot"); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM bot_cursors WHERE bot_id = ?`, userID); err != nil {
			return classify("postgres.DeleteBot", err)
		}
		_, err = t.exec(ctx, `DELETE FROM updates WHERE user_id = ?`, userID)
		return classify("postgres.DeleteBot", err)
	})
}

// ForgetUpdates implements store.Bots.
func (db *DB) ForgetUpdates(ctx context.Context, userID, before int64, olderThan time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx, `DELETE FROM updates WHERE user_id = ? AND (pts < ? OR at < ?)`, userID, before, sqlstore.Millis(olderThan))
		return classify("postgres.ForgetUpdates", err)
	})
}

// FollowChat implements store.Bots.
func (db *DB) FollowChat(ctx context.Context, botID, chatID, pts int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO bot_cursors (bot_id, chat_id, pts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, botID, chatID, pts)
		return classify("postgres.FollowChat", err)
	})
}

// BotCursors implements store.Bots.
func (db *DB) BotCursors(ctx context.Context, botID int64) (map[int64]int64, error) {
	rows, err := db.rq.query(ctx, `SELECT chat_id, pts FROM bot_cursors WHERE bot_id = ?`, botID)
	if err != nil {
		return nil, classify("postgres.BotCursors", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var chat, pts int64
		if err := rows.Scan(&chat, &pts); err != nil {
			return nil, classify("postgres.BotCursors", err)
		}
		out[chat] = pts
	}
	return out, classify("postgres.BotCursors", rows.Err())
}

// PullChat implements store.Bots.
func (db *DB) PullChat(ctx context.Context, botID, chatID, from, to int64, ups []herald.Update) ([]herald.Update, error) {
	var out []herald.Update
	err := db.do(ctx, locks{users: []int64{botID}}, func(ctx context.Context, t *tx) error {
		out = nil
		n, err := t.exec(ctx, `UPDATE bot_cursors SET pts = ? WHERE bot_id = ? AND chat_id = ? AND pts = ?`, to, botID, chatID, from)
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
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		if len(extra) == 0 {
			_, err = t.exec(ctx, `DELETE FROM message_extras WHERE chat_id = ? AND seq = ?`, chatID, seq)
		} else {
			_, err = t.exec(ctx, `INSERT INTO message_extras (chat_id, seq, extra) VALUES (?, ?, ?)
				ON CONFLICT (chat_id, seq) DO UPDATE SET extra = excluded.extra`, chatID, seq, extra)
		}
		return classify("postgres.SetExtra", err)
	})
}

// Extra implements store.Bots.
func (db *DB) Extra(ctx context.Context, chatID, seq int64) ([]byte, error) {
	var extra []byte
	err := db.rq.queryRow(ctx, `SELECT extra FROM message_extras WHERE chat_id = ? AND seq = ?`, chatID, seq).Scan(&extra)
	if noRows(err) {
		return nil, nil
	}
	return extra, classify("postgres.Extra", err)
}

// LogCallback implements store.Bots.
func (db *DB) LogCallback(ctx context.Context, c herald.Callback) (herald.Callback, herald.Update, error) {
	var u herald.Update
	out := c
	err := db.do(ctx, locks{users: []int64{c.BotID}}, func(ctx context.Context, t *tx) error {
		out = c
		if err := t.queryRow(ctx, `INSERT INTO callbacks (bot_id, user_id, chat_id, seq, data, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			c.BotID, c.UserID, c.ChatID, c.Seq, c.Data, sqlstore.Millis(c.At)).Scan(&out.ID); err != nil {
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

// Callback implements store.Bots.
func (db *DB) Callback(ctx context.Context, id int64) (herald.Callback, error) {
	var c herald.Callback
	var at int64
	var answered int
	err := db.rq.queryRow(ctx, `SELECT id, bot_id, user_id, chat_id, seq, data, at, answered FROM callbacks WHERE id = ?`, id).
		Scan(&c.ID, &c.BotID, &c.UserID, &c.ChatID, &c.Seq, &c.Data, &at, &answered)
	if noRows(err) {
		return c, herald.Errorf(herald.NotFound, "no callback query %d", id)
	}
	c.At, c.Answered = sqlstore.FromMillis(at), answered != 0
	return c, classify("postgres.Callback", err)
}

// AnswerCallback implements store.Bots.
func (db *DB) AnswerCallback(ctx context.Context, id int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE callbacks SET answered = 1 WHERE id = ? AND answered = 0`, id)
		if err != nil {
			return classify("postgres.AnswerCallback", err)
		}
		if n == 0 {
			var x int
			if err := t.queryRow(ctx, `SELECT 1 FROM callbacks WHERE id = ?`, id).Scan(&x); err == pgx.ErrNoRows || noRows(err) {
				return herald.Errorf(herald.NotFound, "no callback query %d", id)
			}
			return herald.Errorf(herald.AlreadyExists, "callback query %d was already answered", id)
		}
		return nil
	})
}
