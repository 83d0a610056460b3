package herald

import "time"

// ChatKind says what sort of conversation a chat is.
type ChatKind int

// Chat kinds. The numbers are stored; never reuse one.
const (
	Direct  ChatKind = 1
	Group   ChatKind = 2
	Channel ChatKind = 3
)

func (k ChatKind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Group:
		return "group"
	case Channel:
		return "channel"
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
//
// A Broadcast chat (every channel, and groups too large to copy each
// message into every member's update log) fans out on read: a message is
// stored once, announced once on the chat's bus topic, and recorded once in
// the chat's own log, numbered by Pts, from which devices catch up.
type Chat struct {
	ID          int64
	Kind        ChatKind
	Title       string // groups and channels
	Username    string // public channels: the unique @name; empty otherwise
	Description string // channels
	Signatures  bool   // channels: posts show their author
	Broadcast   bool   // fan-out on read
	Pts         int64  // broadcast chats: the position of the chat's own log
	CreatedBy   int64
	CreatedAt   time.Time
	LastSeq     int64         // highest message seq used in the chat
	MemberCount int           // a counter, never a scan
	TTL         time.Duration // auto-delete timer for new messages; 0 for off

	TakenDown      bool // by the server's operators: nothing of it is served
	TakedownReason string
}

// Public reports whether anyone may preview and join the chat by name.
func (c Chat) Public() bool { return c.Username != "" }

// Member is a user's membership in a chat.
type Member struct {
	ChatID   int64
	UserID   int64
	Role     Role
	ReadSeq  int64 // the member has read everything up to here
	Muted    bool  // no pushes for this chat; still readable
	JoinedAt time.Time
}

// Dialog is one line of a user's chat list.
type Dialog struct {
	Chat   Chat
	Peer   *User    // the other person, in direct chats
	Last   *Message // newest message the user can see, if any
	Unread int      // incoming messages after ReadSeq
	// UnreadMentions counts the unread messages that mention the user:
	// the chat list's "@", shown even when the chat is muted.
	UnreadMentions int
	ReadSeq        int64 // how far the user has read
	PeerReadSeq    int64 // how far the others have read (outbox ticks)
	Role           Role
	Muted          bool
	// Active is the chat's last activity: its newest message, visible to
	// this user or not, else its creation. The chat list is in this order.
	Active time.Time
}

// DialogCursor is where a page of the chat list starts: after the line
// of chat ChatID, last active at At. The zero cursor starts at the top.
type DialogCursor struct {
	At     time.Time
	ChatID int64
}
