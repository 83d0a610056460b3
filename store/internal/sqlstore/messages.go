package sqlstore

import (
	"context"

	"github.com/heraldim/herald"
)

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
		        coalesce(m.ttl, 0), coalesce(m.expires_at, 0), coalesce(m.waiting, 0), coalesce(m.sealed_until, 0), coalesce(m.service, 0), coalesce(m.file_id, '')
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
