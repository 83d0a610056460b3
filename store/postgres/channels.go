package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// CreateChannel implements store.Store.
func (db *DB) CreateChannel(ctx context.Context, c herald.Chat) (herald.Chat, []herald.Update, error) {
	var ups []herald.Update
	var out herald.Chat
	err := db.do(ctx, locks{users: []int64{c.CreatedBy}}, func(ctx context.Context, t *tx) error {
		ups = nil
		ch := c
		ch.Kind, ch.Broadcast = herald.Channel, true
		if err := insertChat(ctx, t, &ch); err != nil {
			return err
		}
		if ch.Username != "" {
			if _, err := t.exec(ctx, `INSERT INTO names (name, chat_id) VALUES (?, ?)`, ch.Username, ch.ID); err != nil {
				err = classify("postgres.CreateChannel", err)
				if herald.IsKind(err, herald.AlreadyExists) {
					return herald.Errorf(herald.AlreadyExists, "the name @%s is taken", ch.Username)
				}
				return err
			}
		}
		bt := &batch{}
		var added int64
		addMember(bt, ch.ID, ch.CreatedBy, herald.RoleOwner, ch.CreatedAt, &added)
		recountMembers(bt, ch.ID)
		logUpdate(bt, herald.Update{UserID: ch.CreatedBy, Kind: herald.UpdChatJoined, ChatID: ch.ID, ActorID: ch.CreatedBy, At: ch.CreatedAt}, &ups)
		queueChat(bt, ch.ID, &out)
		return classify("postgres.CreateChannel", bt.run(ctx, t))
	})
	if err != nil {
		return c, nil, err
	}
	return out, ups, nil
}

// ChatByName implements store.Store.
func (db *DB) ChatByName(ctx context.Context, name string) (herald.Chat, error) {
	var id *int64
	err := db.rq.queryRow(ctx, `SELECT chat_id FROM names WHERE name = ?`, name).Scan(&id)
	if noRows(err) || (err == nil && id == nil) {
		return herald.Chat{}, herald.Errorf(herald.NotFound, "no chat @%s", name)
	}
	if err != nil {
		return herald.Chat{}, classify("postgres.ChatByName", err)
	}
	return chatByID(ctx, db.rq, *id)
}

// UpdateChat implements store.Store.
func (db *DB) UpdateChat(ctx context.Context, c herald.Chat) error {
	return db.do(ctx, rowLocks(c.ID), func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE chats SET title = ?, description = ?, signatures = ? WHERE id = ?`,
			c.Title, c.Description, sqlstore.Flag(c.Signatures), c.ID)
		if err != nil {
			return classify("postgres.UpdateChat", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "no chat %d", c.ID)
		}
		return nil
	})
}

// SetMuted implements store.Store.
func (db *DB) SetMuted(ctx context.Context, chatID, userID int64, muted bool) error {
	return db.do(ctx, rowLocks(chatID), func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE members SET muted = ? WHERE chat_id = ? AND user_id = ?`, sqlstore.Flag(muted), chatID, userID)
		if err != nil {
			return classify("postgres.SetMuted", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		return nil
	})
}

// BroadcastChats implements store.Store.
func (db *DB) BroadcastChats(ctx context.Context, userID int64) ([]int64, error) {
	rows, err := db.rq.query(ctx,
		`SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id
		 WHERE m.user_id = ? AND m.muted = 0 AND c.broadcast = 1 ORDER BY m.chat_id`, userID)
	if err != nil {
		return nil, classify("postgres.BroadcastChats", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify("postgres.BroadcastChats", err)
		}
		out = append(out, id)
	}
	return out, classify("postgres.BroadcastChats", rows.Err())
}

// ViewPosts implements store.Store.
func (db *DB) ViewPosts(ctx context.Context, chatID, userID, seq int64) error {
	// The chat's lock (held from the start of the transaction) makes two
	// views by the same member, on two nodes, count each post once.
	return db.do(ctx, rowLocks(chatID), func(ctx context.Context, t *tx) error {
		var n int
		if err := t.queryRow(ctx, `SELECT count(*) FROM members WHERE chat_id = ? AND user_id = ?`, chatID, userID).Scan(&n); err != nil {
			return classify("postgres.ViewPosts", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		var from int64
		err := t.queryRow(ctx, `SELECT view_seq FROM viewers WHERE chat_id = ? AND user_id = ?`, chatID, userID).Scan(&from)
		if err != nil && !noRows(err) {
			return classify("postgres.ViewPosts", err)
		}
		if seq <= from {
			return nil
		}
		bt := &batch{}
		bt.exec(`INSERT INTO viewers (chat_id, user_id, view_seq) VALUES (?, ?, ?)
			ON CONFLICT (chat_id, user_id) DO UPDATE SET view_seq = excluded.view_seq`, chatID, userID, seq)
		bt.exec(`UPDATE messages SET views = views + 1 WHERE chat_id = ? AND seq > ? AND seq <= ? AND deleted = 0`, chatID, from, seq)
		return classify("postgres.ViewPosts", bt.run(ctx, t))
	})
}

// CreateChatInvite implements store.Store.
func (db *DB) CreateChatInvite(ctx context.Context, code string, chatID, by int64, at time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO chat_invites (code, chat_id, created_by, created_at) VALUES (?, ?, ?, ?)`, code, chatID, by, sqlstore.Millis(at))
		return classify("postgres.CreateChatInvite", err)
	})
}

// ChatInvite implements store.Store.
func (db *DB) ChatInvite(ctx context.Context, code string) (int64, error) {
	var id int64
	err := db.rq.queryRow(ctx, `SELECT chat_id FROM chat_invites WHERE code = ? AND revoked = 0`, code).Scan(&id)
	if noRows(err) {
		return 0, herald.Errorf(herald.NotFound, "the invite is unknown or was revoked")
	}
	return id, classify("postgres.ChatInvite", err)
}

// RevokeChatInvite implements store.Store.
func (db *DB) RevokeChatInvite(ctx context.Context, chatID int64, code string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE chat_invites SET revoked = 1 WHERE code = ? AND chat_id = ? AND revoked = 0`, code, chatID)
		if err != nil {
			return classify("postgres.RevokeChatInvite", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "no live invite %q for this chat", code)
		}
		return nil
	})
}

// MakeBroadcast implements store.Store.
func (db *DB) MakeBroadcast(ctx context.Context, chatID int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		var pts int64
		err := t.queryRow(ctx, `UPDATE chats SET broadcast = 1 WHERE id = ? AND broadcast = 0 RETURNING pts`, chatID).Scan(&pts)
		if noRows(err) {
			return nil // already broadcast
		}
		if err != nil {
			return classify("postgres.MakeBroadcast", err)
		}
		bt := &batch{}
		logForMembers(bt, chatID, herald.Update{Kind: herald.UpdChatJoined, ChatID: chatID, Seq: pts, At: at}, nil, &ups)
		return classify("postgres.MakeBroadcast", bt.run(ctx, t))
	})
	return ups, err
}
