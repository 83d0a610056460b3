package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// CreateChannel implements store.Store.
func (db *DB) CreateChannel(ctx context.Context, c herald.Chat) (herald.Chat, []herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		c.Kind, c.Broadcast = herald.Channel, true
		if err := insertChat(ctx, tx, &c); err != nil {
			return err
		}
		if c.Username != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO names (name, chat_id) VALUES (?, ?)`, c.Username, c.ID); err != nil {
				err = classify("sqlite.CreateChannel", err)
				if herald.IsKind(err, herald.AlreadyExists) {
					return herald.Errorf(herald.AlreadyExists, "the name @%s is taken", c.Username)
				}
				return err
			}
		}
		if _, err := addMember(ctx, tx, c.ID, c.CreatedBy, herald.RoleOwner, c.CreatedAt); err != nil {
			return err
		}
		u := herald.Update{UserID: c.CreatedBy, Kind: herald.UpdChatJoined, ChatID: c.ID, ActorID: c.CreatedBy, At: c.CreatedAt}
		if err := logUpdate(ctx, tx, &u); err != nil {
			return err
		}
		ups = []herald.Update{u}
		var err error
		c, err = chatByID(ctx, tx, c.ID)
		return err
	})
	return c, ups, err
}

// ChatByName implements store.Store.
func (db *DB) ChatByName(ctx context.Context, name string) (herald.Chat, error) {
	var id sql.NullInt64
	err := db.rq.QueryRowContext(ctx, `SELECT chat_id FROM names WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !id.Valid) {
		return herald.Chat{}, herald.Errorf(herald.NotFound, "no chat @%s", name)
	}
	if err != nil {
		return herald.Chat{}, classify("sqlite.ChatByName", err)
	}
	return chatByID(ctx, db.rq, id.Int64)
}

// UpdateChat implements store.Store.
func (db *DB) UpdateChat(ctx context.Context, c herald.Chat) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE chats SET title = ?, description = ?, signatures = ? WHERE id = ?`,
			c.Title, c.Description, sqlstore.Flag(c.Signatures), c.ID)
		if err != nil {
			return classify("sqlite.UpdateChat", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.NotFound, "no chat %d", c.ID)
		}
		return nil
	})
}

// SetMuted implements store.Store.
func (db *DB) SetMuted(ctx context.Context, chatID, userID int64, muted bool) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE members SET muted = ? WHERE chat_id = ? AND user_id = ?`, sqlstore.Flag(muted), chatID, userID)
		if err != nil {
			return classify("sqlite.SetMuted", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		return nil
	})
}

// BroadcastChats implements store.Store.
func (db *DB) BroadcastChats(ctx context.Context, userID int64) ([]int64, error) {
	rows, err := db.rq.QueryContext(ctx,
		`SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id
		 WHERE m.user_id = ? AND m.muted = 0 AND c.broadcast = 1 ORDER BY m.chat_id`, userID)
	if err != nil {
		return nil, classify("sqlite.BroadcastChats", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify("sqlite.BroadcastChats", err)
		}
		out = append(out, id)
	}
	return out, classify("sqlite.BroadcastChats", rows.Err())
}

// ViewPosts implements store.Store.
func (db *DB) ViewPosts(ctx context.Context, chatID, userID, seq int64) error {
	return db.do(ctx, func(tx querier) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM members WHERE chat_id = ? AND user_id = ?`, chatID, userID).Scan(&n); err != nil {
			return classify("sqlite.ViewPosts", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		var from int64
		err := tx.QueryRowContext(ctx, `SELECT view_seq FROM viewers WHERE chat_id = ? AND user_id = ?`, chatID, userID).Scan(&from)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return classify("sqlite.ViewPosts", err)
		}
		if seq <= from {
			return nil
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO viewers (chat_id, user_id, view_seq) VALUES (?, ?, ?)
			 ON CONFLICT (chat_id, user_id) DO UPDATE SET view_seq = excluded.view_seq`, chatID, userID, seq); err != nil {
			return classify("sqlite.ViewPosts", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET views = views + 1 WHERE chat_id = ? AND seq > ? AND seq <= ? AND deleted = 0`, chatID, from, seq)
		return classify("sqlite.ViewPosts", err)
	})
}

// CreateChatInvite implements store.Store.
func (db *DB) CreateChatInvite(ctx context.Context, code string, chatID, by int64, at time.Time) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO chat_invites (code, chat_id, created_by, created_at) VALUES (?, ?, ?, ?)`, code, chatID, by, sqlstore.Millis(at))
		return classify("sqlite.CreateChatInvite", err)
	})
}

// ChatInvite implements store.Store.
func (db *DB) ChatInvite(ctx context.Context, code string) (int64, error) {
	var id int64
	err := db.rq.QueryRowContext(ctx, `SELECT chat_id FROM chat_invites WHERE code = ? AND revoked = 0`, code).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, herald.Errorf(herald.NotFound, "the invite is unknown or was revoked")
	}
	return id, classify("sqlite.ChatInvite", err)
}

// RevokeChatInvite implements store.Store.
func (db *DB) RevokeChatInvite(ctx context.Context, chatID int64, code string) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE chat_invites SET revoked = 1 WHERE code = ? AND chat_id = ? AND revoked = 0`, code, chatID)
		if err != nil {
			return classify("sqlite.RevokeChatInvite", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.NotFound, "no live invite %q for this chat", code)
		}
		return nil
	})
}

// MakeBroadcast implements store.Store.
func (db *DB) MakeBroadcast(ctx context.Context, chatID int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		var pts int64
		err := tx.QueryRowContext(ctx, `UPDATE chats SET broadcast = 1 WHERE id = ? AND broadcast = 0 RETURNING pts`, chatID).Scan(&pts)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already broadcast
		}
		if err != nil {
			return classify("sqlite.MakeBroadcast", err)
		}
		ups, err = logForMembers(ctx, tx, chatID, herald.Update{Kind: herald.UpdChatJoined, ChatID: chatID, Seq: pts, At: at}, nil)
		return err
	})
	return ups, err
}
