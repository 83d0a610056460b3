package sqlstore

import (
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
)

// The rows both stores read, and their scanners.

// UserCols are the columns of a users row, in the order ScanUser reads them.
const UserCols = `id, username, display_name, created_at, role, suspended_until, suspend_reason`

// ScanUser reads UserCols, then any extra columns into extra.
func ScanUser(s Row, extra ...any) (herald.User, error) {
	var u herald.User
	var created, until int64
	err := s.Scan(append([]any{&u.ID, &u.Username, &u.DisplayName, &created, &u.Role, &until, &u.SuspendReason}, extra...)...)
	u.CreatedAt, u.SuspendedUntil = FromMillis(created), FromMillis(until)
	return u, err
}

// DeviceCols are the columns of a devices row, in the order ScanDevice reads them.
const DeviceCols = `id, user_id, name, created_at, last_seen`

// ScanDevice reads a row of DeviceCols.
func ScanDevice(s Row) (herald.Device, error) {
	var d herald.Device
	var created, seen int64
	err := s.Scan(&d.ID, &d.UserID, &d.Name, &created, &seen)
	d.CreatedAt, d.LastSeen = FromMillis(created), FromMillis(seen)
	return d, err
}

// EncodeSeqs is the comma-separated text an update's seqs are stored as.
func EncodeSeqs(s []int64) string {
	if len(s) == 0 {
		return ""
	}
	b := make([]byte, 0, 8*len(s))
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return string(b)
}

// DecodeSeqs reads what EncodeSeqs wrote.
func DecodeSeqs(s string) []int64 {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]int64, 0, len(parts))
	for _, p := range parts {
		if v, err := strconv.ParseInt(p, 10, 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// ChatCols are the columns of a chats row, in the order ScanChat reads them.
const ChatCols = `id, kind, title, username, description, signatures, broadcast, pts, created_by, created_at, last_seq, member_count, ttl, taken_down, takedown_reason`

// ScanChat reads a row of ChatCols.
func ScanChat(s Row) (herald.Chat, error) {
	var c herald.Chat
	var kind, sigs, bc, down int
	var created, ttl int64
	err := s.Scan(&c.ID, &kind, &c.Title, &c.Username, &c.Description, &sigs, &bc, &c.Pts, &c.CreatedBy, &created, &c.LastSeq, &c.MemberCount, &ttl, &down, &c.TakedownReason)
	c.TakenDown = down != 0
	c.TTL = time.Duration(ttl) * time.Millisecond
	c.Kind = herald.ChatKind(kind)
	c.Signatures, c.Broadcast = sigs != 0, bc != 0
	c.CreatedAt = FromMillis(created)
	return c, err
}

// MemberCols are the columns of a members row, in the order ScanMember reads them.
const MemberCols = `chat_id, user_id, role, read_seq, muted, joined_at`

// ScanMember reads a row of MemberCols.
func ScanMember(s Row) (herald.Member, error) {
	var m herald.Member
	var role, muted int
	var joined int64
	err := s.Scan(&m.ChatID, &m.UserID, &role, &m.ReadSeq, &muted, &joined)
	m.Role, m.Muted = herald.Role(role), muted != 0
	m.JoinedAt = FromMillis(joined)
	return m, err
}

// MessageCols are the columns of a messages row, in the order ScanMessage
// reads them (and an INSERT of a message lists them).
const MessageCols = `chat_id, seq, sender_id, random_id, body, reply_to, fwd_user, fwd_chat, fwd_seq, sent_at, edited_at, deleted, views, ttl, expires_at, waiting, sealed_until, service, file_id, signed`

// ScanMessage reads a row of MessageCols.
func ScanMessage(s Row) (herald.Message, error) {
	var m herald.Message
	var fu, fc, fs, sent, edited, ttl, expires, sealed int64
	var deleted, waiting, service, signed int
	var fileID string
	err := s.Scan(&m.ChatID, &m.Seq, &m.SenderID, &m.RandomID, &m.Body, &m.ReplyTo, &fu, &fc, &fs, &sent, &edited, &deleted, &m.Views, &ttl, &expires, &waiting, &sealed, &service, &fileID, &signed)
	if fileID != "" {
		m.File = &herald.File{ID: fileID}
	}
	m.TTL, m.ExpiresAt, m.SealedUntil = time.Duration(ttl)*time.Millisecond, FromMillis(expires), FromMillis(sealed)
	m.Waiting, m.Service, m.Signed = waiting != 0, service != 0, signed != 0
	if fu != 0 || fc != 0 {
		m.Fwd = &herald.Forward{UserID: fu, ChatID: fc, Seq: fs}
	}
	m.SentAt, m.EditedAt, m.Deleted = FromMillis(sent), FromMillis(edited), deleted != 0
	return m, err
}
