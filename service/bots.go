package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldim/herald"
)

// BotLimits are the send rates of each bot: Telegram's published limits
// by default, so a bot tuned for Telegram is not surprised here. Zero
// fields take the defaults in DefaultBotLimits.
type BotLimits struct {
	PerSecond        float64 // messages one bot may send per second, over all chats
	PerChatPerSecond float64 // … into one chat
	PerChatBurst     int     // how many a bot may send into one chat at once before the rate applies
}

// DefaultBotLimits are Telegram's: about 30 messages a second in all and
// one a second per chat (with a short burst, as Telegram allows).
var DefaultBotLimits = BotLimits{PerSecond: 30, PerChatPerSecond: 1, PerChatBurst: 3}

type botLimiters struct {
	all, chat *keyed
}

func newBotLimiters(b buckets, l BotLimits) *botLimiters {
	d := DefaultBotLimits
	if l.PerSecond <= 0 {
		l.PerSecond = d.PerSecond
	}
	if l.PerChatPerSecond <= 0 {
		l.PerChatPerSecond = d.PerChatPerSecond
	}
	if l.PerChatBurst <= 0 {
		l.PerChatBurst = d.PerChatBurst
	}
	return &botLimiters{
		all:  newKeyed(b, "bot", l.PerSecond, int(l.PerSecond), "messages from this bot"),
		chat: newKeyed(b, "bot-chat", l.PerChatPerSecond, l.PerChatBurst, "messages from this bot to this chat"),
	}
}

// take spends n messages of the bot's overall rate and of its rate in
// the chat. A refusal on the chat's rate gives back nothing of the
// overall one it already spent; the bot waits a little longer, which
// errs on the side of the server.
func (l *botLimiters) take(ctx context.Context, botID, chatID int64, n int) error {
	if err := l.all.takeN(ctx, key(botID), n); err != nil {
		return err
	}
	return l.chat.takeN(ctx, key(botID)+":"+key(chatID), n)
}

func (s *Service) botStore() error {
	if s.bots == nil {
		return herald.Errorf(herald.Unavailable, "bots are not available on this server")
	}
	return nil
}

// botSecretBytes is the entropy of a bot token's secret half.
const botSecretBytes = 27 // 36 base64url characters, like Telegram's 35

func newBotSecret() string {
	b := make([]byte, botSecretBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func botToken(id int64, secret string) string { return strconv.FormatInt(id, 10) + ":" + secret }

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateBot creates a bot account owned by the caller and returns it with
// its token, which is shown only now: the server keeps a hash.
func (s *Service) CreateBot(ctx context.Context, c Caller, username, displayName string) (herald.Bot, string, error) {
	if err := s.botStore(); err != nil {
		return herald.Bot{}, "", err
	}
	if c.Bot {
		return herald.Bot{}, "", herald.Errorf(herald.PermissionDenied, "bots cannot create bots")
	}
	username = herald.NormalizeUsername(username)
	if err := herald.ValidateBotUsername(username); err != nil {
		return herald.Bot{}, "", err
	}
	displayName = strings.TrimSpace(displayName)
	if displayName == "" {
		displayName = username
	}
	if err := herald.ValidateName("display name", displayName, herald.MaxDisplayName); err != nil {
		return herald.Bot{}, "", err
	}
	if _, err := s.store.ChatByName(ctx, username); err == nil {
		return herald.Bot{}, "", herald.Errorf(herald.AlreadyExists, "the name @%s is taken", username)
	}
	if err := s.mayCreate(ctx, c, false); err != nil {
		return herald.Bot{}, "", err
	}
	owned, err := s.bots.BotsOf(ctx, c.UserID)
	if err != nil {
		return herald.Bot{}, "", err
	}
	if len(owned) >= herald.MaxBotsPerUser {
		return herald.Bot{}, "", herald.Errorf(herald.PermissionDenied, "you have %d bots, the most one person may have; delete one first", len(owned))
	}
	secret := newBotSecret()
	b, err := s.bots.CreateBot(ctx, herald.User{Username: username, DisplayName: displayName, CreatedAt: s.now()}, c.UserID, hashSecret(secret))
	if err != nil {
		return b, "", err
	}
	return b, botToken(b.UserID, secret), nil
}

// ownedBot finds one of the caller's bots by name.
func (s *Service) ownedBot(ctx context.Context, c Caller, username string) (herald.Bot, error) {
	if err := s.botStore(); err != nil {
		return herald.Bot{}, err
	}
	u, err := s.ResolveUser(ctx, username)
	if err != nil {
		return herald.Bot{}, err
	}
	b, _, err := s.bots.Bot(ctx, u.ID)
	if err == nil && (b.OwnerID != c.UserID || b.Deleted) {
		err = herald.Errorf(herald.NotFound, "you have no bot @%s", u.Username)
	}
	if herald.IsKind(err, herald.NotFound) {
		return b, herald.Errorf(herald.NotFound, "you have no bot @%s", u.Username)
	}
	return b, err
}

// Bots lists the caller's bots.
func (s *Service) Bots(ctx context.Context, c Caller) ([]herald.Bot, error) {
	if err := s.botStore(); err != nil {
		return nil, err
	}
	return s.bots.BotsOf(ctx, c.UserID)
}

// RotateBotToken gives one of the caller's bots a new token. The old one
// is refused from the moment this returns, on every node: tokens are
// checked against the store on each request.
func (s *Service) RotateBotToken(ctx context.Context, c Caller, username string) (herald.Bot, string, error) {
	b, err := s.ownedBot(ctx, c, username)
	if err != nil {
		return b, "", err
	}
	secret := newBotSecret()
	if err := s.bots.SetBotToken(ctx, b.UserID, hashSecret(secret)); err != nil {
		return b, "", err
	}
	return b, botToken(b.UserID, secret), nil
}

// SetBotPrivacy turns a bot's group privacy mode on (it sees commands,
// replies to it and mentions of it) or off (it sees every message).
func (s *Service) SetBotPrivacy(ctx context.Context, c Caller, username string, privacy bool) (herald.Bot, error) {
	b, err := s.ownedBot(ctx, c, username)
	if err != nil {
		return b, err
	}
	b.ReadAll = !privacy
	return b, s.bots.UpdateBot(ctx, b)
}

// DeleteBot deletes one of the caller's bots: its token stops working, its
// pending updates are dropped and it leaves every group and channel. The
// account stays, so its old messages keep their sender.
func (s *Service) DeleteBot(ctx context.Context, c Caller, username string) error {
	b, err := s.ownedBot(ctx, c, username)
	if err != nil {
		return err
	}
	if err := s.bots.DeleteBot(ctx, b.UserID); err != nil {
		return err
	}
	bc := Caller{UserID: b.UserID, Username: b.Username, Bot: true}
	ds, err := s.allDialogs(ctx, b.UserID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Chat.Kind == herald.Direct {
			continue
		}
		if err := s.Leave(ctx, bc, d.Chat.ID); err != nil && !herald.IsKind(err, herald.NotFound) {
			return err
		}
	}
	return nil
}

// AuthenticateBot resolves a Bot API token ("<id>:<secret>") to its bot.
func (s *Service) AuthenticateBot(ctx context.Context, token string) (Caller, herald.Bot, error) {
	bad := herald.Errorf(herald.Unauthenticated, "the bot token is invalid or was rotated")
	if err := s.botStore(); err != nil {
		return Caller{}, herald.Bot{}, err
	}
	idPart, secret, ok := strings.Cut(token, ":")
	id, err := strconv.ParseInt(idPart, 10, 64)
	if !ok || err != nil || id <= 0 || secret == "" || len(secret) > herald.MaxBotTokenSecret {
		return Caller{}, herald.Bot{}, bad
	}
	b, hash, err := s.bots.Bot(ctx, id)
	if herald.IsKind(err, herald.NotFound) {
		return Caller{}, b, bad
	}
	if err != nil {
		return Caller{}, b, err
	}
	if b.Deleted || subtle.ConstantTimeCompare(hash, hashSecret(secret)) != 1 {
		return Caller{}, b, bad
	}
	// A suspension made by a moderator holds for bots too: read fresh,
	// as the cache of users does not follow suspensions.
	us, err := s.store.Users(ctx, []int64{id})
	if err != nil {
		return Caller{}, b, err
	}
	if u := us[id]; u.Suspended(s.now()) {
		return Caller{}, b, herald.Errorf(herald.PermissionDenied, "this bot is suspended until %s: %s", u.SuspendedUntil.Format("2006-01-02 15:04 MST"), u.SuspendReason)
	}
	return Caller{UserID: b.UserID, Username: b.Username, Bot: true}, b, nil
}

// Bot returns a bot's current settings.
func (s *Service) Bot(ctx context.Context, c Caller) (herald.Bot, error) {
	if err := s.botStore(); err != nil {
		return herald.Bot{}, err
	}
	b, _, err := s.bots.Bot(ctx, c.UserID)
	return b, err
}

// WebhookBots lists the bots whose updates are pushed to a webhook.
func (s *Service) WebhookBots(ctx context.Context) ([]herald.Bot, error) {
	if err := s.botStore(); err != nil {
		return nil, err
	}
	return s.bots.WebhookBots(ctx)
}

// Webhook is what setWebhook asks for.
type Webhook struct {
	URL            string
	Secret         string
	AllowedUpdates []string
	MaxConnections int
	DropPending    bool
}

// secretTokenOK is the Bot API's rule for secret_token: 1–256 of
// A-Z, a-z, 0-9, '_' and '-'.
func secretTokenOK(s string) bool {
	if len(s) > 256 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// SetWebhook points a bot's updates at a URL (empty: back to getUpdates).
func (s *Service) SetWebhook(ctx context.Context, c Caller, w Webhook) (herald.Bot, error) {
	b, err := s.Bot(ctx, c)
	if err != nil {
		return b, err
	}
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(w.URL) > herald.MaxWebhookURL {
			return b, herald.Errorf(herald.Invalid, "bad webhook: an HTTP or HTTPS URL is required")
		}
	}
	if !secretTokenOK(w.Secret) {
		return b, herald.Errorf(herald.Invalid, "secret_token holds 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
	}
	if w.MaxConnections < 0 || w.MaxConnections > 100 {
		return b, herald.Errorf(herald.Invalid, "max_connections is between 1 and 100")
	}
	b.WebhookURL, b.WebhookSecret, b.AllowedUpdates, b.MaxConnections = w.URL, w.Secret, w.AllowedUpdates, w.MaxConnections
	if w.URL == "" {
		b.WebhookSecret, b.MaxConnections = "", 0
	}
	if err := s.bots.UpdateBot(ctx, b); err != nil {
		return b, err
	}
	if w.DropPending {
		pts, err := s.store.Pts(ctx, c.UserID)
		if err != nil {
			return b, err
		}
		if err := s.bots.ForgetUpdates(ctx, c.UserID, pts+1, time.Time{}); err != nil {
			return b, err
		}
	}
	return b, nil
}

// SetAllowedUpdates stores the update types a bot asked getUpdates for;
// they apply until changed, as in the Bot API.
func (s *Service) SetAllowedUpdates(ctx context.Context, c Caller, allowed []string) error {
	b, err := s.Bot(ctx, c)
	if err != nil {
		return err
	}
	if strings.Join(b.AllowedUpdates, ",") == strings.Join(allowed, ",") {
		return nil
	}
	b.AllowedUpdates = allowed
	return s.bots.UpdateBot(ctx, b)
}

// SetCommands stores the list of commands a bot offers.
func (s *Service) SetCommands(ctx context.Context, c Caller, cmds []herald.BotCommand) error {
	b, err := s.Bot(ctx, c)
	if err != nil {
		return err
	}
	if len(cmds) > herald.MaxBotCommands {
		return herald.Errorf(herald.Invalid, "a bot lists at most %d commands", herald.MaxBotCommands)
	}
	for _, cmd := range cmds {
		if n := len(cmd.Command); n == 0 || n > 32 {
			return herald.Errorf(herald.Invalid, "a command has 1 to 32 characters")
		}
		for _, r := range cmd.Command {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return herald.Errorf(herald.Invalid, "a command holds only a-z, 0-9 and '_': %q", cmd.Command)
			}
		}
		if n := utf8.RuneCountInString(cmd.Description); n == 0 || n > herald.MaxCommandDesc {
			return herald.Errorf(herald.Invalid, "a command's description has 1 to %d characters", herald.MaxCommandDesc)
		}
	}
	b.Commands = cmds
	return s.bots.UpdateBot(ctx, b)
}

// ---- chats as a bot sees them ----

// BotChat returns a chat the bot is a member of. Anything else, whether
// or not it exists, is PermissionDenied: the Bot API answers 403 there.
func (s *Service) BotChat(ctx context.Context, c Caller, chatID int64) (herald.Chat, herald.Member, error) {
	ch, m, err := s.membership(ctx, c, chatID)
	if herald.IsKind(err, herald.NotFound) {
		return ch, m, herald.Errorf(herald.PermissionDenied, "the bot is not a member of this chat")
	}
	return ch, m, err
}

// BotDirectChat returns the direct chat between the bot and a user. A bot
// cannot start one: the person writes first, as on Telegram.
func (s *Service) BotDirectChat(ctx context.Context, c Caller, userID int64) (herald.Chat, error) {
	ch, _, err := s.store.DirectChat(ctx, c.UserID, userID, false, s.now())
	if herald.IsKind(err, herald.NotFound) {
		return ch, herald.Errorf(herald.PermissionDenied, "the bot can't initiate conversation with a user")
	}
	if err == nil && ch.TakenDown {
		return ch, unavailable(ch)
	}
	return ch, err
}

// ChatMeta returns a chat's public face (title, @name, kind) without a
// membership check, for naming where a forwarded message came from, as
// forwards already show it.
func (s *Service) ChatMeta(ctx context.Context, id int64) (herald.Chat, error) {
	return s.chatMeta(ctx, id)
}

// User returns an account by id, for rendering.
func (s *Service) User(ctx context.Context, id int64) (herald.User, error) { return s.user(ctx, id) }

// ChatMember returns a member of a chat the caller is in. In channels only
// admins see members other than themselves.
func (s *Service) ChatMember(ctx context.Context, c Caller, chatID, userID int64) (herald.Member, error) {
	ch, me, err := s.membership(ctx, c, chatID)
	if err != nil {
		return herald.Member{}, err
	}
	if userID == c.UserID {
		return me, nil
	}
	if ch.Kind == herald.Channel && me.Role < herald.RoleAdmin {
		return herald.Member{}, herald.Errorf(herald.PermissionDenied, "only a channel's admins see its members")
	}
	m, err := s.store.Member(ctx, chatID, userID)
	if herald.IsKind(err, herald.NotFound) {
		return herald.Member{ChatID: chatID, UserID: userID}, nil // Role 0: not a member ("left")
	}
	return m, err
}

// Message returns one message of a chat the caller is in; to a bot in
// privacy mode, only one it may see (botMaySee).
func (s *Service) Message(ctx context.Context, c Caller, chatID, seq int64) (herald.Message, error) {
	m, err := s.message(ctx, c, chatID, seq)
	if err != nil {
		return m, err
	}
	if ok, err := s.botMaySee(ctx, c, &m); err != nil {
		return herald.Message{}, err
	} else if !ok {
		return herald.Message{}, herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return m, nil
}

// ReplyOf returns the message outer replies to, for showing with it. A
// privacy-mode bot sees the reply target of a message addressed to it
// (a command given in reply to a message shows the bot that message, as
// on Telegram); of any other message, only a target it may see itself.
func (s *Service) ReplyOf(ctx context.Context, c Caller, outer herald.Message) (herald.Message, error) {
	if outer.ReplyTo <= 0 {
		return herald.Message{}, herald.Errorf(herald.NotFound, "not a reply")
	}
	if c.Bot && outer.SenderID != c.UserID {
		if ok, err := s.botMaySee(ctx, c, &outer); err != nil {
			return herald.Message{}, err
		} else if ok {
			return s.message(ctx, c, outer.ChatID, outer.ReplyTo)
		}
	}
	return s.Message(ctx, c, outer.ChatID, outer.ReplyTo)
}

func (s *Service) message(ctx context.Context, c Caller, chatID, seq int64) (herald.Message, error) {
	if _, _, err := s.membership(ctx, c, chatID); err != nil {
		return herald.Message{}, err
	}
	m, err := s.store.Message(ctx, c.UserID, chatID, seq)
	if err != nil {
		return m, err
	}
	if err := s.open(ctx, &m); err != nil {
		return m, err
	}
	if m.Deleted {
		return m, herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return m, nil
}

// botMaySee is the group privacy rule (addressedTo) applied to reads by
// id, so a bot in privacy mode cannot read by forwarding, copying or
// replying what it would not have received as an update: in a group it
// reads its own messages and those addressed to it; elsewhere, all.
func (s *Service) botMaySee(ctx context.Context, c Caller, m *herald.Message) (bool, error) {
	if !c.Bot || m.SenderID == c.UserID {
		return true, nil
	}
	ch, err := s.chatMeta(ctx, m.ChatID)
	if err != nil {
		return false, err
	}
	if ch.Kind != herald.Group {
		return true, nil
	}
	if err := s.botStore(); err != nil {
		return false, err
	}
	b, _, err := s.bots.Bot(ctx, c.UserID)
	if err != nil {
		return false, err
	}
	return b.ReadAll || s.addressedTo(ctx, b, m), nil
}

// ---- messages with extras ----

// validateExtras checks an inline keyboard and entities against the text.
func validateExtras(x herald.Extras, text string) error {
	n := 0
	for _, row := range x.Buttons {
		for _, b := range row {
			n++
			if b.Text == "" || utf8.RuneCountInString(b.Text) > herald.MaxButtonText {
				return herald.Errorf(herald.Invalid, "a button's text has 1 to %d characters", herald.MaxButtonText)
			}
			if err := herald.ValidateName("button text", b.Text, herald.MaxButtonText); err != nil {
				return err
			}
			switch {
			case b.Data != "" && b.URL != "":
				return herald.Errorf(herald.Invalid, "a button has callback_data or url, not both")
			case b.Data == "" && b.URL == "":
				return herald.Errorf(herald.Invalid, "a button needs callback_data or url")
			case len(b.Data) > herald.MaxCallbackData:
				return herald.Errorf(herald.Invalid, "callback_data has 1 to %d bytes", herald.MaxCallbackData)
			case b.URL != "" && !(strings.HasPrefix(b.URL, "http://") || strings.HasPrefix(b.URL, "https://") || strings.HasPrefix(b.URL, "tg://")):
				return herald.Errorf(herald.Invalid, "a button's url must be http, https or tg")
			}
		}
	}
	if n > herald.MaxButtons {
		return herald.Errorf(herald.Invalid, "a keyboard has at most %d buttons", herald.MaxButtons)
	}
	units := utf16Len(text)
	for _, e := range x.Entities {
		if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > units {
			return herald.Errorf(herald.Invalid, "an entity lies outside the text")
		}
	}
	return nil
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// sealExtras seals extras for the store, nil if there are none.
func (s *Service) sealExtras(chatID int64, x herald.Extras) ([]byte, error) {
	if x.Empty() {
		return nil, nil
	}
	j, err := json.Marshal(x)
	if err != nil {
		return nil, herald.Wrap("service.sealExtras", err)
	}
	return s.sealer.Seal(chatID, j), nil
}

// openExtra fills m.Extras: from m.Extra when the message travelled with
// it, else from the store for messages bots sent (only bots' messages have
// extras, so nobody else's pay for the lookup).
func (s *Service) openExtra(ctx context.Context, m *herald.Message) error {
	if len(m.Extra) == 0 {
		if s.bots == nil || m.SenderID == 0 || m.Service {
			return nil
		}
		// Bots' messages have extras, and so may a person's edited one
		// and a service message (a call's record)
		// (its formatting is replaced beside the row, so the edit's push
		// does not carry it); a page of history reads the rest in one
		// query (annotate).
		u, err := s.user(ctx, m.SenderID)
		if err != nil || (!u.IsBot && !m.Service && m.EditedAt.IsZero()) {
			return nil
		}
		if m.Extra, err = s.bots.Extra(ctx, m.ChatID, m.Seq); err != nil || len(m.Extra) == 0 {
			return err
		}
	}
	pt, err := s.sealer.Open(m.ChatID, m.Extra)
	m.Extra = nil
	if err != nil {
		s.log.ErrorContext(ctx, "message extras do not open; left out", "chat", m.ChatID, "seq", m.Seq, "err", err)
		return nil
	}
	return json.Unmarshal(pt, &m.Extras)
}

// BotSend sends a message as a bot, with an inline keyboard and entities.
func (s *Service) BotSend(ctx context.Context, c Caller, p SendParams, x herald.Extras) (herald.Message, error) {
	validate := herald.ValidateText
	if p.FileID != "" {
		validate = herald.ValidateCaption
	}
	if err := validate(p.Text); err != nil {
		return herald.Message{}, err
	}
	if err := validateExtras(x, p.Text); err != nil {
		return herald.Message{}, err
	}
	ch, mem, err := s.BotChat(ctx, c, p.Peer.ChatID)
	if err != nil {
		return herald.Message{}, err
	}
	if err := canPost(ch, mem); err != nil {
		return herald.Message{}, err
	}
	if err := s.sendAllowed(ctx, c, ch, 1, false); err != nil {
		return herald.Message{}, err
	}
	if p.ReplyTo > 0 {
		if _, err := s.store.Message(ctx, c.UserID, ch.ID, p.ReplyTo); err != nil {
			if herald.IsKind(err, herald.NotFound) {
				return herald.Message{}, herald.Errorf(herald.NotFound, "message to be replied not found")
			}
			return herald.Message{}, err
		}
	}
	m := herald.Message{ChatID: ch.ID, SenderID: c.UserID, RandomID: p.RandomID, Text: p.Text, ReplyTo: p.ReplyTo, SentAt: s.now()}
	if p.FileID != "" {
		f, err := s.attachable(ctx, c, p.FileID)
		if err != nil {
			return herald.Message{}, err
		}
		m.File = &herald.File{ID: f.ID}
	}
	s.setTimer(&m, ch, 0)
	if err := s.seal(&m); err != nil {
		return herald.Message{}, err
	}
	if m.File != nil {
		// As in append: the file's key is bound to the message first.
		if err := s.bindFile(ctx, &m); err != nil {
			return herald.Message{}, err
		}
	}
	extra, err := s.sealExtras(ch.ID, x)
	if err != nil {
		return herald.Message{}, err
	}
	// The keyboard is stored with the message, in one transaction, so
	// every reader finds it.
	m.Text, m.Extra = "", extra
	msg, ups, dup, err := s.store.AppendMessage(ctx, m)
	if err != nil {
		return herald.Message{}, err
	}
	if !dup {
		s.announce(ctx, ups)
	}
	if err := s.open(ctx, &msg); err != nil {
		return herald.Message{}, err
	}
	if !dup {
		s.notifyMessage(msg, msg.Text)
	}
	return msg, nil
}

// BotEdit changes a bot's message: its text (when text is not nil) and
// its extras (when x is not nil; an empty one removes the keyboard).
func (s *Service) BotEdit(ctx context.Context, c Caller, chatID, seq int64, text *string, x *herald.Extras) (herald.Message, error) {
	old, err := s.Message(ctx, c, chatID, seq)
	if err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return old, herald.Errorf(herald.NotFound, "message to edit not found")
		}
		return old, err
	}
	if old.SenderID != c.UserID {
		return old, herald.Errorf(herald.PermissionDenied, "message can't be edited: the bot did not send it")
	}
	newText := old.Text
	if text != nil {
		newText = *text
	}
	nx := old.Extras
	if x != nil {
		nx = *x
	} else if text != nil {
		nx.Entities = nil // new text, old entities would point into nothing
	}
	if err := validateExtras(nx, newText); err != nil {
		return old, err
	}
	if newText == old.Text && sameExtras(nx, old.Extras) {
		return old, herald.Errorf(herald.Invalid, "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	extra, err := s.sealExtras(chatID, nx)
	if err != nil {
		return old, err
	}
	if err := s.bots.SetExtra(ctx, chatID, seq, extra); err != nil {
		return old, err
	}
	// Edit seals, stores and announces the text; the extras are already
	// in place for everyone who opens the edited message.
	return s.Edit(ctx, c, chatID, seq, newText)
}

func sameExtras(a, b herald.Extras) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// BotUpload stores a file a bot sent in one piece (multipart, as the Bot
// API uploads): it is checked against the size limit and the bot's quota,
// hashed, and then stored like a finished resumable upload. open must
// return the bytes from the start each time it is called.
func (s *Service) BotUpload(ctx context.Context, c Caller, name string, size int64, open func() (io.ReadCloser, error)) (herald.File, error) {
	if err := s.CheckUpload(ctx, c, size); err != nil {
		return herald.File{}, err
	}
	r, err := open()
	if err != nil {
		return herald.File{}, herald.Wrap("service.BotUpload", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, r)
	r.Close()
	if err != nil {
		return herald.File{}, herald.Wrap("service.BotUpload", err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return s.FinishUpload(ctx, c, Upload{
		ID: hex.EncodeToString(id), Name: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: size,
		Open: func(context.Context) (io.ReadCloser, error) { return open() },
	})
}

// ---- button presses ----

// CallbackAnswer is a bot's answer to a press, shown to the presser.
type CallbackAnswer struct {
	QueryID   int64  `json:"q"`
	MessageID int64  `json:"m"`
	Text      []byte `json:"t,omitempty"` // sealed, in the older JSON bus event only
	Alert     bool   `json:"s,omitempty"`
	URL       string `json:"u,omitempty"`
	Plain     string `json:"-"` // the text
}

func (s *Service) openAnswer(chatID int64, a *CallbackAnswer) {
	if len(a.Text) == 0 {
		return
	}
	if pt, err := s.sealer.Open(chatID, a.Text); err == nil {
		a.Plain = string(pt)
	}
	a.Text = nil
}

// Press presses an inline button with the given callback data under a
// bot's message: the bot receives a callback query, and its answer comes
// back to the caller's devices as a callback answer. It returns the
// query's id.
func (s *Service) Press(ctx context.Context, c Caller, chatID, seq int64, data string) (int64, error) {
	if err := s.botStore(); err != nil {
		return 0, err
	}
	if c.Bot {
		return 0, herald.Errorf(herald.PermissionDenied, "bots do not press buttons")
	}
	m, err := s.Message(ctx, c, chatID, seq)
	if err != nil {
		return 0, err
	}
	found := false
	for _, row := range m.Extras.Buttons {
		for _, b := range row {
			found = found || (b.Data != "" && b.Data == data)
		}
	}
	if !found {
		return 0, herald.Errorf(herald.NotFound, "message %d has no button with that callback data", seq)
	}
	b, _, err := s.bots.Bot(ctx, m.SenderID)
	if err != nil {
		return 0, err
	}
	if b.Deleted {
		return 0, herald.Errorf(herald.Unavailable, "the bot @%s was deleted", b.Username)
	}
	if err := s.rl.direct.take(ctx, key(c.UserID)); err != nil {
		return 0, err
	}
	cb, up, err := s.bots.LogCallback(ctx, herald.Callback{BotID: b.UserID, UserID: c.UserID, ChatID: chatID, Seq: seq, Data: data, At: s.now()})
	if err != nil {
		return 0, err
	}
	s.announce(ctx, []herald.Update{up})
	return cb.ID, nil
}

// AnswerCallback sends a bot's answer to a press back to the presser.
func (s *Service) AnswerCallback(ctx context.Context, c Caller, queryID int64, text string, alert bool, link string) error {
	if err := s.botStore(); err != nil {
		return err
	}
	invalid := herald.Errorf(herald.Invalid, "query is too old and response timeout expired or query ID is invalid")
	cb, err := s.bots.Callback(ctx, queryID)
	if herald.IsKind(err, herald.NotFound) || (err == nil && (cb.BotID != c.UserID || s.now().Sub(cb.At) > herald.CallbackLifetime)) {
		return invalid
	}
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(text) > 200 || !utf8.ValidString(text) {
		return herald.Errorf(herald.Invalid, "the answer's text has at most 200 characters")
	}
	if err := s.bots.AnswerCallback(ctx, queryID); err != nil {
		if herald.IsKind(err, herald.AlreadyExists) {
			return herald.Errorf(herald.Invalid, "query was already answered")
		}
		return err
	}
	a := &CallbackAnswer{QueryID: cb.ID, MessageID: cb.Seq, Alert: alert, URL: link, Plain: text}
	s.emitAnswer(ctx, cb.UserID, cb.ChatID, c.UserID, a)
	return nil
}

// ---- updates for bots ----

// BotUpdate is one entry of a bot's update log that the bot may see, with
// what the Bot API needs to render it.
type BotUpdate struct {
	ID       int64 // update_id: the entry's number in the bot's log
	Kind     herald.UpdateKind
	Chat     herald.Chat
	Message  herald.Message
	Callback herald.Callback
}

// ConfirmBotUpdates forgets the bot's updates numbered below offset, and
// every update older than herald.BotUpdateLifetime.
func (s *Service) ConfirmBotUpdates(ctx context.Context, c Caller, offset int64) error {
	if err := s.botStore(); err != nil {
		return err
	}
	return s.bots.ForgetUpdates(ctx, c.UserID, offset, s.now().Add(-herald.BotUpdateLifetime))
}

// BotUpdates returns up to limit updates after the given one that the bot
// may see, and the log position it read up to (past entries it may not
// see, so a long poll does not read them again).
func (s *Service) BotUpdates(ctx context.Context, c Caller, b herald.Bot, after int64, limit int) ([]BotUpdate, int64, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	var out []BotUpdate
	oldest := s.now().Add(-herald.BotUpdateLifetime)
	// A second round when the log showed the bot joining a broadcast
	// chat: what was posted there since the join is copied at once.
	for round := 0; round < 2; round++ {
		if err := s.pullBroadcast(ctx, c); err != nil {
			return nil, after, err
		}
		joined := false
		for len(out) < limit {
			d, err := s.store.Difference(ctx, c.UserID, after, limit)
			if err != nil {
				return nil, after, err
			}
			for i := range d.Updates {
				u := &d.Updates[i]
				after = u.Pts
				joined = joined || u.Kind == herald.UpdChatJoined
				if u.At.Before(oldest) {
					continue
				}
				bu, ok, err := s.botUpdate(ctx, c, b, u)
				if err != nil {
					return nil, after, err
				}
				if ok {
					out = append(out, bu)
					if len(out) == limit {
						return out, after, nil
					}
				}
			}
			if !d.More {
				break
			}
		}
		if !joined {
			break
		}
	}
	return out, after, nil
}

// pullBroadcast copies new posts and edits of the broadcast chats the bot
// is in (channels and large groups, which fan out on read) from their
// logs into the bot's own log, so the bot reads one log with one
// update_id sequence. The copy is lazy, when the bot reads, so a post to
// a channel costs nothing more for having a bot among its subscribers.
func (s *Service) pullBroadcast(ctx context.Context, c Caller) error {
	chats, err := s.store.BroadcastChats(ctx, c.UserID)
	if err != nil || len(chats) == 0 {
		return err
	}
	cursors, err := s.bots.BotCursors(ctx, c.UserID)
	if err != nil {
		return err
	}
	for _, id := range chats {
		from, ok := cursors[id]
		if !ok {
			continue // followed once the bot's log shows it joining
		}
		for {
			d, err := s.store.ChatDifference(ctx, id, from, herald.MaxDifferencePage)
			if err != nil {
				return err
			}
			if d.Pts <= from {
				break
			}
			var ups []herald.Update
			for _, u := range d.Updates {
				if u.Kind == herald.UpdNewMessage || u.Kind == herald.UpdEditMessage {
					ups = append(ups, herald.Update{Kind: u.Kind, ChatID: id, Seq: u.Seq, ActorID: u.ActorID, At: u.At})
				}
			}
			if _, err := s.bots.PullChat(ctx, c.UserID, id, from, d.Pts, ups); err != nil {
				return err
			}
			from = d.Pts
			if !d.More {
				break
			}
		}
	}
	return nil
}

// botUpdate decides whether the bot sees a log entry, and renders it.
func (s *Service) botUpdate(ctx context.Context, c Caller, b herald.Bot, u *herald.Update) (BotUpdate, bool, error) {
	bu := BotUpdate{ID: u.Pts, Kind: u.Kind}
	switch u.Kind {
	case herald.UpdNewMessage, herald.UpdEditMessage:
		if u.Message == nil || u.Message.SenderID == c.UserID || u.Message.Service {
			return bu, false, nil
		}
		m := *u.Message
		if err := s.open(ctx, &m); err != nil {
			return bu, false, err
		}
		if m.Deleted {
			return bu, false, nil
		}
		ch, err := s.chatMeta(ctx, m.ChatID)
		if err != nil {
			return bu, false, nil // a chat that is gone has nothing to show
		}
		if ch.Kind == herald.Group && !b.ReadAll && !s.addressedTo(ctx, b, &m) {
			return bu, false, nil
		}
		bu.Chat, bu.Message = ch, m
		return bu, true, nil
	case herald.UpdChatJoined:
		// Joining a channel or large group: from here on its posts are
		// copied into this log (see pullBroadcast).
		if ch, err := s.chatMeta(ctx, u.ChatID); err == nil && ch.Broadcast {
			if err := s.bots.FollowChat(ctx, c.UserID, u.ChatID, u.Seq); err != nil {
				return bu, false, err
			}
		}
		return bu, false, nil
	case herald.UpdCallback:
		if len(u.Seqs) != 1 {
			return bu, false, nil
		}
		cb, err := s.bots.Callback(ctx, u.Seqs[0])
		if herald.IsKind(err, herald.NotFound) {
			return bu, false, nil
		}
		if err != nil {
			return bu, false, err
		}
		m, err := s.store.Message(ctx, c.UserID, cb.ChatID, cb.Seq)
		if err == nil {
			err = s.open(ctx, &m)
		}
		if err != nil || m.Deleted {
			return bu, false, nil // the message went away before the bot looked
		}
		ch, err := s.chatMeta(ctx, cb.ChatID)
		if err != nil {
			return bu, false, nil
		}
		bu.Chat, bu.Message, bu.Callback = ch, m, cb
		return bu, true, nil
	}
	return bu, false, nil
}

// addressedTo is Telegram's group privacy rule: a bot in privacy mode sees
// commands (for it, or for no bot in particular), replies to its own
// messages and messages that mention it.
func (s *Service) addressedTo(ctx context.Context, b herald.Bot, m *herald.Message) bool {
	text := m.Text
	if strings.HasPrefix(text, "/") {
		cmd, _, _ := strings.Cut(text, " ")
		_, target, has := strings.Cut(cmd, "@")
		if !has || strings.EqualFold(target, b.Username) {
			return true
		}
	}
	if strings.Contains(strings.ToLower(text), "@"+b.Username) {
		return true
	}
	if m.ReplyTo > 0 {
		if r, err := s.store.Message(ctx, b.UserID, m.ChatID, m.ReplyTo); err == nil && r.SenderID == b.UserID {
			return true
		}
	}
	return false
}

// ChatAPIID is the Bot API's id of a chat as the bot sees it: the other
// person's user id for a direct chat (positive, as Telegram does), minus
// the chat id for a group, and -100… for channels and large groups.
func (s *Service) ChatAPIID(ctx context.Context, c Caller, ch herald.Chat) int64 {
	switch ch.Kind {
	case herald.Direct:
		members, err := s.store.Members(ctx, ch.ID)
		if err == nil {
			for _, m := range members {
				if m.UserID != c.UserID {
					return m.UserID
				}
			}
		}
		return c.UserID // a chat with oneself
	case herald.Channel:
		return ChannelIDBase - ch.ID
	}
	return -ch.ID
}

// ChannelIDBase is where channel ids start in the Bot API: -100 followed
// by twelve digits, as Telegram clients and libraries expect of channels.
const ChannelIDBase = -1_000_000_000_000

// ResolveAPIChat turns a Bot API chat_id into a chat the bot is in.
func (s *Service) ResolveAPIChat(ctx context.Context, c Caller, id int64, username string) (herald.Chat, herald.Member, error) {
	if username != "" {
		ch, err := s.store.ChatByName(ctx, herald.NormalizeUsername(username))
		if err != nil {
			if herald.IsKind(err, herald.NotFound) {
				return ch, herald.Member{}, herald.Errorf(herald.NotFound, "chat not found")
			}
			return ch, herald.Member{}, err
		}
		return s.BotChat(ctx, c, ch.ID)
	}
	switch {
	case id > 0:
		ch, err := s.BotDirectChat(ctx, c, id)
		if err != nil {
			return ch, herald.Member{}, err
		}
		m, err := s.store.Member(ctx, ch.ID, c.UserID)
		return ch, m, err
	case id < ChannelIDBase:
		ch, m, err := s.BotChat(ctx, c, ChannelIDBase-id)
		if err == nil && ch.Kind != herald.Channel {
			return ch, m, herald.Errorf(herald.NotFound, "chat not found")
		}
		return ch, m, err
	case id < 0:
		ch, m, err := s.BotChat(ctx, c, -id)
		if err == nil && ch.Kind != herald.Group {
			return ch, m, herald.Errorf(herald.NotFound, "chat not found")
		}
		return ch, m, err
	}
	return herald.Chat{}, herald.Member{}, herald.Errorf(herald.Invalid, "chat_id is empty")
}
