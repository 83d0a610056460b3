package store

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Bots is what bot accounts need from the store. Like Moderation it is
// separate from Store, so a store can be brought up without it; the SQLite
// and PostgreSQL stores implement it.
type Bots interface {
	// CreateBot adds the account u (a bot: it has no password, so nobody
	// can log in as it) owned by ownerID, with the hash of its token.
	// AlreadyExists if the username is taken.
	CreateBot(ctx context.Context, u herald.User, ownerID int64, tokenHash []byte) (herald.Bot, error)
	// Bot returns the bot with the given user id and its token hash (nil
	// once deleted). NotFound if the account is not a bot.
	Bot(ctx context.Context, userID int64) (herald.Bot, []byte, error)
	// BotsOf lists the bots ownerID owns and has not deleted, oldest first.
	BotsOf(ctx context.Context, ownerID int64) ([]herald.Bot, error)
	// SetBotToken replaces a bot's token hash; the old token stops working
	// when this returns. NotFound.
	SetBotToken(ctx context.Context, userID int64, tokenHash []byte) error
	// UpdateBot stores a bot's settings: ReadAll, the webhook fields and
	// Commands. NotFound.
	UpdateBot(ctx context.Context, b herald.Bot) error
	// DeleteBot marks the bot deleted and forgets its token, webhook and
	// pending updates. Its memberships are the service's to end, through
	// RemoveMember. NotFound.
	DeleteBot(ctx context.Context, userID int64) error
	// WebhookBots lists the bots that have a webhook set.
	WebhookBots(ctx context.Context) ([]herald.Bot, error)
	// ForgetUpdates drops entries of a bot's update log numbered below
	// before, and those logged before olderThan.
	ForgetUpdates(ctx context.Context, userID, before int64, olderThan time.Time) error

	// FollowChat starts copying broadcast chat chatID's log into the bot's
	// log from position pts, unless it already follows the chat.
	FollowChat(ctx context.Context, botID, chatID, pts int64) error
	// BotCursors returns, per followed broadcast chat, the chat log
	// position the bot has copied up to.
	BotCursors(ctx context.Context, botID int64) (map[int64]int64, error)
	// PullChat moves the bot's cursor in chatID from from to to and
	// appends ups (their UserID the bot's) to the bot's log, numbering
	// them. If the cursor is no longer at from (another request pulled
	// first) nothing is written and nil is returned.
	PullChat(ctx context.Context, botID, chatID, from, to int64, ups []herald.Update) ([]herald.Update, error)

	// SetExtra stores (or with nil, removes) the sealed extras of a message.
	SetExtra(ctx context.Context, chatID, seq int64, extra []byte) error
	// Extra returns the sealed extras of a message, nil if it has none.
	Extra(ctx context.Context, chatID, seq int64) ([]byte, error)

	// LogCallback stores a button press and appends UpdCallback (Seqs
	// holding the new callback's id) to the bot's update log.
	LogCallback(ctx context.Context, c herald.Callback) (herald.Callback, herald.Update, error)
	// Callback returns a stored button press. NotFound.
	Callback(ctx context.Context, id int64) (herald.Callback, error)
	// AnswerCallback marks a press answered; NotFound if it is unknown,
	// AlreadyExists if it was answered before.
	AnswerCallback(ctx context.Context, id int64) error
}
