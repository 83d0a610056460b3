package botapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/egress"
	"github.com/heraldim/herald/service"
)

// methodFunc is one Bot API method. It returns the value of "result".
type methodFunc func(ctx context.Context, r *request) (any, error)

// methods is the method table, by lower-cased name (method names are
// case-insensitive). Media methods (sendDocument, sendPhoto, getFile …)
// join it when Herald has files; each is one more entry.
var methods map[string]methodFunc

func init() {
	methods = map[string]methodFunc{}
	for name, fn := range map[string]methodFunc{
		"getMe":                           getMe,
		"logOut":                          ok,
		"close":                           ok,
		"getUpdates":                      getUpdates,
		"setWebhook":                      setWebhook,
		"deleteWebhook":                   deleteWebhook,
		"getWebhookInfo":                  getWebhookInfo,
		"sendMessage":                     sendMessage,
		"editMessageText":                 editMessageText,
		"editMessageReplyMarkup":          editMessageReplyMarkup,
		"deleteMessage":                   deleteMessage,
		"pinChatMessage":                  pinChatMessage,
		"unpinChatMessage":                unpinChatMessage,
		"setMessageReaction":              setMessageReaction,
		"deleteMessages":                  deleteMessages,
		"forwardMessage":                  forwardMessage,
		"copyMessage":                     copyMessage,
		"sendChatAction":                  sendChatAction,
		"answerCallbackQuery":             answerCallbackQuery,
		"getChat":                         getChat,
		"getChatMember":                   getChatMember,
		"getChatMemberCount":              getChatMemberCount,
		"getChatMembersCount":             getChatMemberCount, // the old name, still used by some libraries
		"getChatAdministrators":           getChatAdministrators,
		"leaveChat":                       leaveChat,
		"setMyCommands":                   setMyCommands,
		"getMyCommands":                   getMyCommands,
		"deleteMyCommands":                deleteMyCommands,
		"getMyName":                       getMyName,
		"getMyDescription":                getMyDescription,
		"getMyShortDescription":           getMyShortDescription,
		"setMyDescription":                ok,
		"setMyShortDescription":           ok,
		"setChatMenuButton":               ok,
		"getChatMenuButton":               getChatMenuButton,
		"setMyDefaultAdministratorRights": ok,
		"sendDocument":                    sendMedia("document"),
		"sendPhoto":                       sendMedia("photo"),
		"sendVideo":                       sendMedia("video"),
		"sendAudio":                       sendMedia("audio"),
		"sendVoice":                       sendMedia("voice"),
		"sendAnimation":                   sendMedia("animation"),
		"getFile":                         getFile,
		"editMessageCaption":              editMessageCaption,
	} {
		methods[strings.ToLower(name)] = fn
	}
}

func ok(context.Context, *request) (any, error) { return true, nil }

// chat resolves the chat_id parameter (a number or @username) to a chat
// the bot is in.
func (r *request) chat(ctx context.Context, param string) (herald.Chat, herald.Member, error) {
	v, err := r.p.required(param)
	if err != nil {
		return herald.Chat{}, herald.Member{}, err
	}
	if strings.HasPrefix(v, "@") {
		return r.api.svc.ResolveAPIChat(ctx, r.caller, 0, v)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return herald.Chat{}, herald.Member{}, badRequest("parameter %q must be an integer or an @username", param)
	}
	return r.api.svc.ResolveAPIChat(ctx, r.caller, id, "")
}

func getMe(ctx context.Context, r *request) (any, error) {
	u := r.render.user(ctx, r.caller.UserID)
	t, f, all := true, false, r.bot.ReadAll
	u.CanJoinGroups, u.SupportsInlineQueries, u.CanReadAllGroupMessages = &t, &f, &all
	return u, nil
}

func getMyName(ctx context.Context, r *request) (any, error) {
	return map[string]string{"name": r.render.user(ctx, r.caller.UserID).FirstName}, nil
}

func getMyDescription(context.Context, *request) (any, error) {
	return map[string]string{"description": ""}, nil
}

func getMyShortDescription(context.Context, *request) (any, error) {
	return map[string]string{"short_description": ""}, nil
}

func getChatMenuButton(context.Context, *request) (any, error) {
	return map[string]string{"type": "default"}, nil
}

// ---- updates ----

var webhookActive = &apiError{code: http.StatusConflict, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}

func getUpdates(ctx context.Context, r *request) (any, error) {
	if r.bot.WebhookURL != "" {
		return nil, webhookActive
	}
	offset, err := r.p.int64("offset", 0)
	if err != nil {
		return nil, err
	}
	limit, err := r.p.int64("limit", 100)
	if err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 100)
	timeout, err := r.p.int64("timeout", 0)
	if err != nil {
		return nil, err
	}
	wait := min(time.Duration(max(timeout, 0))*time.Second, r.api.opts.MaxPollTimeout)
	allowed := r.bot.AllowedUpdates
	var asked []string
	if okj, err := r.p.json("allowed_updates", &asked); err != nil {
		return nil, err
	} else if okj {
		if err := r.api.svc.SetAllowedUpdates(ctx, r.caller, asked); err != nil {
			return nil, err
		}
		allowed = asked
	}
	if wait > 0 {
		// Only waiting polls are exclusive: a quick look (grammY confirms
		// its last offset with one while stopping) takes nobody's place.
		var done func()
		ctx, done = r.api.startPoll(ctx, r.caller.UserID)
		defer done()
	}
	out, err := r.poll(ctx, offset, int(limit), wait, allowed)
	if cause := pollEnded(ctx); cause != nil {
		// Replaced by a newer poll or a webhook while it waited, or while
		// its store call was under way: that one has the updates.
		return nil, cause
	}
	return out, err
}

// pollEnded is the conflict that ended a poll early, if one did.
func pollEnded(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, errConflict) || errors.Is(cause, errWebhookSet) {
		return cause
	}
	return nil
}

// poll is getUpdates once it is the bot's one poll.
func (r *request) poll(ctx context.Context, offset int64, limit int, wait time.Duration, allowed []string) ([]Update, error) {
	svc := r.api.svc
	wake, stop, err := r.api.wake(ctx, r.caller)
	if err != nil {
		return nil, err
	}
	defer stop()

	var after int64
	switch {
	case offset > 0:
		after = offset - 1
	case offset < 0:
		pts, err := svc.State(ctx, r.caller)
		if err != nil {
			return nil, err
		}
		after = max(pts+offset, 0)
	}
	if err := r.api.confirm(ctx, r.caller, after+1); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		ups, last, err := svc.BotUpdates(ctx, r.caller, r.bot, after, limit)
		if err != nil {
			return nil, err
		}
		out := make([]Update, 0, len(ups))
		for _, bu := range ups {
			u := r.render.update(ctx, bu)
			if len(allowed) == 0 || slices.Contains(allowed, u.kind()) {
				out = append(out, u)
			}
		}
		if len(out) > 0 || wait == 0 {
			return out, nil
		}
		after = last
		select {
		case <-wake:
		case <-deadline.C:
			return out, nil
		case <-ctx.Done():
			if cause := pollEnded(ctx); cause != nil {
				return nil, cause
			}
			return out, nil
		}
	}
}

// confirm forgets the bot's updates below offset. It writes only when the
// offset moved (or hourly, to drop what outlived its 24 hours), so a bot
// polling an empty queue costs no writes.
func (a *API) confirm(ctx context.Context, c service.Caller, offset int64) error {
	now := time.Now()
	a.mu.Lock()
	st := a.confirmed[c.UserID]
	due := offset > st.offset || now.Sub(st.at) > time.Hour
	a.mu.Unlock()
	if !due {
		return nil
	}
	if err := a.svc.ConfirmBotUpdates(ctx, c, offset); err != nil {
		return err
	}
	a.mu.Lock()
	if len(a.confirmed) > 100_000 {
		clear(a.confirmed) // forgetting only costs a redundant write
	}
	a.confirmed[c.UserID] = confirmState{offset: max(offset, st.offset), at: now}
	a.mu.Unlock()
	return nil
}

type confirmState struct {
	offset int64
	at     time.Time
}

func setWebhook(ctx context.Context, r *request) (any, error) {
	var allowed []string
	if _, err := r.p.json("allowed_updates", &allowed); err != nil {
		return nil, err
	}
	maxConn, err := r.p.int64("max_connections", 40)
	if err != nil {
		return nil, err
	}
	drop, err := r.p.bool("drop_pending_updates")
	if err != nil {
		return nil, err
	}
	if r.p.files["certificate"] != nil {
		return nil, badRequest("custom certificates are not supported; use a URL with a trusted certificate")
	}
	if u := r.p.str("url"); u != "" {
		if err := (egress.Policy{AllowPrivate: r.api.opts.WebhookAllowPrivate}).CheckURL(ctx, u); err != nil {
			return nil, badRequest("bad webhook: %v", err)
		}
	}
	w := service.Webhook{URL: r.p.str("url"), Secret: r.p.str("secret_token"), AllowedUpdates: allowed, MaxConnections: int(maxConn), DropPending: drop}
	if w.AllowedUpdates == nil {
		w.AllowedUpdates = r.bot.AllowedUpdates
	}
	b, err := r.api.svc.SetWebhook(ctx, r.caller, w)
	if err != nil {
		return nil, err
	}
	r.api.ensureHook(b)
	if b.WebhookURL != "" {
		r.api.endPolls(ctx, b.UserID)
	}
	return true, nil
}

func deleteWebhook(ctx context.Context, r *request) (any, error) {
	drop, err := r.p.bool("drop_pending_updates")
	if err != nil {
		return nil, err
	}
	b, err := r.api.svc.SetWebhook(ctx, r.caller, service.Webhook{AllowedUpdates: r.bot.AllowedUpdates, DropPending: drop})
	if err != nil {
		return nil, err
	}
	r.api.ensureHook(b)
	return true, nil
}

func getWebhookInfo(ctx context.Context, r *request) (any, error) {
	ups, _, err := r.api.svc.BotUpdates(ctx, r.caller, r.bot, 0, 100)
	if err != nil {
		return nil, err
	}
	info := WebhookInfo{URL: r.bot.WebhookURL, PendingUpdateCount: len(ups), AllowedUpdates: r.bot.AllowedUpdates}
	if r.bot.WebhookURL != "" {
		info.MaxConnections = r.bot.MaxConnections
		at, msg := r.api.hookError(r.caller.UserID)
		if !at.IsZero() {
			info.LastErrorDate, info.LastErrorMessage = at.Unix(), msg
		}
	}
	return info, nil
}

// ---- messages ----

// text reads a text and its formatting: parse_mode, or explicit entities.
func (r *request) text(name, entitiesParam string) (string, []herald.Entity, error) {
	text, err := r.p.required(name)
	if err != nil {
		return "", nil, err
	}
	var given []MessageEntity
	if okj, err := r.p.json(entitiesParam, &given); err != nil {
		return "", nil, err
	} else if okj {
		ents := make([]herald.Entity, 0, len(given))
		for _, e := range given {
			he := herald.Entity{Type: e.Type, Offset: e.Offset, Length: e.Length, URL: e.URL, Language: e.Language}
			if e.User != nil {
				he.UserID = e.User.ID
			}
			ents = append(ents, he)
		}
		return text, ents, nil
	}
	return formatText(text, r.p.str("parse_mode"))
}

// buttons reads reply_markup. Only an inline keyboard is kept: it is what
// Herald's clients show; reply keyboards, their removal and force_reply
// are accepted and have no effect.
func (r *request) buttons() ([][]herald.Button, bool, error) {
	var m replyMarkup
	okj, err := r.p.json("reply_markup", &m)
	if err != nil || !okj || m.InlineKeyboard == nil {
		return nil, okj && err == nil, err
	}
	var rows [][]herald.Button
	for _, row := range *m.InlineKeyboard {
		var hr []herald.Button
		for _, b := range row {
			if b.CallbackData == "" && b.URL == "" {
				return nil, false, badRequest("each inline keyboard button needs callback_data or url (other kinds are not supported)")
			}
			hr = append(hr, herald.Button{Text: b.Text, Data: b.CallbackData, URL: b.URL})
		}
		if len(hr) > 0 {
			rows = append(rows, hr)
		}
	}
	return rows, true, nil
}

// replyTo reads reply_parameters, or the older reply_to_message_id.
func (r *request) replyTo() (int64, bool, error) {
	var rp struct {
		MessageID                int64 `json:"message_id"`
		AllowSendingWithoutReply bool  `json:"allow_sending_without_reply"`
	}
	if okj, err := r.p.json("reply_parameters", &rp); err != nil {
		return 0, false, err
	} else if okj {
		return rp.MessageID, rp.AllowSendingWithoutReply, nil
	}
	id, err := r.p.int64("reply_to_message_id", 0)
	if err != nil {
		return 0, false, err
	}
	allow, err := r.p.bool("allow_sending_without_reply")
	return id, allow, err
}

func sendMessage(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	text, ents, err := r.text("text", "entities")
	if err != nil {
		return nil, err
	}
	buttons, _, err := r.buttons()
	if err != nil {
		return nil, err
	}
	reply, allow, err := r.replyTo()
	if err != nil {
		return nil, err
	}
	return r.send(ctx, ch, text, "", herald.Extras{Buttons: buttons, Entities: ents}, reply, allow)
}

func (r *request) send(ctx context.Context, ch herald.Chat, text, fileID string, x herald.Extras, reply int64, allow bool) (any, error) {
	p := service.SendParams{Peer: service.Peer{ChatID: ch.ID}, Text: text, ReplyTo: reply, FileID: fileID}
	m, err := r.api.svc.BotSend(ctx, r.caller, p, x)
	if err != nil && reply > 0 && allow && herald.IsKind(err, herald.NotFound) {
		p.ReplyTo = 0
		m, err = r.api.svc.BotSend(ctx, r.caller, p, x)
	}
	if err != nil {
		return nil, err
	}
	return r.render.message(ctx, ch, m, 0), nil
}

func (r *request) messageRef(ctx context.Context) (herald.Chat, int64, error) {
	if r.p.has("inline_message_id") {
		return herald.Chat{}, 0, badRequest("inline messages are not supported")
	}
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return ch, 0, err
	}
	id, err := r.p.requiredInt("message_id")
	return ch, id, err
}

func editMessageText(ctx context.Context, r *request) (any, error) {
	return editText(ctx, r, "text", "entities")
}

// editText edits a message's text (or a media message's caption: the
// field names differ, nothing else does) and keyboard.
func editText(ctx context.Context, r *request, field, entities string) (any, error) {
	ch, id, err := r.messageRef(ctx)
	if err != nil {
		return nil, err
	}
	text, ents, err := r.text(field, entities)
	if err != nil {
		return nil, err
	}
	buttons, _, err := r.buttons()
	if err != nil {
		return nil, err
	}
	// As on Telegram, an edit without reply_markup drops the keyboard.
	m, err := r.api.svc.BotEdit(ctx, r.caller, ch.ID, id, &text, &herald.Extras{Buttons: buttons, Entities: ents})
	if err != nil {
		return nil, err
	}
	return r.render.message(ctx, ch, m, 0), nil
}

func editMessageReplyMarkup(ctx context.Context, r *request) (any, error) {
	ch, id, err := r.messageRef(ctx)
	if err != nil {
		return nil, err
	}
	buttons, _, err := r.buttons()
	if err != nil {
		return nil, err
	}
	old, err := r.api.svc.Message(ctx, r.caller, ch.ID, id)
	if err != nil {
		return nil, err
	}
	m, err := r.api.svc.BotEdit(ctx, r.caller, ch.ID, id, nil, &herald.Extras{Buttons: buttons, Entities: old.Extras.Entities})
	if err != nil {
		return nil, err
	}
	return r.render.message(ctx, ch, m, 0), nil
}

func deleteMessage(ctx context.Context, r *request) (any, error) {
	ch, id, err := r.messageRef(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.api.svc.Delete(ctx, r.caller, ch.ID, []int64{id}, true); err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return nil, badRequest("message to delete not found")
		}
		return nil, err
	}
	return true, nil
}

func pinChatMessage(ctx context.Context, r *request) (any, error) {
	ch, id, err := r.messageRef(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.api.svc.Pin(ctx, r.caller, ch.ID, id, true); err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return nil, badRequest("message to pin not found")
		}
		return nil, err
	}
	return true, nil
}

// unpinChatMessage unpins message_id, or without it the newest pin.
func unpinChatMessage(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	id, err := r.p.int64("message_id", 0)
	if err != nil {
		return nil, err
	}
	if id == 0 {
		pins, err := r.api.svc.Pins(ctx, r.caller, service.Peer{ChatID: ch.ID})
		if err != nil {
			return nil, err
		}
		if len(pins) == 0 {
			return true, nil
		}
		id = pins[0].Seq
	}
	if err := r.api.svc.Pin(ctx, r.caller, ch.ID, id, false); err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return nil, badRequest("message to unpin not found")
		}
		return nil, err
	}
	return true, nil
}

// setMessageReaction sets the bot's reactions on a message to exactly
// the emoji of reaction (a JSON array of {"type":"emoji","emoji":…});
// none removes them.
func setMessageReaction(ctx context.Context, r *request) (any, error) {
	ch, id, err := r.messageRef(ctx)
	if err != nil {
		return nil, err
	}
	var rs []struct {
		Type  string `json:"type"`
		Emoji string `json:"emoji"`
	}
	if _, err := r.p.json("reaction", &rs); err != nil {
		return nil, err
	}
	var want []string
	for _, x := range rs {
		if x.Type != "emoji" {
			return nil, badRequest("REACTION_INVALID: only emoji reactions are supported")
		}
		want = append(want, x.Emoji)
	}
	if err := r.api.svc.SetReactions(ctx, r.caller, ch.ID, id, want); err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return nil, badRequest("message to react not found")
		}
		return nil, err
	}
	return true, nil
}

func deleteMessages(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	var ids []int64
	if okj, err := r.p.json("message_ids", &ids); err != nil {
		return nil, err
	} else if !okj || len(ids) == 0 {
		return nil, badRequest("parameter %q is required", "message_ids")
	}
	return true, r.api.svc.Delete(ctx, r.caller, ch.ID, ids, true)
}

func forwardMessage(ctx context.Context, r *request) (any, error) {
	to, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	from, _, err := r.chat(ctx, "from_chat_id")
	if err != nil {
		return nil, err
	}
	id, err := r.p.requiredInt("message_id")
	if err != nil {
		return nil, err
	}
	ms, err := r.api.svc.Forward(ctx, r.caller, from.ID, []int64{id}, service.Peer{ChatID: to.ID}, 0, false)
	if err != nil {
		return nil, err
	}
	return r.render.message(ctx, to, ms[0], 0), nil
}

func copyMessage(ctx context.Context, r *request) (any, error) {
	to, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	from, _, err := r.chat(ctx, "from_chat_id")
	if err != nil {
		return nil, err
	}
	id, err := r.p.requiredInt("message_id")
	if err != nil {
		return nil, err
	}
	src, err := r.api.svc.Message(ctx, r.caller, from.ID, id)
	if err != nil {
		return nil, err
	}
	x := herald.Extras{Entities: src.Extras.Entities}
	if buttons, given, err := r.buttons(); err != nil {
		return nil, err
	} else if given {
		x.Buttons = buttons
	} else {
		x.Buttons = src.Extras.Buttons
	}
	reply, allow, err := r.replyTo()
	if err != nil {
		return nil, err
	}
	fileID := ""
	if src.File != nil {
		fileID = src.File.ID
	}
	res, err := r.send(ctx, to, src.Text, fileID, x, reply, allow)
	if err != nil {
		return nil, err
	}
	return MessageID{MessageID: res.(*Message).MessageID}, nil
}

func sendChatAction(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	if _, err := r.p.required("action"); err != nil {
		return nil, err
	}
	if ch.Broadcast {
		return true, nil // nobody is shown typing in channels; nothing to do
	}
	return true, r.api.svc.Typing(ctx, r.caller, ch.ID)
}

func answerCallbackQuery(ctx context.Context, r *request) (any, error) {
	v, err := r.p.required("callback_query_id")
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	alert, err := r.p.bool("show_alert")
	if err != nil {
		return nil, err
	}
	return true, r.api.svc.AnswerCallback(ctx, r.caller, id, r.p.str("text"), alert, r.p.str("url"))
}

// ---- chats ----

func getChat(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	out := r.render.chat(ctx, ch)
	zero, one := 0, 1
	out.AccentColor, out.MaxReaction = &zero, &one
	return out, nil
}

func getChatMember(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	uid, err := r.p.requiredInt("user_id")
	if err != nil {
		return nil, err
	}
	if _, err := r.api.svc.User(ctx, uid); err != nil {
		return nil, badRequest("user not found")
	}
	m, err := r.api.svc.ChatMember(ctx, r.caller, ch.ID, uid)
	if err != nil {
		return nil, err
	}
	return r.render.member(ctx, ch, m), nil
}

func getChatMemberCount(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	return ch.MemberCount, nil
}

func getChatAdministrators(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	info, err := r.api.svc.GetChat(ctx, r.caller, service.Peer{ChatID: ch.ID})
	if err != nil {
		return nil, err
	}
	out := []ChatMember{}
	for _, m := range info.Members {
		if m.Role >= herald.RoleAdmin {
			out = append(out, r.render.member(ctx, ch, m))
		}
	}
	return out, nil
}

func leaveChat(ctx context.Context, r *request) (any, error) {
	ch, _, err := r.chat(ctx, "chat_id")
	if err != nil {
		return nil, err
	}
	return true, r.api.svc.Leave(ctx, r.caller, ch.ID)
}

// ---- commands ----

func setMyCommands(ctx context.Context, r *request) (any, error) {
	var cmds []herald.BotCommand
	if okj, err := r.p.json("commands", &cmds); err != nil {
		return nil, err
	} else if !okj {
		return nil, badRequest("parameter %q is required", "commands")
	}
	return true, r.api.svc.SetCommands(ctx, r.caller, cmds)
}

func getMyCommands(ctx context.Context, r *request) (any, error) {
	b, err := r.api.svc.Bot(ctx, r.caller)
	if err != nil {
		return nil, err
	}
	if b.Commands == nil {
		return []herald.BotCommand{}, nil
	}
	return b.Commands, nil
}

func deleteMyCommands(ctx context.Context, r *request) (any, error) {
	return true, r.api.svc.SetCommands(ctx, r.caller, nil)
}
