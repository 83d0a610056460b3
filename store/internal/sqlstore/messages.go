package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Queries on messages.
const (
	MessageAt = `SELECT ` + MessageCols + ` FROM messages WHERE chat_id = ? AND seq = ?`
	// SentBefore finds a send already stored with the same random id:
	// chat, sender, random id. random_id <> 0 repeats the partial index's
	// condition, so that SQLite, and PostgreSQL's generic plan of the
	// prepared statement, use the index rather than scan the chat.
	SentBefore = `SELECT ` + MessageCols + ` FROM messages WHERE chat_id = ? AND sender_id = ? AND random_id = ? AND random_id <> 0`
	// IsHidden: user, chat, seq. A count, so that no row is no error.
	IsHidden = `SELECT count(*) FROM hidden WHERE user_id = ? AND chat_id = ? AND seq = ?`
	// History: chat, before (exclusive), reader, limit.
	History = `SELECT ` + MessageCols + ` FROM messages m
		WHERE chat_id = ? AND seq < ? AND deleted = 0
		AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = ? AND h.chat_id = m.chat_id AND h.seq = m.seq)
		ORDER BY seq DESC LIMIT ?`
	// EditMessage returns the edited row, none if there is no live one:
	// body, edited at, chat, seq.
	EditMessage = `UPDATE messages SET body = ?, edited_at = ? WHERE chat_id = ? AND seq = ? AND deleted = 0 RETURNING ` + MessageCols
	// DeleteMessage deletes a message for everyone: chat, seq. The body
	// goes, not only a flag.
	DeleteMessage = `UPDATE messages SET body = NULL, file_id = '', deleted = 1, edited_at = 0 WHERE chat_id = ? AND seq = ? AND deleted = 0`
	// HideMessage deletes a live message for one user: user, chat, seq.
	HideMessage = `INSERT INTO hidden (user_id, chat_id, seq)
		SELECT CAST(? AS BIGINT), chat_id, seq FROM messages WHERE chat_id = ? AND seq = ? AND deleted = 0
		ON CONFLICT DO NOTHING`
	// ExpireMessage returns the seq, none if the message went meanwhile:
	// chat, seq.
	ExpireMessage = `UPDATE messages SET body = NULL, file_id = '', deleted = 1, edited_at = 0, waiting = 0
		WHERE chat_id = ? AND seq = ? AND deleted = 0 RETURNING seq`
	// Reseal changes a waiting timer's sealed body and returns the row,
	// none if its countdown started meanwhile (that wins): body, sealed
	// until, expires at, waiting, chat, seq.
	Reseal = `UPDATE messages SET body = ?, sealed_until = ?, expires_at = ?, waiting = ?
		WHERE chat_id = ? AND seq = ? AND deleted = 0 AND waiting = 1 RETURNING ` + MessageCols
)

// DueMessages reads through tx at most limit live messages whose time is
// up at now: their chats, in the order first met, and each chat's seqs.
func (d Dialect) DueMessages(ctx context.Context, tx Querier, now time.Time, limit int) (order []int64, due map[int64][]int64, err error) {
	// (chat_id, seq) break ties in the order of SQLite's index on
	// expires_at, so both stores expire the same ones.
	rows, err := tx.Query(ctx, `SELECT chat_id, seq FROM messages WHERE expires_at > 0 AND expires_at <= ? AND deleted = 0
		ORDER BY expires_at, chat_id, seq LIMIT ?`, Millis(now), limit)
	if err != nil {
		return nil, nil, d.wrap("ExpireMessages", err)
	}
	defer rows.Close()
	due = map[int64][]int64{}
	for rows.Next() {
		var chat, seq int64
		if err := rows.Scan(&chat, &seq); err != nil {
			return nil, nil, d.wrap("ExpireMessages", err)
		}
		if due[chat] == nil {
			order = append(order, chat)
		}
		due[chat] = append(due[chat], seq)
	}
	return order, due, d.wrap("ExpireMessages", rows.Err())
}

// Pts implements store.Store.
func (r Reads) Pts(ctx context.Context, userID int64) (int64, error) {
	var pts int64
	err := r.q.QueryRow(ctx, `SELECT pts FROM users WHERE id = ?`, userID).Scan(&pts)
	if NoRows(err) {
		return 0, herald.Errorf(herald.NotFound, "no user %d", userID)
	}
	return pts, r.d.wrap("Pts", err)
}

// Difference implements store.Store.
func (r Reads) Difference(ctx context.Context, userID, pts int64, limit int) (herald.Difference, error) {
	return r.difference(ctx, "updates", "user_id", userID, pts, limit)
}

// ChatDifference implements store.Store.
func (r Reads) ChatDifference(ctx context.Context, chatID, pts int64, limit int) (herald.Difference, error) {
	d, err := r.difference(ctx, "chat_updates", "chat_id", chatID, pts, limit)
	for i := range d.Updates {
		d.Updates[i].UserID = 0
		d.Updates[i].ChatID = chatID
	}
	return d, err
}

// difference pages through one log: a user's (updates) or a broadcast
// chat's (chat_updates); both have the same columns.
func (r Reads) difference(ctx context.Context, table, owner string, id, pts int64, limit int) (herald.Difference, error) {
	d := herald.Difference{Pts: pts}
	rows, err := r.q.Query(ctx,
		`SELECT u.pts, u.kind, u.chat_id, u.seq, u.actor_id, u.seqs, u.at, m.seq IS NOT NULL,
		        coalesce(m.chat_id, 0), coalesce(m.seq, 0), coalesce(m.sender_id, 0), coalesce(m.random_id, 0), m.body,
		        coalesce(m.reply_to, 0), coalesce(m.fwd_user, 0), coalesce(m.fwd_chat, 0), coalesce(m.fwd_seq, 0),
		        coalesce(m.sent_at, 0), coalesce(m.edited_at, 0), coalesce(m.deleted, 0), coalesce(m.views, 0),
		        coalesce(m.ttl, 0), coalesce(m.expires_at, 0), coalesce(m.waiting, 0), coalesce(m.sealed_until, 0), coalesce(m.service, 0), coalesce(m.file_id, ''), coalesce(m.signed, 0)
		 FROM `+table+` u
		 LEFT JOIN messages m ON u.kind IN (1, 2) AND m.chat_id = u.chat_id AND m.seq = u.seq
		 WHERE u.`+owner+` = ? AND u.pts > ? ORDER BY u.pts LIMIT ?`, id, pts, limit+1)
	if err != nil {
		return d, r.d.wrap("Difference", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u herald.Update
		var kind int
		var seqs string
		var at int64
		var hasMsg bool
		// The message columns go through the one message scanner.
		m, err := ScanMessage(skipScan{rows: rows, head: []any{&u.Pts, &kind, &u.ChatID, &u.Seq, &u.ActorID, &seqs, &at, &hasMsg}})
		if err != nil {
			return d, r.d.wrap("Difference", err)
		}
		if len(d.Updates) == limit {
			d.More = true
			break
		}
		u.UserID, u.Kind, u.Seqs, u.At = id, herald.UpdateKind(kind), DecodeSeqs(seqs), FromMillis(at)
		if hasMsg {
			u.Message = &m
		}
		d.Updates = append(d.Updates, u)
		d.Pts = u.Pts
	}
	return d, r.d.wrap("Difference", rows.Err())
}

// skipScan scans a row whose first columns (head) are not the message's,
// followed by the message scanner's columns.
type skipScan struct {
	rows Rows
	head []any
}

func (s skipScan) Scan(dst ...any) error {
	return s.rows.Scan(append(s.head[:len(s.head):len(s.head)], dst...)...)
}
