package store

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Annotations is what reactions, pins and formatted text need from the
// store: things said about a live message, which go when it goes (a
// message deleted for everyone or expired loses its reactions and its pin
// in the same transaction). Like Bots it is separate from Store; the
// SQLite and PostgreSQL stores implement it.
type Annotations interface {
	// SetReaction adds (on) or removes userID's emoji on message seq of
	// chatID. changed is false when there was nothing to do. NotFound if
	// on and the message is not live (missing or deleted for everyone).
	SetReaction(ctx context.Context, chatID, seq, userID int64, emoji string, on bool, at time.Time) (changed bool, err error)
	// Reactions returns the reactions on the live messages of chatID whose
	// seqs are given, per seq, oldest first.
	Reactions(ctx context.Context, chatID int64, seqs []int64) (map[int64][]herald.Reactor, error)
	// SetPin pins (on) or unpins message seq of chatID. changed is false
	// when there was nothing to do. NotFound if on and the message is not
	// live.
	SetPin(ctx context.Context, chatID, seq, by int64, on bool, at time.Time) (changed bool, err error)
	// Pins lists the pinned live messages of chatID, newest pin first.
	Pins(ctx context.Context, chatID int64) ([]herald.Pin, error)
	// AddMentions records that message seq of chatID mentions userIDs.
	AddMentions(ctx context.Context, chatID, seq int64, userIDs []int64) error
	// UnreadMentions counts, per chat, the live messages mentioning userID
	// after their read position there (chats without any are left out).
	UnreadMentions(ctx context.Context, userID int64) (map[int64]int, error)
	// Extras returns the sealed extras (formatting, a bot's keyboard) of
	// the messages of chatID whose seqs are given, for those that have
	// any: one query for a page of history.
	Extras(ctx context.Context, chatID int64, seqs []int64) (map[int64][]byte, error)
}
