package herald

import (
	"strings"
	"time"
)

// Bot limits, as the Telegram Bot API has them, so a bot written for
// Telegram meets the same bounds here.
const (
	MaxCallbackData   = 64               // bytes of a button's callback_data
	MaxButtonText     = 64               // characters on a button
	MaxButtons        = 100              // buttons on one message
	MaxBotCommands    = 100              // commands a bot may list
	MaxCommandDesc    = 256              // characters of a command's description
	BotUpdateLifetime = 24 * time.Hour   // pending bot updates older than this are dropped
	MaxWebhookURL     = 2048             //
	MaxBotTokenSecret = 64               //
	CallbackLifetime  = 48 * time.Hour   // how long a button press can still be answered
	MaxBotsPerUser    = 20               // bots one person may own, as on Telegram
	botSuffix         = "bot"            //
	botUsernameMinLen = MinUsernameRunes // a bot name obeys the username rules too
)

// UpdCallback is a button press logged for a bot: ChatID and Seq name the
// message whose button was pressed, ActorID the person who pressed it, and
// Seqs holds the callback query's id. It only ever appears in a bot's log.
const UpdCallback UpdateKind = 9

// Bot is an account driven by a program through the Bot API rather than by
// a person. Its user row is an ordinary account (same id, same @name); the
// bot's own settings live here.
type Bot struct {
	UserID      int64
	OwnerID     int64
	Username    string
	DisplayName string
	CreatedAt   time.Time
	Deleted     bool // its token is gone and it left every chat; the account stays so old messages keep a sender

	// Privacy mode (Telegram's default): in groups the bot sees only
	// commands, replies to its own messages and messages that mention it.
	// Off (ReadAll) it sees everything.
	ReadAll bool

	// Webhook: when URL is set, updates are POSTed there instead of being
	// fetched with getUpdates.
	WebhookURL     string
	WebhookSecret  string
	AllowedUpdates []string // empty: the default set
	MaxConnections int

	// Commands are what setMyCommands stored, as the bot gave them.
	Commands []BotCommand
}

// BotCommand is one entry of a bot's command list.
type BotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

// ValidateBotUsername applies the username rules and Telegram's rule that
// a bot's name ends in "bot".
func ValidateBotUsername(name string) error {
	if err := ValidateUsername(name); err != nil {
		return err
	}
	if !strings.HasSuffix(name, botSuffix) {
		return Errorf(Invalid, "a bot's username ends in %q, like weatherbot or weather_bot", botSuffix)
	}
	return nil
}

// Button is one button of an inline keyboard under a bot's message.
// Pressing a button with Data sends the bot a callback query; a button
// with URL opens the link.
type Button struct {
	Text string `json:"text"`
	Data string `json:"data,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Entity marks a span of a message's text (bold, a link, a command …), in
// UTF-16 code units as the Bot API counts them.
type Entity struct {
	Type     string `json:"type"`
	Offset   int    `json:"offset"`
	Length   int    `json:"length"`
	URL      string `json:"url,omitempty"`
	Language string `json:"language,omitempty"`
	UserID   int64  `json:"user_id,omitempty"` // text_mention
}

// Extras are what a message may carry beside its text: an inline keyboard
// and text entities. They are sealed at rest like the text.
type Extras struct {
	Buttons  [][]Button  `json:"b,omitempty"`
	Entities []Entity    `json:"e,omitempty"`
	Call     *CallRecord `json:"c,omitempty"` // a call's service message
}

// Empty reports whether there is nothing to store.
func (x Extras) Empty() bool { return len(x.Buttons) == 0 && len(x.Entities) == 0 && x.Call == nil }

// Callback is a press of an inline button: a callback query for the bot
// that sent the message.
type Callback struct {
	ID       int64
	BotID    int64
	UserID   int64 // who pressed
	ChatID   int64
	Seq      int64
	Data     string
	At       time.Time
	Answered bool
}
