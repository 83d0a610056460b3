package sqlstore

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldim/herald"
)

// Queries of bots' accounts, cursors and callbacks.
const (
	// InsertBot: user, owner, token hash, created at.
	InsertBot = `INSERT INTO bots (user_id, owner_id, token_hash, created_at) VALUES (?, ?, ?, ?)`
	// MoveCursor moves a bot's cursor in a broadcast chat from one pts to
	// the next, and changes nothing if another pull moved it first: to,
	// bot, chat, from.
	MoveCursor     = `UPDATE bot_cursors SET pts = ? WHERE bot_id = ? AND chat_id = ? AND pts = ?`
	InsertCallback = `INSERT INTO callbacks (bot_id, user_id, chat_id, seq, data, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`
)

// Bot implements store.Bots.
func (r Reads) Bot(ctx context.Context, userID int64) (herald.Bot, []byte, error) {
	b, hash, err := scanBot(r.q.QueryRow(ctx, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id WHERE b.user_id = ?`, userID))
	if NoRows(err) {
		return b, nil, herald.Errorf(herald.NotFound, "no bot %d", userID)
	}
	return b, hash, r.d.wrap("Bot", err)
}

// BotsOf implements store.Bots.
func (r Reads) BotsOf(ctx context.Context, ownerID int64) ([]herald.Bot, error) {
	out, err := scanAll(ctx, r.q, scanBotOnly, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id
		WHERE b.owner_id = ? AND b.token_hash IS NOT NULL ORDER BY b.user_id`, ownerID)
	return out, r.d.wrap("BotsOf", err)
}

// WebhookBots implements store.Bots.
func (r Reads) WebhookBots(ctx context.Context) ([]herald.Bot, error) {
	out, err := scanAll(ctx, r.q, scanBotOnly, `SELECT `+botCols+` FROM bots b JOIN users u ON u.id = b.user_id
		WHERE b.webhook_url != '' AND b.token_hash IS NOT NULL ORDER BY b.user_id`)
	return out, r.d.wrap("WebhookBots", err)
}

// BotCursors implements store.Bots.
func (r Reads) BotCursors(ctx context.Context, botID int64) (map[int64]int64, error) {
	rows, err := r.q.Query(ctx, `SELECT chat_id, pts FROM bot_cursors WHERE bot_id = ?`, botID)
	if err != nil {
		return nil, r.d.wrap("BotCursors", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var chat, pts int64
		if err := rows.Scan(&chat, &pts); err != nil {
			return nil, r.d.wrap("BotCursors", err)
		}
		out[chat] = pts
	}
	return out, r.d.wrap("BotCursors", rows.Err())
}

// Extra implements store.Bots.
func (r Reads) Extra(ctx context.Context, chatID, seq int64) ([]byte, error) {
	var extra []byte
	err := r.q.QueryRow(ctx, `SELECT extra FROM message_extras WHERE chat_id = ? AND seq = ?`, chatID, seq).Scan(&extra)
	if NoRows(err) {
		return nil, nil
	}
	return extra, r.d.wrap("Extra", err)
}

// Callback implements store.Bots.
func (r Reads) Callback(ctx context.Context, id int64) (herald.Callback, error) {
	var c herald.Callback
	var at int64
	var answered int
	err := r.q.QueryRow(ctx, `SELECT id, bot_id, user_id, chat_id, seq, data, at, answered FROM callbacks WHERE id = ?`, id).
		Scan(&c.ID, &c.BotID, &c.UserID, &c.ChatID, &c.Seq, &c.Data, &at, &answered)
	if NoRows(err) {
		return c, herald.Errorf(herald.NotFound, "no callback query %d", id)
	}
	c.At, c.Answered = FromMillis(at), answered != 0
	return c, r.d.wrap("Callback", err)
}

// SetBotToken is store.Bots' SetBotToken inside the writer's transaction tx.
func (d Dialect) SetBotToken(ctx context.Context, tx Querier, userID int64, tokenHash []byte) error {
	n, err := tx.Exec(ctx, `UPDATE bots SET token_hash = ? WHERE user_id = ? AND token_hash IS NOT NULL`, tokenHash, userID)
	return d.affected(n, err, "SetBotToken", "no such bot")
}

// DeleteBot is store.Bots' DeleteBot inside the writer's transaction tx.
func (d Dialect) DeleteBot(ctx context.Context, tx Querier, userID int64) error {
	n, err := tx.Exec(ctx, `UPDATE bots SET token_hash = NULL, webhook_url = '', webhook_secret = '', commands = ''
		WHERE user_id = ? AND token_hash IS NOT NULL`, userID)
	if err := d.affected(n, err, "DeleteBot", "no such bot"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM bot_cursors WHERE bot_id = ?`, userID); err != nil {
		return d.wrap("DeleteBot", err)
	}
	_, err = tx.Exec(ctx, `DELETE FROM updates WHERE user_id = ?`, userID)
	return d.wrap("DeleteBot", err)
}

// ForgetUpdates is store.Bots' ForgetUpdates inside the writer's transaction tx.
func (d Dialect) ForgetUpdates(ctx context.Context, tx Querier, userID, before int64, olderThan time.Time) error {
	_, err := tx.Exec(ctx, `DELETE FROM updates WHERE user_id = ? AND (pts < ? OR at < ?)`, userID, before, Millis(olderThan))
	return d.wrap("ForgetUpdates", err)
}

// FollowChat is store.Bots' FollowChat inside the writer's transaction tx.
func (d Dialect) FollowChat(ctx context.Context, tx Querier, botID, chatID, pts int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO bot_cursors (bot_id, chat_id, pts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, botID, chatID, pts)
	return d.wrap("FollowChat", err)
}

// SetExtra is store.Bots' SetExtra inside the writer's transaction tx.
func (d Dialect) SetExtra(ctx context.Context, tx Querier, chatID, seq int64, extra []byte) error {
	var err error
	if len(extra) == 0 {
		_, err = tx.Exec(ctx, `DELETE FROM message_extras WHERE chat_id = ? AND seq = ?`, chatID, seq)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO message_extras (chat_id, seq, extra) VALUES (?, ?, ?)
			ON CONFLICT (chat_id, seq) DO UPDATE SET extra = excluded.extra`, chatID, seq, extra)
	}
	return d.wrap("SetExtra", err)
}

// AnswerCallback is store.Bots' AnswerCallback inside the writer's transaction tx.
func (d Dialect) AnswerCallback(ctx context.Context, tx Querier, id int64) error {
	n, err := tx.Exec(ctx, `UPDATE callbacks SET answered = 1 WHERE id = ? AND answered = 0`, id)
	if err != nil {
		return d.wrap("AnswerCallback", err)
	}
	if n == 0 {
		var x int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM callbacks WHERE id = ?`, id).Scan(&x); NoRows(err) {
			return herald.Errorf(herald.NotFound, "no callback query %d", id)
		}
		return herald.Errorf(herald.AlreadyExists, "callback query %d was already answered", id)
	}
	return nil
}

const botCols = `b.user_id, b.owner_id, u.username, u.display_name, b.created_at, b.token_hash IS NULL,
	b.read_all, b.webhook_url, b.webhook_secret, b.allowed_updates, b.max_connections, b.commands, b.token_hash`

func scanBot(s Row) (herald.Bot, []byte, error) {
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
	b.CreatedAt, b.Deleted, b.ReadAll = FromMillis(created), deleted, readAll != 0
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

// scanBotOnly is scanBot for lists, which do not carry token hashes.
func scanBotOnly(s Row) (herald.Bot, error) {
	b, _, err := scanBot(s)
	return b, err
}

// UpdateBot is store.Bots' UpdateBot inside the writer's transaction tx.
func (d Dialect) UpdateBot(ctx context.Context, tx Querier, b herald.Bot) error {
	commands := ""
	if len(b.Commands) > 0 {
		j, err := json.Marshal(b.Commands)
		if err != nil {
			return herald.Wrap(d.Name+".UpdateBot", err)
		}
		commands = string(j)
	}
	n, err := tx.Exec(ctx, `UPDATE bots SET read_all = ?, webhook_url = ?, webhook_secret = ?, allowed_updates = ?,
		max_connections = ?, commands = ? WHERE user_id = ? AND token_hash IS NOT NULL`,
		Flag(b.ReadAll), b.WebhookURL, b.WebhookSecret, strings.Join(b.AllowedUpdates, ","), b.MaxConnections, commands, b.UserID)
	return d.affected(n, err, "UpdateBot", "no such bot")
}
