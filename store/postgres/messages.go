package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
)

// appendSQL is AppendMessage in one statement, so one round trip: the seq
// (unless the send is a retry of a stored one), the message row, the
// sender's read position, and the fan-out — a row in every member's log,
// or one in the chat's log if it is broadcast. Each CTE writes a different
// table, which CockroachDB requires too. The row lock on the chat is the
// writer's, taken before the op runs, so the retry check cannot race.
const appendSQL = `WITH c AS (
		UPDATE chats SET last_seq = last_seq + 1, last_at = ?, pts = pts + broadcast
		WHERE id = ? AND NOT EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND sender_id = ? AND random_id = ? AND random_id <> 0)
		RETURNING last_seq, broadcast, pts),
	ins AS (
		INSERT INTO messages (` + sqlstore.MessageCols + `)
		SELECT ?::bigint, last_seq, ?::bigint, ?::bigint, ?::bytea, ?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::bigint, 0, 0, 0,
			?::bigint, ?::bigint, ?::integer, ?::bigint, ?::integer, ?::text, ?::integer
		FROM c
		RETURNING seq),
	fa AS (
		UPDATE files SET attached = 1 FROM ins WHERE files.id = ? AND files.attached = 0),
	rd AS (
		UPDATE members SET read_seq = ins.seq FROM ins
		WHERE members.chat_id = ? AND members.user_id = ? AND members.read_seq < ins.seq),
	u AS (
		UPDATE users SET pts = pts + 1
		WHERE id IN (SELECT user_id FROM members WHERE chat_id = ?) AND EXISTS (SELECT 1 FROM c WHERE broadcast = 0)
		RETURNING id, pts),
	lg AS (
		INSERT INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at)
		SELECT u.id, u.pts, ?::integer, ?::bigint, ins.seq, ?::bigint, '', ?::bigint FROM u, ins
		RETURNING user_id, pts),
	cl AS (
		INSERT INTO chat_updates (chat_id, pts, kind, seq, seqs, actor_id, at)
		SELECT ?::bigint, c.pts, ?::integer, c.last_seq, '', ?::bigint, ?::bigint FROM c WHERE c.broadcast = 1)
	SELECT c.last_seq, c.broadcast, c.pts, coalesce(lg.user_id, 0), coalesce(lg.pts, 0) FROM c LEFT JOIN lg ON true`

// AppendMessage implements store.Store. The writer stores it with the
// other appends of its batch (appendGroup) when it can; otherwise, run
// on its own, it is one round trip: the check for a retry and appendSQL,
// pipelined.
func (db *DB) AppendMessage(ctx context.Context, in herald.Message) (herald.Message, []herald.Update, bool, error) {
	var m herald.Message
	var ups []herald.Update
	var dup bool
	req := &appendReq{in: in}
	err := db.queue(&op{ctx: ctx, locks: chatLocks(in.ChatID), app: req, done: make(chan error, 1), fn: func(ctx context.Context, t *tx) error {
		m, ups, dup = in, nil, false
		bt := &batch{}
		if m.RandomID != 0 {
			// The writer took the chat's lock before this ran, so a
			// concurrent retry of this send (on another node, or in
			// another writer's batch) has committed, and is seen here, or
			// waits for this one.
			bt.row(func(r pgx.Row) error {
				prev, err := sqlstore.ScanMessage(r)
				if err == nil {
					m, dup = prev, true
				}
				if noRows(err) {
					return nil
				}
				return err
			}, sqlstore.SentBefore, m.ChatID, m.SenderID, m.RandomID)
		}
		var fu, fc, fs int64
		if m.Fwd != nil {
			fu, fc, fs = m.Fwd.UserID, m.Fwd.ChatID, m.Fwd.Seq
		}
		sent := sqlstore.Millis(m.SentAt)
		var stored bool
		var chatPts int64
		var broadcast int
		bt.rows(func(r pgx.Rows) error {
			var u herald.Update
			if err := r.Scan(&m.Seq, &broadcast, &chatPts, &u.UserID, &u.Pts); err != nil {
				return err
			}
			stored = true
			if u.UserID != 0 {
				ups = append(ups, u)
			}
			return nil
		}, appendSQL,
			sent, m.ChatID, m.ChatID, m.SenderID, m.RandomID,
			m.ChatID, m.SenderID, m.RandomID, m.Body, m.ReplyTo, fu, fc, fs, sent,
			m.TTL.Milliseconds(), sqlstore.Millis(m.ExpiresAt), sqlstore.Flag(m.Waiting), sqlstore.Millis(m.SealedUntil), sqlstore.Flag(m.Service), sqlstore.FileID(m), sqlstore.Flag(m.Signed),
			sqlstore.FileID(m),
			m.ChatID, m.SenderID,
			m.ChatID,
			int(herald.UpdNewMessage), m.ChatID, m.SenderID, sent,
			m.ChatID, int(herald.UpdNewMessage), m.SenderID, sent)
		if err := bt.run(ctx, t); err != nil {
			return classify("postgres.AppendMessage", err)
		}
		if dup {
			return nil
		}
		if !stored {
			return herald.Errorf(herald.NotFound, "no chat %d", m.ChatID)
		}
		if len(m.Extra) > 0 {
			// Its own round trip, after the seq is known: only bots'
			// messages with a keyboard pay it.
			if err := dialect.SetExtra(ctx, shim{t}, m.ChatID, m.Seq, m.Extra); err != nil {
				return err
			}
		}
		msg := m
		tmpl := herald.Update{Kind: herald.UpdNewMessage, ChatID: m.ChatID, Seq: m.Seq, ActorID: m.SenderID, Message: &msg, At: m.SentAt}
		if broadcast != 0 {
			tmpl.Pts = chatPts
			ups = []herald.Update{tmpl}
			return nil
		}
		// In member order, as each member's row was logged.
		slices.SortFunc(ups, func(a, b herald.Update) int { return cmp.Compare(a.UserID, b.UserID) })
		for i := range ups {
			u := tmpl
			u.UserID, u.Pts = ups[i].UserID, ups[i].Pts
			ups[i] = u
		}
		return nil
	}})
	if err != nil {
		return in, nil, false, err
	}
	if req.grouped {
		return req.m, req.ups, req.dup, nil
	}
	return m, ups, dup, nil
}

// Message implements store.Store.
func (db *DB) Message(ctx context.Context, userID, chatID, seq int64) (herald.Message, error) {
	var m herald.Message
	var found bool
	var hidden int
	b := &batch{}
	b.row(func(r pgx.Row) error {
		var err error
		m, err = sqlstore.ScanMessage(r)
		found = err == nil
		if noRows(err) {
			return nil
		}
		return err
	}, sqlstore.MessageAt, chatID, seq)
	b.row(func(r pgx.Row) error { return r.Scan(&hidden) }, sqlstore.IsHidden, userID, chatID, seq)
	if err := b.run(ctx, db.rq); err != nil {
		return herald.Message{}, classify("postgres.Message", err)
	}
	if !found || hidden > 0 {
		return herald.Message{}, herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return m, nil
}

// History implements store.Store.
func (db *DB) History(ctx context.Context, userID, chatID, before int64, limit int) ([]herald.Message, error) {
	var out []herald.Message
	b := &batch{}
	queueHistory(b, userID, chatID, before, limit, &out)
	return out, classify("postgres.History", b.run(ctx, db.rq))
}

// queueHistory queues the read of a page of history into *out.
func queueHistory(b *batch, userID, chatID, before int64, limit int, out *[]herald.Message) {
	if before <= 0 {
		before = 1 << 62
	}
	b.rows(func(r pgx.Rows) error {
		m, err := sqlstore.ScanMessage(r)
		*out = append(*out, m)
		return err
	}, sqlstore.History, chatID, before, userID, limit)
}

// EditMessage implements store.Store.
func (db *DB) EditMessage(ctx context.Context, chatID, seq int64, body []byte, at time.Time) (herald.Message, []herald.Update, error) {
	var m herald.Message
	var ups []herald.Update
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		var found, broadcast bool
		bt := &batch{}
		bt.row(func(r pgx.Row) error {
			var err error
			m, err = sqlstore.ScanMessage(r)
			found = err == nil
			if noRows(err) {
				return nil
			}
			return err
		}, sqlstore.EditMessage, body, sqlstore.Millis(at), chatID, seq)
		isBroadcast(bt, chatID, &broadcast)
		err := bt.run(ctx, t)
		if !found && (err == nil || noRows(err)) {
			return herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
		}
		if err != nil {
			return classify("postgres.EditMessage", err)
		}
		msg := m
		bt = &batch{}
		logEverywhere(bt, broadcast, herald.Update{
			Kind: herald.UpdEditMessage, ChatID: chatID, Seq: seq, ActorID: m.SenderID, Message: &msg, At: at,
		}, &ups)
		return classify("postgres.EditMessage", bt.run(ctx, t))
	})
	if err != nil {
		return herald.Message{}, nil, err
	}
	return m, ups, nil
}

// DeleteMessages implements store.Store.
func (db *DB) DeleteMessages(ctx context.Context, userID, chatID int64, seqs []int64, forEveryone bool, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		var broadcast bool
		n := make([]int64, len(seqs))
		bt := &batch{}
		for i, seq := range seqs {
			if forEveryone {
				// Unlike SQLite's secure_delete, PostgreSQL keeps the old
				// row version until VACUUM; see the package documentation.
				bt.execN(&n[i], sqlstore.DeleteMessage, chatID, seq)
			} else {
				bt.execN(&n[i], sqlstore.HideMessage, userID, chatID, seq)
			}
		}
		if forEveryone {
			bt.row(func(r pgx.Row) error {
				var v int
				err := r.Scan(&v)
				broadcast = v != 0
				if noRows(err) {
					return nil // nothing was deleted in a chat that does not exist
				}
				return err
			}, sqlstore.ChatBroadcast, chatID)
		}
		if err := bt.run(ctx, t); err != nil {
			return classify("postgres.DeleteMessages", err)
		}
		var done []int64
		for i, seq := range seqs {
			if n[i] > 0 {
				done = append(done, seq)
			}
		}
		if len(done) == 0 {
			return nil
		}
		tmpl := herald.Update{Kind: herald.UpdDelete, ChatID: chatID, Seqs: done, ActorID: userID, At: at}
		bt = &batch{}
		if !forEveryone {
			tmpl.UserID = userID
			logUpdate(bt, tmpl, &ups)
		} else {
			logEverywhere(bt, broadcast, tmpl, &ups)
		}
		return classify("postgres.DeleteMessages", bt.run(ctx, t))
	})
	return ups, err
}

// ReadHistory implements store.Store.
func (db *DB) ReadHistory(ctx context.Context, userID, chatID, seq int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		var read int64
		var moved, broadcast bool
		bt := &batch{}
		// LEAST is SQLite's two-argument min().
		bt.row(func(r pgx.Row) error {
			err := r.Scan(&read)
			moved = err == nil
			if noRows(err) {
				return nil
			}
			return err
		}, `UPDATE members SET read_seq = LEAST(?, (SELECT last_seq FROM chats WHERE id = ?))
			 WHERE chat_id = ? AND user_id = ? AND read_seq < LEAST(?, (SELECT last_seq FROM chats WHERE id = ?))
			 RETURNING read_seq`,
			seq, chatID, chatID, userID, seq, chatID)
		isBroadcast(bt, chatID, &broadcast)
		err := bt.run(ctx, t)
		if !moved && (err == nil || noRows(err)) {
			return nil
		}
		if err != nil {
			return classify("postgres.ReadHistory", err)
		}
		bt = &batch{}
		if broadcast {
			// Only the reader's own devices learn; nobody gets receipts.
			logUpdate(bt, herald.Update{UserID: userID, Kind: herald.UpdReadInbox, ChatID: chatID, Seq: read, ActorID: userID, At: at}, &ups)
		} else {
			logForMembers(bt, chatID, herald.Update{Kind: herald.UpdReadOutbox, ChatID: chatID, Seq: read, ActorID: userID, At: at},
				&herald.Update{UserID: userID, Kind: herald.UpdReadInbox, Seq: read, ActorID: userID}, &ups)
		}
		return classify("postgres.ReadHistory", bt.run(ctx, t))
	})
	return ups, err
}
