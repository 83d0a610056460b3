package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

func messageAt(ctx context.Context, q querier, chatID, seq int64) (herald.Message, error) {
	m, err := sqlstore.ScanMessage(q.QueryRowContext(ctx, sqlstore.MessageAt, chatID, seq))
	if sqlstore.NoRows(err) {
		return m, herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return m, classify("sqlite.Message", err)
}

// AppendMessage implements store.Store. The writer stores it together
// with the other appends of its batch (appendGroup) when it can, else
// alone (appendOne).
func (db *DB) AppendMessage(ctx context.Context, m herald.Message) (herald.Message, []herald.Update, bool, error) {
	r := &appendReq{in: m}
	o := &op{ctx: ctx, done: make(chan error, 1), app: r}
	o.fn = func(tx querier) error { return appendOne(ctx, tx, r) }
	if err := db.queue(o); err != nil {
		return r.in, nil, false, err
	}
	return r.m, r.ups, r.dup, nil
}

// appendOne stores one message in its own savepoint: the next seq, the
// row, the sender's read position, and the update in each member's log
// (or the chat's, for a broadcast chat).
func appendOne(ctx context.Context, tx querier, r *appendReq) error {
	m := r.in
	r.m, r.ups, r.dup = m, nil, false
	if m.RandomID != 0 {
		prev, err := sqlstore.ScanMessage(tx.QueryRowContext(ctx, sqlstore.SentBefore, m.ChatID, m.SenderID, m.RandomID))
		if err == nil {
			r.m, r.dup = prev, true
			return nil
		}
		if !sqlstore.NoRows(err) {
			return classify("sqlite.AppendMessage", err)
		}
	}
	var broadcast bool
	if err := tx.QueryRowContext(ctx,
		`UPDATE chats SET last_seq = last_seq + 1, last_at = ? WHERE id = ? RETURNING last_seq, broadcast`,
		sqlstore.Millis(m.SentAt), m.ChatID).Scan(&m.Seq, &broadcast); err != nil {
		if sqlstore.NoRows(err) {
			return herald.Errorf(herald.NotFound, "no chat %d", m.ChatID)
		}
		return classify("sqlite.AppendMessage", err)
	}
	var fu, fc, fs int64
	if m.Fwd != nil {
		fu, fc, fs = m.Fwd.UserID, m.Fwd.ChatID, m.Fwd.Seq
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO messages (`+sqlstore.MessageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?, ?, ?)`,
		m.ChatID, m.Seq, m.SenderID, m.RandomID, m.Body, m.ReplyTo, fu, fc, fs, sqlstore.Millis(m.SentAt),
		m.TTL.Milliseconds(), sqlstore.Millis(m.ExpiresAt), sqlstore.Flag(m.Waiting), sqlstore.Millis(m.SealedUntil), sqlstore.Flag(m.Service), sqlstore.FileID(m), sqlstore.Flag(m.Signed)); err != nil {
		return classify("sqlite.AppendMessage", err)
	}
	if id := sqlstore.FileID(m); id != "" {
		if _, err := tx.ExecContext(ctx, sqlstore.MarkAttached, id); err != nil {
			return classify("sqlite.AppendMessage", err)
		}
	}
	if len(m.Extra) > 0 {
		if err := dialect.SetExtra(ctx, shim{tx}, m.ChatID, m.Seq, m.Extra); err != nil {
			return err
		}
	}
	// Sending means having read everything before it.
	if _, err := tx.ExecContext(ctx,
		`UPDATE members SET read_seq = ? WHERE chat_id = ? AND user_id = ? AND read_seq < ?`,
		m.Seq, m.ChatID, m.SenderID, m.Seq); err != nil {
		return classify("sqlite.AppendMessage", err)
	}
	r.m = m
	msg := m
	tmpl := herald.Update{Kind: herald.UpdNewMessage, ChatID: m.ChatID, Seq: m.Seq, ActorID: m.SenderID, Message: &msg, At: m.SentAt}
	if broadcast {
		if err := logChat(ctx, tx, &tmpl); err != nil {
			return err
		}
		r.ups = []herald.Update{tmpl}
		return nil
	}
	var err error
	r.ups, err = logForMembers(ctx, tx, m.ChatID, tmpl, nil)
	return err
}

// Message implements store.Store.
func (db *DB) Message(ctx context.Context, userID, chatID, seq int64) (herald.Message, error) {
	m, err := messageAt(ctx, db.rq, chatID, seq)
	if err != nil {
		return m, err
	}
	var hidden int
	if err := db.rq.QueryRowContext(ctx, sqlstore.IsHidden, userID, chatID, seq).Scan(&hidden); err != nil {
		return m, classify("sqlite.Message", err)
	}
	if hidden > 0 {
		return herald.Message{}, herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return m, nil
}

// History implements store.Store.
func (db *DB) History(ctx context.Context, userID, chatID, before int64, limit int) ([]herald.Message, error) {
	return history(ctx, db.rq, userID, chatID, before, limit)
}

func history(ctx context.Context, q querier, userID, chatID, before int64, limit int) ([]herald.Message, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := q.QueryContext(ctx, sqlstore.History, chatID, before, userID, limit)
	if err != nil {
		return nil, classify("sqlite.History", err)
	}
	defer rows.Close()
	var out []herald.Message
	for rows.Next() {
		m, err := sqlstore.ScanMessage(rows)
		if err != nil {
			return nil, classify("sqlite.History", err)
		}
		out = append(out, m)
	}
	return out, classify("sqlite.History", rows.Err())
}

// EditMessage implements store.Store.
func (db *DB) EditMessage(ctx context.Context, chatID, seq int64, body []byte, at time.Time) (herald.Message, []herald.Update, error) {
	var m herald.Message
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		var err error
		m, err = sqlstore.ScanMessage(tx.QueryRowContext(ctx, sqlstore.EditMessage, body, sqlstore.Millis(at), chatID, seq))
		if sqlstore.NoRows(err) {
			return herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
		}
		if err != nil {
			return classify("sqlite.EditMessage", err)
		}
		msg := m
		ups, err = logEverywhere(ctx, tx, herald.Update{
			Kind: herald.UpdEditMessage, ChatID: chatID, Seq: seq, ActorID: m.SenderID, Message: &msg, At: at,
		})
		return err
	})
	return m, ups, err
}

// DeleteMessages implements store.Store.
func (db *DB) DeleteMessages(ctx context.Context, userID, chatID int64, seqs []int64, forEveryone bool, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		var done []int64
		for _, seq := range seqs {
			var res sql.Result
			var err error
			if forEveryone {
				// The body is overwritten (secure_delete is on), not only flagged.
				res, err = tx.ExecContext(ctx, sqlstore.DeleteMessage, chatID, seq)
			} else {
				res, err = tx.ExecContext(ctx, sqlstore.HideMessage, userID, chatID, seq)
			}
			if err != nil {
				return classify("sqlite.DeleteMessages", err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				done = append(done, seq)
			}
		}
		if len(done) == 0 {
			return nil
		}
		tmpl := herald.Update{Kind: herald.UpdDelete, ChatID: chatID, Seqs: done, ActorID: userID, At: at}
		if !forEveryone {
			tmpl.UserID = userID
			if err := logUpdate(ctx, tx, &tmpl); err != nil {
				return err
			}
			ups = []herald.Update{tmpl}
			return nil
		}
		var err error
		ups, err = logEverywhere(ctx, tx, tmpl)
		return err
	})
	return ups, err
}

// logEverywhere logs an update that every member must see: once in the
// chat's log if it is broadcast, else in each member's log.
func logEverywhere(ctx context.Context, tx querier, tmpl herald.Update) ([]herald.Update, error) {
	var broadcast bool
	if err := tx.QueryRowContext(ctx, sqlstore.ChatBroadcast, tmpl.ChatID).Scan(&broadcast); err != nil {
		return nil, classify("sqlite.logEverywhere", err)
	}
	if broadcast {
		if err := logChat(ctx, tx, &tmpl); err != nil {
			return nil, err
		}
		return []herald.Update{tmpl}, nil
	}
	return logForMembers(ctx, tx, tmpl.ChatID, tmpl, nil)
}

// ReadHistory implements store.Store.
func (db *DB) ReadHistory(ctx context.Context, userID, chatID, seq int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		res, err := tx.ExecContext(ctx,
			`UPDATE members SET read_seq = min(?, (SELECT last_seq FROM chats WHERE id = ?))
			 WHERE chat_id = ? AND user_id = ? AND read_seq < min(?, (SELECT last_seq FROM chats WHERE id = ?))`,
			seq, chatID, chatID, userID, seq, chatID)
		if err != nil {
			return classify("sqlite.ReadHistory", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		var read int64
		if err := tx.QueryRowContext(ctx, `SELECT read_seq FROM members WHERE chat_id = ? AND user_id = ?`, chatID, userID).Scan(&read); err != nil {
			return classify("sqlite.ReadHistory", err)
		}
		var broadcast bool
		if err := tx.QueryRowContext(ctx, sqlstore.ChatBroadcast, chatID).Scan(&broadcast); err != nil {
			return classify("sqlite.ReadHistory", err)
		}
		if broadcast {
			// Only the reader's own devices learn; nobody gets receipts.
			u := herald.Update{UserID: userID, Kind: herald.UpdReadInbox, ChatID: chatID, Seq: read, ActorID: userID, At: at}
			if err := logUpdate(ctx, tx, &u); err != nil {
				return err
			}
			ups = []herald.Update{u}
			return nil
		}
		ups, err = logForMembers(ctx, tx, chatID, herald.Update{ChatID: chatID, Seq: read, ActorID: userID, At: at}, func(u *herald.Update) {
			u.Kind = herald.UpdReadOutbox
			if u.UserID == userID {
				u.Kind = herald.UpdReadInbox
			}
		})
		return err
	})
	return ups, err
}
