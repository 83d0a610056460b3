package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Queries on channels' names, views and invite links.
const (
	// InsertChatName claims an @name for a chat: name, chat.
	InsertChatName = `INSERT INTO names (name, chat_id) VALUES (?, ?)`
	// IsMember: chat, user. A count, so that no row is no error.
	IsMember = `SELECT count(*) FROM members WHERE chat_id = ? AND user_id = ?`
	// ViewSeq: chat, user. How far a member's views have been counted.
	ViewSeq    = `SELECT view_seq FROM viewers WHERE chat_id = ? AND user_id = ?`
	SetViewSeq = `INSERT INTO viewers (chat_id, user_id, view_seq) VALUES (?, ?, ?)
		ON CONFLICT (chat_id, user_id) DO UPDATE SET view_seq = excluded.view_seq`
	// CountViews: chat, from (exclusive), to (inclusive).
	CountViews = `UPDATE messages SET views = views + 1 WHERE chat_id = ? AND seq > ? AND seq <= ? AND deleted = 0`
	// MakeBroadcast returns the chat's pts, from which its new log starts,
	// and no row if the chat was broadcast already.
	MakeBroadcast = `UPDATE chats SET broadcast = 1 WHERE id = ? AND broadcast = 0 RETURNING pts`
)

// ChatByName implements store.Store.
func (r Reads) ChatByName(ctx context.Context, name string) (herald.Chat, error) {
	var id *int64 // NULL for a user's name
	err := r.q.QueryRow(ctx, `SELECT chat_id FROM names WHERE name = ?`, name).Scan(&id)
	if NoRows(err) || (err == nil && id == nil) {
		return herald.Chat{}, herald.Errorf(herald.NotFound, "no chat @%s", name)
	}
	if err != nil {
		return herald.Chat{}, r.d.wrap("ChatByName", err)
	}
	return r.d.ChatByID(ctx, r.q, *id)
}

// UpdateChat is store.Store's UpdateChat inside the writer's transaction tx.
func (d Dialect) UpdateChat(ctx context.Context, tx Querier, c herald.Chat) error {
	n, err := tx.Exec(ctx, `UPDATE chats SET title = ?, description = ?, signatures = ? WHERE id = ?`,
		c.Title, c.Description, Flag(c.Signatures), c.ID)
	return d.affected(n, err, "UpdateChat", "no chat %d", c.ID)
}

// SetMuted is store.Store's SetMuted inside the writer's transaction tx.
func (d Dialect) SetMuted(ctx context.Context, tx Querier, chatID, userID int64, muted bool) error {
	n, err := tx.Exec(ctx, `UPDATE members SET muted = ? WHERE chat_id = ? AND user_id = ?`, Flag(muted), chatID, userID)
	return d.affected(n, err, "SetMuted", "not a member of chat %d", chatID)
}

// BroadcastChats implements store.Store.
func (r Reads) BroadcastChats(ctx context.Context, userID int64) ([]int64, error) {
	out, err := scanAll(ctx, r.q, func(row Row) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id
		 WHERE m.user_id = ? AND m.muted = 0 AND c.broadcast = 1 ORDER BY m.chat_id`, userID)
	return out, r.d.wrap("BroadcastChats", err)
}

// CreateChatInvite is store.Store's CreateChatInvite inside the writer's
// transaction tx.
func (d Dialect) CreateChatInvite(ctx context.Context, tx Querier, code string, chatID, by int64, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO chat_invites (code, chat_id, created_by, created_at) VALUES (?, ?, ?, ?)`, code, chatID, by, Millis(at))
	return d.wrap("CreateChatInvite", err)
}

// ChatInvite implements store.Store.
func (r Reads) ChatInvite(ctx context.Context, code string) (int64, error) {
	var id int64
	err := r.q.QueryRow(ctx, `SELECT chat_id FROM chat_invites WHERE code = ? AND revoked = 0`, code).Scan(&id)
	if NoRows(err) {
		return 0, herald.Errorf(herald.NotFound, "the invite is unknown or was revoked")
	}
	return id, r.d.wrap("ChatInvite", err)
}

// RevokeChatInvite is store.Store's RevokeChatInvite inside the writer's
// transaction tx.
func (d Dialect) RevokeChatInvite(ctx context.Context, tx Querier, chatID int64, code string) error {
	n, err := tx.Exec(ctx, `UPDATE chat_invites SET revoked = 1 WHERE code = ? AND chat_id = ? AND revoked = 0`, code, chatID)
	return d.affected(n, err, "RevokeChatInvite", "no live invite %q for this chat", code)
}

// SetChatTTL is store.Store's SetChatTTL inside the writer's transaction tx.
func (d Dialect) SetChatTTL(ctx context.Context, tx Querier, chatID int64, ttl time.Duration) error {
	n, err := tx.Exec(ctx, `UPDATE chats SET ttl = ? WHERE id = ?`, ttl.Milliseconds(), chatID)
	return d.affected(n, err, "SetChatTTL", "no chat %d", chatID)
}
