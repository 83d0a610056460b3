package sqlstore

import (
	"context"
	"math"

	"github.com/heraldim/herald"
)

// Queries on chats and their members.
const (
	ChatRow       = `SELECT ` + ChatCols + ` FROM chats WHERE id = ?`
	ChatBroadcast = `SELECT broadcast FROM chats WHERE id = ?`
	// DirectChatID: the pair's lower user id, then the higher.
	DirectChatID     = `SELECT chat_id FROM direct_chats WHERE user_lo = ? AND user_hi = ?`
	InsertDirectChat = `INSERT INTO direct_chats (user_lo, user_hi, chat_id) VALUES (?, ?, ?)`
	// InsertMember adds a member who has read all that came before: chat,
	// user, role, joined at, chat. It changes nothing for a member
	// already there, and leaves member_count to the caller (AddMemberCount).
	InsertMember = `INSERT INTO members (chat_id, user_id, role, read_seq, joined_at)
		SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS INTEGER), last_seq, CAST(? AS BIGINT) FROM chats WHERE id = ?
		ON CONFLICT (chat_id, user_id) DO NOTHING`
	// AddMemberCount: how many members were added, chat.
	AddMemberCount = `UPDATE chats SET member_count = member_count + ? WHERE id = ?`
	// RemoveMemberCount returns whether the chat is broadcast, which
	// decides who hears of the departure.
	RemoveMemberCount = `UPDATE chats SET member_count = member_count - 1 WHERE id = ? RETURNING broadcast`
	DeleteMember      = `DELETE FROM members WHERE chat_id = ? AND user_id = ?`
	// SetMemberRole: role, chat, user.
	SetMemberRole = `UPDATE members SET role = ? WHERE chat_id = ? AND user_id = ?`
)

// InsertChat stores c inside the writer's transaction tx and sets its id.
func (d Dialect) InsertChat(ctx context.Context, tx Querier, c *herald.Chat) error {
	err := tx.QueryRow(ctx,
		`INSERT INTO chats (kind, title, username, description, signatures, broadcast, created_by, created_at, last_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		int(c.Kind), c.Title, c.Username, c.Description, Flag(c.Signatures), Flag(c.Broadcast), c.CreatedBy, Millis(c.CreatedAt), Millis(c.CreatedAt)).Scan(&c.ID)
	return d.wrap("insertChat", err)
}

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

// OwnedChats implements store.Store.
func (r Reads) OwnedChats(ctx context.Context, userID int64) (int, error) {
	var n int
	err := r.q.QueryRow(ctx, `SELECT count(*) FROM members WHERE user_id = ? AND role = ?`, userID, int(herald.RoleOwner)).Scan(&n)
	return n, r.d.wrap("OwnedChats", err)
}

// ChatByID reads chat id through q, the read pool or a writer's
// transaction.
func (d Dialect) ChatByID(ctx context.Context, q Querier, id int64) (herald.Chat, error) {
	c, err := ScanChat(q.QueryRow(ctx, ChatRow, id))
	if NoRows(err) {
		return c, herald.Errorf(herald.NotFound, "no chat %d", id)
	}
	return c, d.wrap("Chat", err)
}

// Chat implements store.Store.
func (r Reads) Chat(ctx context.Context, chatID int64) (herald.Chat, error) {
	return r.d.ChatByID(ctx, r.q, chatID)
}

// FinishDialogs completes Dialogs' lines once each store has read what
// DialogChats leaves out: it puts in each direct chat's peer from users.
func FinishDialogs(ds []herald.Dialog, users map[int64]herald.User) {
	for i := range ds {
		if p := ds[i].Peer; p != nil {
			u := users[p.ID]
			ds[i].Peer = &u
		}
	}
}

// DialogChats is the first half of Dialogs: up to limit of the user's
// chats after the cursor, with their role, read position and mute, most
// recently active first. What each line needs besides (the last message,
// the unread count, the peer's read position) each store reads its own
// way, with DialogUnread, DialogPeerRead and DialogPeer.
func (r Reads) DialogChats(ctx context.Context, userID int64, after herald.DialogCursor, limit int) ([]herald.Dialog, error) {
	at, id := int64(math.MaxInt64), int64(math.MaxInt64)
	if after != (herald.DialogCursor{}) {
		at, id = Millis(after.At), after.ChatID
	}
	out, err := scanAll(ctx, r.q, func(row Row) (herald.Dialog, error) {
		var d herald.Dialog
		var role, muted int
		var active int64
		var err error
		d.Chat, err = ScanChat(extraScan{row, []any{&role, &d.ReadSeq, &muted, &active}})
		d.Role, d.Muted, d.Active = herald.Role(role), muted != 0, FromMillis(active)
		return d, err
	}, `SELECT c.id, c.kind, c.title, c.username, c.description, c.signatures, c.broadcast, c.pts, c.created_by, c.created_at, c.last_seq, c.member_count, c.ttl,
		        c.taken_down, c.takedown_reason, m.role, m.read_seq, m.muted, c.last_at
		 FROM members m JOIN chats c ON c.id = m.chat_id
		 WHERE m.user_id = ? AND (c.last_at < ? OR (c.last_at = ? AND c.id < ?))
		 ORDER BY c.last_at DESC, c.id DESC LIMIT ?`, userID, at, at, id, limit)
	return out, r.d.wrap("Dialogs", err)
}

// Queries for each line of Dialogs.
const (
	// DialogUnread: chat, read seq, user, user, chat.
	DialogUnread = `SELECT count(*) FROM messages WHERE chat_id = ? AND seq > ? AND sender_id <> ? AND deleted = 0
		AND seq NOT IN (SELECT seq FROM hidden WHERE user_id = ? AND chat_id = ?)`
	// DialogPeerRead: chat, user.
	DialogPeerRead = `SELECT coalesce(max(read_seq), 0) FROM members WHERE chat_id = ? AND user_id <> ?`
	// DialogPeer: user, chat.
	DialogPeer = `SELECT CASE WHEN user_lo = ? THEN user_hi ELSE user_lo END FROM direct_chats WHERE chat_id = ?`
)

// extraScan lets a scanner written for one column list read a row that
// has more columns after them.
type extraScan struct {
	row   Row
	extra []any
}

func (e extraScan) Scan(dst ...any) error { return e.row.Scan(append(dst, e.extra...)...) }
