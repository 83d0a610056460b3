package sqlstore

import (
	"context"

	"github.com/heraldim/herald"
)

// Member implements store.Store.
func (r Reads) Member(ctx context.Context, chatID, userID int64) (herald.Member, error) {
	m, err := ScanMember(r.q.QueryRow(ctx, `SELECT `+MemberCols+` FROM members WHERE chat_id = ? AND user_id = ?`, chatID, userID))
	if NoRows(err) {
		return m, herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
	}
	return m, r.d.wrap("Member", err)
}

// Members implements store.Store.
func (r Reads) Members(ctx context.Context, chatID int64) ([]herald.Member, error) {
	out, err := scanAll(ctx, r.q, ScanMember, `SELECT `+MemberCols+` FROM members WHERE chat_id = ? ORDER BY user_id`, chatID)
	return out, r.d.wrap("Members", err)
}

// ChatByID reads chat id through q, the read pool or a writer's
// transaction.
func (d Dialect) ChatByID(ctx context.Context, q Querier, id int64) (herald.Chat, error) {
	c, err := ScanChat(q.QueryRow(ctx, `SELECT `+ChatCols+` FROM chats WHERE id = ?`, id))
	if NoRows(err) {
		return c, herald.Errorf(herald.NotFound, "no chat %d", id)
	}
	return c, d.wrap("Chat", err)
}

// Chat implements store.Store.
func (r Reads) Chat(ctx context.Context, chatID int64) (herald.Chat, error) {
	return r.d.ChatByID(ctx, r.q, chatID)
}
