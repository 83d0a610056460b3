package herald

import "time"

// ChatKind says what sort of conversation a chat is.
type ChatKind int

// Chat kinds. The numbers are stored; never reuse one.
const (
	Direct ChatKind = 1
	Group  ChatKind = 2
)

func (k ChatKind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Group:
		return "group"
	}
	return "unknown"
}

// Role is a member's standing in a chat.
type Role int

// Roles, stored as numbers.
const (
	RoleMember Role = 1
	RoleAdmin  Role = 2
	RoleOwner  Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleMember:
		return "member"
	case RoleAdmin:
		return "admin"
	case RoleOwner:
		return "owner"
	}
	return "none"
}

// Chat is a conversation with its own gap-free message sequence.
type Chat struct {
	ID          int64
	Kind        ChatKind
	Title       string // groups only
	CreatedBy   int64
	CreatedAt   time.Time
	LastSeq     int64 // highest message seq used in the chat
	MemberCount int
}

// Member is a user's membership in a chat.
type Member struct {
	ChatID   int64
	UserID   int64
	Role     Role
	ReadSeq  int64 // the member has read everything up to here
	JoinedAt time.Time
}

// Dialog is one line of a user's chat list.
type Dialog struct {
	Chat        Chat
	Peer        *User    // the other person, in direct chats
	Last        *Message // newest message the user can see, if any
	Unread      int      // incoming messages after ReadSeq
	ReadSeq     int64    // how far the user has read
	PeerReadSeq int64    // how far the others have read (outbox ticks)
	Role        Role
}
