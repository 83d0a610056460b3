package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
)

// Queries of reactions and pins. Both insert only beside a live message,
// so a reaction never outlives the message it was put on (the migration's
// trigger removes them when it goes).
const (
	// InsertReaction: chat, seq, user, emoji, at, chat, seq.
	InsertReaction = `INSERT INTO reactions (chat_id, seq, user_id, emoji, at)
		SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND seq = ? AND deleted = 0)
		ON CONFLICT DO NOTHING`
	// LiveMessage counts one live message: chat, seq.
	LiveMessage = `SELECT count(*) FROM messages WHERE chat_id = ? AND seq = ? AND deleted = 0`
	// InsertPin: chat, seq, by, at, chat, seq.
	InsertPin = `INSERT INTO pins (chat_id, seq, pinned_by, at)
		SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND seq = ? AND deleted = 0)
		ON CONFLICT DO NOTHING`
)

// SetReaction is store.Annotations' SetReaction inside the writer's
// transaction tx.
func (d Dialect) SetReaction(ctx context.Context, tx Querier, chatID, seq, userID int64, emoji string, on bool, at time.Time) (bool, error) {
	if !on {
		n, err := tx.Exec(ctx, `DELETE FROM reactions WHERE chat_id = ? AND seq = ? AND user_id = ? AND emoji = ?`, chatID, seq, userID, emoji)
		return n > 0, d.wrap("SetReaction", err)
	}
	n, err := tx.Exec(ctx, InsertReaction, chatID, seq, userID, emoji, Millis(at), chatID, seq)
	if err != nil {
		return false, d.wrap("SetReaction", err)
	}
	if n > 0 {
		return true, nil
	}
	return false, d.live(ctx, tx, "SetReaction", chatID, seq)
}

// SetPin is store.Annotations' SetPin inside the writer's transaction tx.
func (d Dialect) SetPin(ctx context.Context, tx Querier, chatID, seq, by int64, on bool, at time.Time) (bool, error) {
	if !on {
		n, err := tx.Exec(ctx, `DELETE FROM pins WHERE chat_id = ? AND seq = ?`, chatID, seq)
		return n > 0, d.wrap("SetPin", err)
	}
	n, err := tx.Exec(ctx, InsertPin, chatID, seq, by, Millis(at), chatID, seq)
	if err != nil {
		return false, d.wrap("SetPin", err)
	}
	if n > 0 {
		return true, nil
	}
	return false, d.live(ctx, tx, "SetPin", chatID, seq)
}

// AddMentions is store.Annotations' AddMentions inside the writer's
// transaction tx. Only a live message gains mentions.
func (d Dialect) AddMentions(ctx context.Context, tx Querier, chatID, seq int64, userIDs []int64) error {
	for _, u := range userIDs {
		_, err := tx.Exec(ctx, `INSERT INTO mentions (user_id, chat_id, seq)
			SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT)
			WHERE EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND seq = ? AND deleted = 0)
			ON CONFLICT DO NOTHING`, u, chatID, seq, chatID, seq)
		if err != nil {
			return d.wrap("AddMentions", err)
		}
	}
	return nil
}

// UnreadMentions implements store.Annotations.
func (r Reads) UnreadMentions(ctx context.Context, userID int64) (map[int64]int, error) {
	rows, err := r.q.Query(ctx, `SELECT mt.chat_id, count(*) FROM mentions mt
		JOIN members mb ON mb.chat_id = mt.chat_id AND mb.user_id = mt.user_id
		WHERE mt.user_id = ? AND mt.seq > mb.read_seq GROUP BY mt.chat_id`, userID)
	if err != nil {
		return nil, r.d.wrap("UnreadMentions", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var chat int64
		var n int
		if err := rows.Scan(&chat, &n); err != nil {
			return nil, r.d.wrap("UnreadMentions", err)
		}
		out[chat] = n
	}
	return out, r.d.wrap("UnreadMentions", rows.Err())
}

// live returns NotFound unless message seq of chatID is live: an insert
// that changed nothing either met a row already there or no message.
func (d Dialect) live(ctx context.Context, tx Querier, op string, chatID, seq int64) error {
	var n int
	if err := tx.QueryRow(ctx, LiveMessage, chatID, seq).Scan(&n); err != nil {
		return d.wrap(op, err)
	}
	if n == 0 {
		return herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return nil
}

// span is the smallest range of seqs holding all of them; a page of
// history is one range, so one indexed range scan reads it.
func span(seqs []int64) (lo, hi int64, ok bool) {
	if len(seqs) == 0 {
		return 0, 0, false
	}
	return slices.Min(seqs), slices.Max(seqs), true
}

// Reactions implements store.Annotations.
func (r Reads) Reactions(ctx context.Context, chatID int64, seqs []int64) (map[int64][]herald.Reactor, error) {
	out := map[int64][]herald.Reactor{}
	lo, hi, ok := span(seqs)
	if !ok {
		return out, nil
	}
	rows, err := r.q.Query(ctx, `SELECT seq, user_id, emoji, at FROM reactions
		WHERE chat_id = ? AND seq >= ? AND seq <= ? ORDER BY seq, at, user_id, emoji`, chatID, lo, hi)
	if err != nil {
		return nil, r.d.wrap("Reactions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq, at int64
		var x herald.Reactor
		if err := rows.Scan(&seq, &x.UserID, &x.Emoji, &at); err != nil {
			return nil, r.d.wrap("Reactions", err)
		}
		if !slices.Contains(seqs, seq) {
			continue
		}
		x.At = FromMillis(at)
		out[seq] = append(out[seq], x)
	}
	return out, r.d.wrap("Reactions", rows.Err())
}

// Pins implements store.Annotations.
func (r Reads) Pins(ctx context.Context, chatID int64) ([]herald.Pin, error) {
	out, err := scanAll(ctx, r.q, func(row Row) (herald.Pin, error) {
		p := herald.Pin{ChatID: chatID}
		var at int64
		err := row.Scan(&p.Seq, &p.By, &at)
		p.At = FromMillis(at)
		return p, err
	}, `SELECT seq, pinned_by, at FROM pins WHERE chat_id = ? ORDER BY at DESC, seq DESC`, chatID)
	return out, r.d.wrap("Pins", err)
}

// Extras implements store.Annotations.
func (r Reads) Extras(ctx context.Context, chatID int64, seqs []int64) (map[int64][]byte, error) {
	out := map[int64][]byte{}
	lo, hi, ok := span(seqs)
	if !ok {
		return out, nil
	}
	rows, err := r.q.Query(ctx, `SELECT seq, extra FROM message_extras WHERE chat_id = ? AND seq >= ? AND seq <= ?`, chatID, lo, hi)
	if err != nil {
		return nil, r.d.wrap("Extras", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var extra []byte
		if err := rows.Scan(&seq, &extra); err != nil {
			return nil, r.d.wrap("Extras", err)
		}
		if slices.Contains(seqs, seq) {
			out[seq] = extra
		}
	}
	return out, r.d.wrap("Extras", rows.Err())
}
