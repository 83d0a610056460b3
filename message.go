package herald

import (
	"time"
	"unicode/utf8"
)

// Message is one message in a chat, identified by (ChatID, Seq).
//
// Body is the text sealed for storage; Text is the plaintext and is only
// filled in by the service for delivery to members. Stores never see Text.
type Message struct {
	ChatID   int64
	Seq      int64
	SenderID int64
	RandomID int64 // the sender's idempotency key
	Text     string
	Body     []byte
	ReplyTo  int64
	Fwd      *Forward
	SentAt   time.Time
	EditedAt time.Time // zero if never edited
	Deleted  bool      // deleted for everyone; Body and Text are gone
	Views    int64     // channel posts: distinct members who have seen it
	Service  bool      // a notice from the server (e.g. a timer change), not from a person
	Signed   bool      // a channel post made while the channel showed signatures: it names its author for good
	File     *File     // the attachment, if any (Text is then its caption); stores fill in only ID

	// Self-destruct. TTL is the sender's timer; ExpiresAt is when the
	// message disappears. While Waiting (a direct-chat timer, which starts
	// when the recipient reads), ExpiresAt is the latest possible moment:
	// MaxTTL after sending. SealedUntil is when the key its body is sealed
	// under is destroyed (zero: sealed under the master key).
	TTL         time.Duration
	ExpiresAt   time.Time
	Waiting     bool
	SealedUntil time.Time

	// Extra is the sealed form of Extras (a bot's inline keyboard and text
	// entities), kept beside the message by the store; Extras is filled in
	// by the service for delivery, like Text.
	Extra  []byte
	Extras Extras

	// Filled in by the service for the member reading the message, never
	// stored on the row: its reactions, whether it is pinned, and whether
	// it mentions the reader.
	Reactions  []Reaction
	Pinned     bool
	MentionsMe bool
}

// Forward names where a forwarded message first came from.
type Forward struct {
	UserID int64
	ChatID int64
	Seq    int64
}

// ValidateText checks a message text: valid UTF-8, not blank, at most
// MaxTextRunes characters.
func ValidateText(s string) error {
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "the message is not valid UTF-8")
	}
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return Errorf(Invalid, "the message is empty")
	}
	if n > MaxTextRunes {
		return Errorf(TooLarge, "a message has at most %d characters, this one has %d", MaxTextRunes, n)
	}
	for _, r := range s {
		if r != ' ' && r != '\n' && r != '\t' && r != '\r' {
			return nil
		}
	}
	return Errorf(Invalid, "the message is empty")
}
