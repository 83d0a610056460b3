package service

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/heraldim/herald"
)

func (s *Service) annotations() error {
	if s.annot == nil {
		return herald.Errorf(herald.Unavailable, "reactions and pins are not available on this server")
	}
	return nil
}

// ReactionSet returns the emoji members may react with on this server.
func (s *Service) ReactionSet() []string { return slices.Clone(s.reactions) }

// liveMessage returns message seq of a chat as the caller sees it, if it
// is there for them: not deleted for everyone or for them, not expired.
func (s *Service) liveMessage(ctx context.Context, c Caller, chatID, seq int64) (herald.Message, error) {
	if seq <= 0 {
		return herald.Message{}, herald.Errorf(herald.Invalid, "a message id is a positive number")
	}
	m, err := s.store.Message(ctx, c.UserID, chatID, seq)
	if err == nil {
		err = s.open(ctx, &m)
	}
	if err == nil && (m.Deleted || m.Service) {
		err = herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return m, err
}

// othersBlock refuses when the other person of a direct chat blocked the
// caller: reactions and pins reach them as messages do.
func (s *Service) othersBlock(ctx context.Context, c Caller, ch herald.Chat, what string) error {
	if ch.Kind != herald.Direct {
		return nil
	}
	members, err := s.store.Members(ctx, ch.ID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.UserID != c.UserID {
			if err := s.blockedBy(ctx, m.UserID, c.UserID, what); err != nil {
				return err
			}
		}
	}
	return nil
}

// React puts the caller's emoji on a message, or takes it off if it is
// there already (a toggle, as a tap on a reaction is). Any member who can
// see the message may react, channel subscribers included; the emoji must
// be one of the server's set, and a person puts at most
// herald.MaxReactionsPerUser on one message. It returns the message's
// reactions as the caller now sees them, and tells every member's devices.
func (s *Service) React(ctx context.Context, c Caller, chatID, seq int64, emoji string) ([]herald.Reaction, error) {
	if err := s.annotations(); err != nil {
		return nil, err
	}
	if len(emoji) > herald.MaxEmojiBytes || !utf8.ValidString(emoji) || !slices.Contains(s.reactions, emoji) {
		return nil, herald.Errorf(herald.Invalid, "%q is not one of this server's reactions: %s", clip(emoji, herald.MaxEmojiBytes), strings.Join(s.reactions, " "))
	}
	ch, mem, err := s.membership(ctx, c, chatID)
	if err != nil {
		return nil, err
	}
	if mem.Role == 0 {
		return nil, notFound(chatID)
	}
	if _, err := s.liveMessage(ctx, c, chatID, seq); err != nil {
		return nil, err
	}
	if err := s.othersBlock(ctx, c, ch, "reactions"); err != nil {
		return nil, err
	}
	// A reaction reaches every member as an edit would: the send rate's
	// token is spent before anything is written.
	if err := s.spend(ctx, c, ch, 1); err != nil {
		return nil, err
	}
	cur, err := s.annot.Reactions(ctx, chatID, []int64{seq})
	if err != nil {
		return nil, err
	}
	mine, have := 0, false
	for _, r := range cur[seq] {
		if r.UserID == c.UserID {
			mine++
			have = have || r.Emoji == emoji
		}
	}
	if !have && mine >= herald.MaxReactionsPerUser {
		return nil, herald.Errorf(herald.Invalid, "one person puts at most %d reactions on a message; take one off first", herald.MaxReactionsPerUser)
	}
	if _, err := s.annot.SetReaction(ctx, chatID, seq, c.UserID, emoji, !have, s.now()); err != nil {
		return nil, err
	}
	after, err := s.annot.Reactions(ctx, chatID, []int64{seq})
	if err != nil {
		return nil, err
	}
	rs := tally(after[seq], 0, ch.Kind == herald.Channel)
	s.tell(ctx, ch, func(f Frames, reader int64) []byte { return f.ReactionsFrame(ctx, chatID, seq, rs, reader) })
	return tally(after[seq], c.UserID, ch.Kind == herald.Channel), nil
}

// tally counts reactions per emoji, in the order each emoji was first
// used. reader marks the reader's own (0: nobody's); anonymous leaves out
// who reacted, as channels do.
func tally(rs []herald.Reactor, reader int64, anonymous bool) []herald.Reaction {
	var out []herald.Reaction
	for _, r := range rs {
		i := slices.IndexFunc(out, func(x herald.Reaction) bool { return x.Emoji == r.Emoji })
		if i < 0 {
			out = append(out, herald.Reaction{Emoji: r.Emoji})
			i = len(out) - 1
		}
		out[i].Count++
		if r.UserID == reader && reader != 0 {
			out[i].Mine = true
		}
		if !anonymous {
			out[i].Users = append(out[i].Users, r.UserID)
		}
	}
	return out
}

// MentionsReader reports whether a message names reader (and is not
// theirs): what a pushed message's mentions_me says, without a query.
func (s *Service) MentionsReader(ctx context.Context, reader int64, m *herald.Message) bool {
	if m.SenderID == reader || m.Deleted || m.Service {
		return false
	}
	u, err := s.user(ctx, reader)
	return err == nil && mentions(m, reader, u.Username)
}

// annotate fills in the reactions, pins, formatting and mentions of
// messages for the reader: one query of each per chat in the batch, not
// per message.
func (s *Service) annotate(ctx context.Context, reader int64, msgs []herald.Message) error {
	if s.annot == nil || len(msgs) == 0 {
		return nil
	}
	byChat := map[int64][]int{}
	for i, m := range msgs {
		if !m.Deleted {
			byChat[m.ChatID] = append(byChat[m.ChatID], i)
		}
	}
	var me string
	if u, err := s.user(ctx, reader); err == nil {
		me = u.Username
	}
	for chatID, idx := range byChat {
		seqs := make([]int64, len(idx))
		var plain []int64 // messages whose extras did not travel with them
		for j, i := range idx {
			seqs[j] = msgs[i].Seq
			if msgs[i].Extras.Empty() { // a service message's too: a call's record
				plain = append(plain, msgs[i].Seq)
			}
		}
		ch, err := s.chatMeta(ctx, chatID)
		if err != nil {
			return err
		}
		rs, err := s.annot.Reactions(ctx, chatID, seqs)
		if err != nil {
			return err
		}
		pins, err := s.annot.Pins(ctx, chatID)
		if err != nil {
			return err
		}
		var extras map[int64][]byte
		if len(plain) > 0 {
			if extras, err = s.annot.Extras(ctx, chatID, plain); err != nil {
				return err
			}
		}
		for _, i := range idx {
			m := &msgs[i]
			m.Reactions = tally(rs[m.Seq], reader, ch.Kind == herald.Channel)
			m.Pinned = slices.ContainsFunc(pins, func(p herald.Pin) bool { return p.Seq == m.Seq })
			if x, ok := extras[m.Seq]; ok {
				m.Extra = x
				if err := s.openExtra(ctx, m); err != nil {
					return err
				}
			}
			m.MentionsMe = m.SenderID != reader && !m.Service && mentions(m, reader, me)
		}
	}
	return nil
}

// mentions reports whether a message's text names the reader: an
// @username entity or word, or a text mention of their id.
func mentions(m *herald.Message, reader int64, username string) bool {
	for _, e := range m.Extras.Entities {
		if e.Type == "text_mention" && e.UserID == reader {
			return true
		}
	}
	if username == "" || !strings.Contains(m.Text, "@") {
		return false
	}
	for _, name := range MentionedNames(m.Text) {
		if strings.EqualFold(name, username) {
			return true
		}
	}
	return false
}

// MentionedNames returns the @usernames a text names, without the @, in
// order: an @ at the start or after a non-word character, followed by
// the characters a username may have.
func MentionedNames(text string) []string {
	var out []string
	for i := 0; i < len(text); i++ {
		if text[i] != '@' || (i > 0 && wordByte(text[i-1])) {
			continue
		}
		j := i + 1
		for j < len(text) && wordByte(text[j]) {
			j++
		}
		if j-i-1 >= 3 {
			out = append(out, text[i+1:j])
		}
		i = j - 1
	}
	return out
}

func wordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// canPin says who pins in a chat: both people of a direct chat, a
// group's or channel's admins and owner.
func canPin(ch herald.Chat, mem herald.Member) error {
	if mem.Role == 0 {
		return notFound(ch.ID)
	}
	if ch.Kind != herald.Direct && mem.Role < herald.RoleAdmin {
		return herald.Errorf(herald.PermissionDenied, "only the %s's admins can pin and unpin messages", ch.Kind)
	}
	return nil
}

// Pin pins a message (on) or unpins it. A chat has up to herald.MaxPins
// pins. Pinning posts a service message that replies to the pinned one,
// so everyone sees it in the history; both tell every member's devices.
func (s *Service) Pin(ctx context.Context, c Caller, chatID, seq int64, on bool) error {
	if err := s.annotations(); err != nil {
		return err
	}
	ch, mem, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	if err := canPin(ch, mem); err != nil {
		return err
	}
	m, err := s.liveMessage(ctx, c, chatID, seq)
	if err != nil {
		return err
	}
	if err := s.othersBlock(ctx, c, ch, "messages"); err != nil {
		return err
	}
	if err := s.spend(ctx, c, ch, 1); err != nil {
		return err
	}
	if on {
		pins, err := s.annot.Pins(ctx, chatID)
		if err != nil {
			return err
		}
		if len(pins) >= herald.MaxPins && !slices.ContainsFunc(pins, func(p herald.Pin) bool { return p.Seq == seq }) {
			return herald.Errorf(herald.Invalid, "a chat has at most %d pinned messages; unpin one first", herald.MaxPins)
		}
	}
	changed, err := s.annot.SetPin(ctx, chatID, seq, c.UserID, on, s.now())
	if err != nil || !changed {
		return err
	}
	s.tell(ctx, ch, func(f Frames, _ int64) []byte { return f.PinFrame(ctx, chatID, seq, on) })
	if !on {
		return nil
	}
	snippet := m.Text
	if snippet == "" && m.File != nil {
		snippet = m.File.Name
	}
	note := "pinned “" + clip(strings.Join(strings.Fields(snippet), " "), 60) + "”"
	if ch.Kind == herald.Channel {
		note = "Pinned “" + note[len("pinned “"):] // an admin's post stays the channel's: unnamed
	} else {
		who := c.Username
		if u, err := s.user(ctx, c.UserID); err == nil {
			who = u.Username
		}
		note = "@" + who + " " + note
	}
	_, err = s.append(ctx, herald.Message{ChatID: chatID, SenderID: c.UserID, Text: note, ReplyTo: seq, Service: true, SentAt: s.now()})
	return err
}

// Pins returns a chat's pinned messages, newest pin first, as the caller
// sees them (a message deleted for them only is left out).
func (s *Service) Pins(ctx context.Context, c Caller, p Peer) ([]herald.Message, error) {
	if err := s.annotations(); err != nil {
		return nil, err
	}
	ch, _, err := s.resolve(ctx, c, p, false, true)
	if err != nil {
		return nil, err
	}
	pins, err := s.annot.Pins(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	out := make([]herald.Message, 0, len(pins))
	for _, pin := range pins {
		m, err := s.liveMessage(ctx, c, ch.ID, pin.Seq)
		if herald.IsKind(err, herald.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, s.annotate(ctx, c.UserID, out)
}

// annotateUpdates annotates the messages a page of a log refers to.
func (s *Service) annotateUpdates(ctx context.Context, reader int64, d *herald.Difference) error {
	var msgs []herald.Message
	var at []int
	for i, u := range d.Updates {
		if u.Message != nil {
			msgs = append(msgs, *u.Message)
			at = append(at, i)
		}
	}
	if err := s.annotate(ctx, reader, msgs); err != nil {
		return err
	}
	for j, i := range at {
		m := msgs[j]
		d.Updates[i].Message = &m
	}
	return nil
}

// personEntities are the formatting a person's composer may produce.
var personEntities = map[string]bool{
	"bold": true, "italic": true, "underline": true, "strikethrough": true, "spoiler": true,
	"code": true, "pre": true, "text_link": true, "url": true, "mention": true, "text_mention": true,
	"blockquote": true, "expandable_blockquote": true, "email": true, "hashtag": true,
}

// ValidateEntities checks the formatting of a text: known types, spans
// inside the text, links that are http(s), tg or mailto, a bounded count.
func ValidateEntities(ents []herald.Entity, text string) error {
	if len(ents) > herald.MaxEntities {
		return herald.Errorf(herald.TooLarge, "a message has at most %d formatting entities", herald.MaxEntities)
	}
	for _, e := range ents {
		if !personEntities[e.Type] {
			return herald.Errorf(herald.Invalid, "%q is not a kind of formatting", clip(e.Type, 32))
		}
		if len(e.Language) > 32 || len(e.URL) > 2048 {
			return herald.Errorf(herald.Invalid, "an entity's language or url is too long")
		}
		if e.Type == "text_link" {
			u := strings.ToLower(e.URL)
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "tg://") && !strings.HasPrefix(u, "mailto:") {
				return herald.Errorf(herald.Invalid, "a link's url must be http, https, tg or mailto")
			}
		} else if e.URL != "" {
			return herald.Errorf(herald.Invalid, "only text_link entities carry a url")
		}
	}
	return validateExtras(herald.Extras{Entities: ents}, text)
}

// groupNote posts a service message about the life of a group ("@alice
// added @carol", "@bob left", "@alice changed the title to …") that every
// member sees in the history. Channels get none: their subscribers come
// and go unannounced, as on Telegram. The change it reports is already
// made, so a failure to post is logged, not returned.
func (s *Service) groupNote(ctx context.Context, c Caller, ch herald.Chat, what string) {
	if ch.Kind != herald.Group {
		return
	}
	who := c.Username
	if u, err := s.user(ctx, c.UserID); err == nil {
		who = u.Username
	}
	_, err := s.append(context.WithoutCancel(ctx), herald.Message{ChatID: ch.ID, SenderID: c.UserID, Text: "@" + who + " " + what, Service: true, SentAt: s.now()})
	if err != nil {
		s.log.WarnContext(ctx, "group service message", "chat", ch.ID, "err", err)
	}
}

// atNames writes users as "@alice, @bob".
func (s *Service) atNames(ctx context.Context, ids []int64) string {
	names := s.UserNames(ctx, ids...)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "@" + names[id]
	}
	return strings.Join(out, ", ")
}

// recordMentions notes which members a group message names (by
// @username or a text mention), for their chat list's "@" until they
// read it. The message is already sent: a failure here is logged.
func (s *Service) recordMentions(ctx context.Context, c Caller, m herald.Message) {
	if s.annot == nil {
		return
	}
	var ids []int64
	for _, e := range m.Extras.Entities {
		if e.Type == "text_mention" && e.UserID != 0 {
			ids = append(ids, e.UserID)
		}
	}
	names := MentionedNames(m.Text)
	if len(names) > herald.MaxEntities {
		names = names[:herald.MaxEntities]
	}
	for _, n := range names {
		if u, err := s.ResolveUser(ctx, n); err == nil {
			ids = append(ids, u.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	members := ids[:0]
	for _, id := range ids {
		if id == c.UserID {
			continue
		}
		if _, err := s.store.Member(ctx, m.ChatID, id); err == nil {
			members = append(members, id)
		}
	}
	if len(members) == 0 {
		return
	}
	if err := s.annot.AddMentions(context.WithoutCancel(ctx), m.ChatID, m.Seq, members); err != nil {
		s.log.WarnContext(ctx, "record mentions", "chat", m.ChatID, "err", err)
	}
}

// SetReactions makes the caller's reactions on a message exactly want
// (the Bot API's setMessageReaction), toggling what differs.
func (s *Service) SetReactions(ctx context.Context, c Caller, chatID, seq int64, want []string) error {
	if err := s.annotations(); err != nil {
		return err
	}
	want = slices.Compact(slices.Clone(want))
	if len(want) > herald.MaxReactionsPerUser {
		return herald.Errorf(herald.Invalid, "one person puts at most %d reactions on a message", herald.MaxReactionsPerUser)
	}
	if _, _, err := s.membership(ctx, c, chatID); err != nil {
		return err
	}
	cur, err := s.annot.Reactions(ctx, chatID, []int64{seq})
	if err != nil {
		return err
	}
	var have []string
	for _, r := range cur[seq] {
		if r.UserID == c.UserID {
			have = append(have, r.Emoji)
		}
	}
	for _, e := range have { // off first, so the cap counts the new set
		if !slices.Contains(want, e) {
			if _, err := s.React(ctx, c, chatID, seq, e); err != nil {
				return err
			}
		}
	}
	for _, e := range want {
		if !slices.Contains(have, e) {
			if _, err := s.React(ctx, c, chatID, seq, e); err != nil {
				return err
			}
		}
	}
	return nil
}
