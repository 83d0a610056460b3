package herald

import "time"

// Reactor is one reaction as stored: UserID put Emoji on a message.
type Reactor struct {
	UserID int64
	Emoji  string
	At     time.Time
}

// Reaction is one emoji's tally on a message, as a member sees it.
type Reaction struct {
	Emoji string
	Count int
	Mine  bool    // the member reading it is one of them
	Users []int64 // who reacted, first first; empty in channels, whose counts are anonymous
}

// Pin is a pinned message of a chat.
type Pin struct {
	ChatID int64
	Seq    int64
	By     int64
	At     time.Time
}

// Limits of reactions and pins.
const (
	MaxReactionsPerUser = 3   // distinct emoji one person puts on one message
	MaxPins             = 50  // pinned messages per chat
	MaxEmojiBytes       = 32  // one emoji, with its modifiers
	MaxEntities         = 100 // formatting entities on one message
)

// DefaultReactions is the set of emoji a server allows when its operator
// names none.
var DefaultReactions = []string{"👍", "👎", "❤️", "🔥", "🎉", "😂", "😮", "😢", "🙏", "👀"}
