package botapi

import (
	"context"
	"strconv"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/service"
)

// The Bot API's objects, with its field names. Only fields Herald can fill
// are listed; libraries treat every optional field as optional.

// User is the Bot API's User.
type User struct {
	ID                      int64  `json:"id"`
	IsBot                   bool   `json:"is_bot"`
	FirstName               string `json:"first_name"`
	Username                string `json:"username,omitempty"`
	CanJoinGroups           *bool  `json:"can_join_groups,omitempty"`
	CanReadAllGroupMessages *bool  `json:"can_read_all_group_messages,omitempty"`
	SupportsInlineQueries   *bool  `json:"supports_inline_queries,omitempty"`
}

// Chat is the Bot API's Chat (and ChatFullInfo, for getChat).
type Chat struct {
	ID          int64  `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title,omitempty"`
	Username    string `json:"username,omitempty"`
	FirstName   string `json:"first_name,omitempty"`
	Description string `json:"description,omitempty"`
	AccentColor *int   `json:"accent_color_id,omitempty"`
	MaxReaction *int   `json:"max_reaction_count,omitempty"`
}

// MessageEntity is the Bot API's MessageEntity.
type MessageEntity struct {
	Type     string `json:"type"`
	Offset   int    `json:"offset"`
	Length   int    `json:"length"`
	URL      string `json:"url,omitempty"`
	Language string `json:"language,omitempty"`
	User     *User  `json:"user,omitempty"`
}

// InlineKeyboardButton is the Bot API's button of an inline keyboard.
type InlineKeyboardButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

// InlineKeyboardMarkup is the Bot API's inline keyboard.
type InlineKeyboardMarkup struct {
	InlineKeyboard [][]InlineKeyboardButton `json:"inline_keyboard"`
}

// replyMarkup is what reply_markup may hold: an inline keyboard, a reply
// keyboard, a request to remove one, or to force a reply. Herald's
// clients show inline keyboards; the others are accepted and not shown.
type replyMarkup struct {
	InlineKeyboard *[][]InlineKeyboardButton `json:"inline_keyboard"`
	Keyboard       *[][]any                  `json:"keyboard"`
	RemoveKeyboard bool                      `json:"remove_keyboard"`
	ForceReply     bool                      `json:"force_reply"`
}

// Message is the Bot API's Message.
type Message struct {
	MessageID      int64                 `json:"message_id"`
	From           *User                 `json:"from,omitempty"`
	SenderChat     *Chat                 `json:"sender_chat,omitempty"`
	Date           int64                 `json:"date"`
	Chat           Chat                  `json:"chat"`
	ForwardOrigin  *MessageOrigin        `json:"forward_origin,omitempty"`
	ForwardFrom    *User                 `json:"forward_from,omitempty"`
	ForwardDate    int64                 `json:"forward_date,omitempty"`
	ReplyTo        *Message              `json:"reply_to_message,omitempty"`
	EditDate       int64                 `json:"edit_date,omitempty"`
	AuthorSig      string                `json:"author_signature,omitempty"`
	Text           string                `json:"text,omitempty"`
	Entities       []MessageEntity       `json:"entities,omitempty"`
	Caption        string                `json:"caption,omitempty"`
	CaptionEnts    []MessageEntity       `json:"caption_entities,omitempty"`
	Document       *FileObject           `json:"document,omitempty"`
	Photo          []PhotoSize           `json:"photo,omitempty"`
	Video          *FileObject           `json:"video,omitempty"`
	Audio          *FileObject           `json:"audio,omitempty"`
	Voice          *FileObject           `json:"voice,omitempty"`
	ReplyMarkup    *InlineKeyboardMarkup `json:"reply_markup,omitempty"`
	HasProtected   bool                  `json:"has_protected_content,omitempty"`
	IsTopicMessage bool                  `json:"is_topic_message,omitempty"`
}

// MessageOrigin is the Bot API's MessageOrigin (of forwarded messages).
type MessageOrigin struct {
	Type       string `json:"type"` // user, hidden_user, channel
	Date       int64  `json:"date"`
	SenderUser *User  `json:"sender_user,omitempty"`
	Chat       *Chat  `json:"chat,omitempty"`
	MessageID  int64  `json:"message_id,omitempty"`
	SenderName string `json:"sender_user_name,omitempty"`
}

// MessageID is the Bot API's MessageId (copyMessage's result).
type MessageID struct {
	MessageID int64 `json:"message_id"`
}

// CallbackQuery is the Bot API's CallbackQuery.
type CallbackQuery struct {
	ID           string   `json:"id"`
	From         User     `json:"from"`
	Message      *Message `json:"message,omitempty"`
	ChatInstance string   `json:"chat_instance"`
	Data         string   `json:"data,omitempty"`
}

// Update is the Bot API's Update.
type Update struct {
	UpdateID          int64          `json:"update_id"`
	Message           *Message       `json:"message,omitempty"`
	EditedMessage     *Message       `json:"edited_message,omitempty"`
	ChannelPost       *Message       `json:"channel_post,omitempty"`
	EditedChannelPost *Message       `json:"edited_channel_post,omitempty"`
	CallbackQuery     *CallbackQuery `json:"callback_query,omitempty"`
}

// kind names the update's type as allowed_updates lists them.
func (u Update) kind() string {
	switch {
	case u.Message != nil:
		return "message"
	case u.EditedMessage != nil:
		return "edited_message"
	case u.ChannelPost != nil:
		return "channel_post"
	case u.EditedChannelPost != nil:
		return "edited_channel_post"
	case u.CallbackQuery != nil:
		return "callback_query"
	}
	return ""
}

// ChatMember is the Bot API's ChatMember (all its variants in one).
type ChatMember struct {
	Status      string `json:"status"` // creator, administrator, member, left
	User        User   `json:"user"`
	IsAnonymous *bool  `json:"is_anonymous,omitempty"`
	CanBeEdited *bool  `json:"can_be_edited,omitempty"`
}

// BotCommand is the Bot API's BotCommand.
type BotCommand = herald.BotCommand

// WebhookInfo is the Bot API's WebhookInfo.
type WebhookInfo struct {
	URL                  string   `json:"url"`
	HasCustomCertificate bool     `json:"has_custom_certificate"`
	PendingUpdateCount   int      `json:"pending_update_count"`
	LastErrorDate        int64    `json:"last_error_date,omitempty"`
	LastErrorMessage     string   `json:"last_error_message,omitempty"`
	MaxConnections       int      `json:"max_connections,omitempty"`
	AllowedUpdates       []string `json:"allowed_updates,omitempty"`
}

// renderer turns Herald's values into the Bot API's, as one bot sees them.
// It lives for one request (or one webhook round), and remembers the ids
// of the chats it rendered: a page of updates from one person would
// otherwise look up the same direct chat's members once per message.
type renderer struct {
	svc *service.Service
	bot service.Caller
	ids map[int64]int64 // Herald chat id → Bot API chat id
}

func newRenderer(svc *service.Service, bot service.Caller) renderer {
	return renderer{svc: svc, bot: bot, ids: map[int64]int64{}}
}

func (r renderer) chatID(ctx context.Context, ch herald.Chat) int64 {
	if id, ok := r.ids[ch.ID]; ok {
		return id
	}
	id := r.svc.ChatAPIID(ctx, r.bot, ch)
	r.ids[ch.ID] = id
	return id
}

func apiUser(u herald.User) User {
	name := u.DisplayName
	if name == "" {
		name = u.Username
	}
	return User{ID: u.ID, IsBot: u.IsBot, FirstName: name, Username: u.Username}
}

func (r renderer) user(ctx context.Context, id int64) User {
	u, err := r.svc.User(ctx, id)
	if err != nil {
		return User{ID: id, FirstName: "Deleted Account"}
	}
	return apiUser(u)
}

// chat renders a chat. A direct chat is the other person, with their id.
func (r renderer) chat(ctx context.Context, ch herald.Chat) Chat {
	out := Chat{ID: r.chatID(ctx, ch)}
	switch ch.Kind {
	case herald.Direct:
		u := r.user(ctx, out.ID)
		out.Type, out.FirstName, out.Username = "private", u.FirstName, u.Username
	case herald.Channel:
		out.Type, out.Title, out.Username, out.Description = "channel", ch.Title, ch.Username, ch.Description
	default:
		out.Type, out.Title = "group", ch.Title
		if ch.Broadcast {
			out.Type = "supergroup"
		}
	}
	return out
}

// message renders m; with depth 0 it also renders the message it replies
// to (one level deep, as the Bot API does).
func (r renderer) message(ctx context.Context, ch herald.Chat, m herald.Message, depth int) *Message {
	out := &Message{MessageID: m.Seq, Date: m.SentAt.Unix(), Chat: r.chat(ctx, ch), Text: m.Text}
	if !m.EditedAt.IsZero() {
		out.EditDate = m.EditedAt.Unix()
	}
	if ch.Kind == herald.Channel {
		sc := out.Chat
		out.SenderChat = &sc
		if m.Signed && m.SenderID != 0 {
			out.AuthorSig = r.user(ctx, m.SenderID).FirstName
		}
	} else {
		u := r.user(ctx, m.SenderID)
		out.From = &u
	}
	if m.Fwd != nil {
		origin := &MessageOrigin{Type: "hidden_user", Date: m.SentAt.Unix(), SenderName: "Unknown"}
		if m.Fwd.UserID != 0 {
			u := r.user(ctx, m.Fwd.UserID)
			origin = &MessageOrigin{Type: "user", Date: m.SentAt.Unix(), SenderUser: &u}
			out.ForwardFrom = &u
		} else if src, err := r.svc.ChatMeta(ctx, m.Fwd.ChatID); err == nil {
			c := r.chat(ctx, src)
			origin = &MessageOrigin{Type: "channel", Date: m.SentAt.Unix(), Chat: &c, MessageID: m.Fwd.Seq}
		}
		out.ForwardOrigin, out.ForwardDate = origin, m.SentAt.Unix()
	}
	if len(m.Extras.Entities) > 0 {
		out.Entities = apiEntities(m.Extras.Entities)
	} else if u, err := r.svc.User(ctx, m.SenderID); err == nil && !u.IsBot {
		// People's messages carry no stored entities: find the ones bots
		// route on (commands, mentions, links) as Telegram's clients do.
		out.Entities = apiEntities(detectEntities(m.Text))
	}
	if len(m.Extras.Buttons) > 0 {
		kb := &InlineKeyboardMarkup{}
		for _, row := range m.Extras.Buttons {
			var rr []InlineKeyboardButton
			for _, b := range row {
				rr = append(rr, InlineKeyboardButton{Text: b.Text, CallbackData: b.Data, URL: b.URL})
			}
			kb.InlineKeyboard = append(kb.InlineKeyboard, rr)
		}
		out.ReplyMarkup = kb
	}
	if m.File != nil {
		// A file's text is its caption.
		attachFile(out, m.File)
		out.Caption, out.CaptionEnts, out.Text, out.Entities = out.Text, out.Entities, "", nil
	}
	if m.ReplyTo > 0 && depth == 0 {
		if rm, err := r.svc.ReplyOf(ctx, r.bot, m); err == nil {
			out.ReplyTo = r.message(ctx, ch, rm, depth+1)
		}
	}
	return out
}

func apiEntities(es []herald.Entity) []MessageEntity {
	if len(es) == 0 {
		return nil
	}
	out := make([]MessageEntity, len(es))
	for i, e := range es {
		out[i] = MessageEntity{Type: e.Type, Offset: e.Offset, Length: e.Length, URL: e.URL, Language: e.Language}
		if e.UserID != 0 {
			out[i].User = &User{ID: e.UserID}
		}
	}
	return out
}

// update renders one entry of the bot's log.
func (r renderer) update(ctx context.Context, bu service.BotUpdate) Update {
	out := Update{UpdateID: bu.ID}
	switch bu.Kind {
	case herald.UpdNewMessage, herald.UpdEditMessage:
		m := r.message(ctx, bu.Chat, bu.Message, 0)
		channel := bu.Chat.Kind == herald.Channel
		switch {
		case bu.Kind == herald.UpdNewMessage && channel:
			out.ChannelPost = m
		case bu.Kind == herald.UpdNewMessage:
			out.Message = m
		case channel:
			out.EditedChannelPost = m
		default:
			out.EditedMessage = m
		}
	case herald.UpdCallback:
		cb := bu.Callback
		out.CallbackQuery = &CallbackQuery{
			ID: strconv.FormatInt(cb.ID, 10), From: r.user(ctx, cb.UserID),
			Message: r.message(ctx, bu.Chat, bu.Message, 0), Data: cb.Data,
			// The same for every press in one chat, as the Bot API asks.
			ChatInstance: strconv.FormatInt(bu.Chat.ID, 10),
		}
	}
	return out
}

func (r renderer) member(ctx context.Context, ch herald.Chat, m herald.Member) ChatMember {
	out := ChatMember{User: r.user(ctx, m.UserID)}
	switch m.Role {
	case herald.RoleOwner:
		out.Status = "creator"
		f := false
		out.IsAnonymous = &f
	case herald.RoleAdmin:
		out.Status = "administrator"
		f := false
		out.IsAnonymous, out.CanBeEdited = &f, &f
	case herald.RoleMember:
		out.Status = "member"
	default:
		out.Status = "left"
	}
	if ch.Kind == herald.Direct && m.Role != 0 {
		out.Status = "member"
	}
	return out
}
