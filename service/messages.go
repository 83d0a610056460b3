package service

import (
	"context"
	"errors"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/crypto"
)

// seal fills m.Body from m.Text: under the key-ring bucket that ends at
// or after m.SealedUntil for messages with a timer, else under the master
// key.
func (s *Service) seal(m *herald.Message) error {
	if m.SealedUntil.IsZero() {
		m.Body = s.sealer.Seal(m.ChatID, []byte(m.Text))
		return nil
	}
	if s.ring == nil {
		return herald.Errorf(herald.Unavailable, "self-destructing messages are not available on this server")
	}
	b, err := s.ring.SealUntil(m.SealedUntil, m.ChatID, []byte(m.Text))
	if err != nil {
		return herald.Wrap("service.seal", err)
	}
	m.Body = b
	return nil
}

// open fills m.Text from m.Body. A deleted message has neither, and so
// does one whose time is up, even if the sweeper has not reached it yet:
// reads filter on expiry. A body that does not open (its bucket key was
// destroyed, or it is damaged) is shown as deleted rather than failing the
// whole page: one bad row must not wedge a device's sync.
func (s *Service) open(ctx context.Context, m *herald.Message) error {
	if !m.Deleted && !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(s.now()) {
		m.Deleted = true
	}
	if m.Deleted || len(m.Body) == 0 {
		m.Text, m.Body, m.Deleted, m.File = "", nil, m.Deleted || len(m.Body) == 0, nil
		return nil
	}
	var pt []byte
	var err error
	if crypto.RingSealed(m.Body) && s.ring != nil {
		pt, err = s.ring.Open(m.ChatID, m.Body)
	} else {
		pt, err = s.sealer.Open(m.ChatID, m.Body)
	}
	if err != nil {
		if !errors.Is(err, crypto.ErrExpired) {
			s.log.ErrorContext(ctx, "message body does not open; shown as deleted", "chat", m.ChatID, "seq", m.Seq, "err", err)
		}
		m.Text, m.Body, m.Deleted, m.File = "", nil, true, nil
		return nil
	}
	m.Text = string(pt)
	m.Body = nil
	s.fileMeta(ctx, m)
	return s.openExtra(ctx, m)
}

// SendParams is a new message.
type SendParams struct {
	Peer     Peer
	Text     string
	ReplyTo  int64
	RandomID int64 // the client's idempotency key; a retry with the same one is not stored twice
	// TTL makes the message self-destruct: in direct chats TTL after the
	// recipient reads it, elsewhere TTL after sending. Zero: the chat's
	// auto-delete timer, if any.
	TTL time.Duration
	// FileID attaches an uploaded file (Text is then its caption and may
	// be empty): the caller's own upload, or any file they can read, so a
	// file is forwarded without uploading it again.
	FileID string
	// Entities format Text (bold, italic, links…), as the Bot API's
	// entities do; they are sealed at rest like the text.
	Entities []herald.Entity
}

// Send stores a message and delivers it to every member's devices. The
// message is durable when Send returns.
func (s *Service) Send(ctx context.Context, c Caller, p SendParams) (herald.Message, error) {
	validate := herald.ValidateText
	if p.FileID != "" {
		validate = herald.ValidateCaption
	}
	if err := validate(p.Text); err != nil {
		return herald.Message{}, err
	}
	if p.TTL != 0 && (p.TTL < herald.MinTTL || p.TTL > herald.MaxTTL) {
		return herald.Message{}, herald.Errorf(herald.Invalid, "a self-destruct timer is between %s and %s", herald.MinTTL, "7 days")
	}
	if p.ReplyTo < 0 {
		return herald.Message{}, herald.Errorf(herald.Invalid, "reply_to is a message id in this chat")
	}
	if err := ValidateEntities(p.Entities, p.Text); err != nil {
		return herald.Message{}, err
	}
	ch, mem, paid, err := s.resolveToWrite(ctx, c, p.Peer, 1, true)
	if err != nil {
		return herald.Message{}, err
	}
	if err := canPost(ch, mem); err != nil {
		return herald.Message{}, err
	}
	if err := s.sendAllowed(ctx, c, ch, 1, paid); err != nil {
		return herald.Message{}, err
	}
	if p.ReplyTo > 0 {
		if _, err := s.store.Message(ctx, c.UserID, ch.ID, p.ReplyTo); err != nil {
			if herald.IsKind(err, herald.NotFound) {
				return herald.Message{}, herald.Errorf(herald.NotFound, "no message %d to reply to in this chat", p.ReplyTo)
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
	s.setTimer(&m, ch, p.TTL)
	// The formatting is stored beside the message in its transaction.
	if m.Extra, err = s.sealExtras(ch.ID, herald.Extras{Entities: p.Entities}); err != nil {
		return herald.Message{}, err
	}
	msg, err := s.append(ctx, m)
	if err == nil && ch.Kind == herald.Group {
		s.recordMentions(ctx, c, msg)
	}
	return msg, err
}

// setTimer gives a new message its timer: the sender's, else the chat's
// auto-delete timer. A sender's timer in a direct chat waits for the
// recipient to read (Telegram's secret-chat rule); meanwhile the body is
// sealed in near buckets that the sweeper rolls forward, so a copy of the
// data taken now becomes unreadable soon after the message ends, whenever
// that is.
func (s *Service) setTimer(m *herald.Message, ch herald.Chat, ttl time.Duration) {
	waits := ttl > 0 && ch.Kind == herald.Direct
	if ttl == 0 {
		ttl = ch.TTL
	}
	if ttl == 0 {
		return
	}
	m.TTL = ttl
	if waits {
		m.Waiting = true
		m.ExpiresAt = m.SentAt.Add(herald.MaxTTL)
		m.SealedUntil = minTime(m.ExpiresAt, m.SentAt.Add(2*s.width()))
		return
	}
	m.ExpiresAt = m.SentAt.Add(ttl)
	m.SealedUntil = m.ExpiresAt
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// canPost says whether a member may send to the chat: anyone in direct
// chats and groups, only admins in channels.
func canPost(ch herald.Chat, m herald.Member) error {
	if ch.Kind == herald.Channel && m.Role < herald.RoleAdmin {
		return herald.Errorf(herald.PermissionDenied, "only the channel's admins can post")
	}
	if m.Role == 0 {
		return notFound(ch.ID)
	}
	return nil
}

// append seals the text and stores the message; the store gets the sealed
// body only.
func (s *Service) append(ctx context.Context, m herald.Message) (herald.Message, error) {
	if !m.Service {
		// Signed or not for good, as the channel is now: a later change
		// of the setting must not unmask the author of an unsigned post.
		if ch, err := s.chatMeta(ctx, m.ChatID); err == nil && ch.Kind == herald.Channel && ch.Signatures {
			m.Signed = true
		}
	}
	if err := s.seal(&m); err != nil {
		return herald.Message{}, err
	}
	if m.File != nil {
		// Before the message is stored: a crash in between leaves a
		// file that dies early, never a message whose file outlives it.
		if err := s.bindFile(ctx, &m); err != nil {
			return herald.Message{}, err
		}
	}
	text := m.Text
	m.Text = ""
	msg, ups, dup, err := s.store.AppendMessage(ctx, m)
	if err != nil {
		return herald.Message{}, err
	}
	if !dup {
		// The text is the one just sealed: neither the answer nor the
		// frames announced open the body again.
		msg.Text, msg.Body = text, nil
		s.fileMeta(ctx, &msg)
		if err := s.openExtra(ctx, &msg); err != nil {
			s.announce(ctx, ups)
			return herald.Message{}, err
		}
		s.announceOpen(ctx, ups, &msg)
		s.notifyMessage(msg, text)
		return msg, nil
	}
	if err := s.open(ctx, &msg); err != nil {
		return herald.Message{}, err
	}
	return msg, nil
}

// Forward copies messages from a chat the caller is in to another peer,
// keeping who first sent them, or — with hideAuthor — as the caller's own
// copies that name nobody. Their formatting goes with them.
func (s *Service) Forward(ctx context.Context, c Caller, fromChat int64, seqs []int64, to Peer, randomID int64, hideAuthor bool) ([]herald.Message, error) {
	if len(seqs) == 0 {
		return nil, herald.Errorf(herald.Invalid, "name at least one message to forward")
	}
	if len(seqs) > herald.MaxForward {
		return nil, herald.Errorf(herald.TooLarge, "at most %d messages can be forwarded at once", herald.MaxForward)
	}
	from, _, err := s.membership(ctx, c, fromChat, true)
	if err != nil {
		return nil, err
	}
	// Every forwarded message is a message sent: one token each, all
	// spent before any is read or stored (or a new chat created), so a
	// batch is never half done.
	ch, mem, paid, err := s.resolveToWrite(ctx, c, to, len(seqs), true)
	if err != nil {
		return nil, err
	}
	if err := canPost(ch, mem); err != nil {
		return nil, err
	}
	if err := s.sendAllowed(ctx, c, ch, len(seqs), paid); err != nil {
		return nil, err
	}
	src := make([]herald.Message, 0, len(seqs))
	for _, seq := range seqs {
		m, err := s.store.Message(ctx, c.UserID, fromChat, seq)
		if err == nil && m.Deleted {
			err = herald.Errorf(herald.NotFound, "message %d was deleted", seq)
		}
		if err != nil {
			return nil, err
		}
		if m.TTL > 0 {
			return nil, herald.Errorf(herald.PermissionDenied, "self-destructing messages cannot be forwarded")
		}
		if err := s.open(ctx, &m); err != nil {
			return nil, err
		}
		if m.Deleted {
			return nil, herald.Errorf(herald.NotFound, "message %d was deleted", seq)
		}
		if ok, err := s.botMaySee(ctx, c, &m); err != nil {
			return nil, err
		} else if !ok {
			return nil, herald.Errorf(herald.NotFound, "message to forward not found")
		}
		src = append(src, m)
	}
	out := make([]herald.Message, 0, len(src))
	for i, m := range src {
		fwd := m.Fwd
		if fwd == nil {
			fwd = &herald.Forward{UserID: m.SenderID, ChatID: m.ChatID, Seq: m.Seq}
			if from.Kind == herald.Channel && !m.Signed {
				fwd.UserID = 0 // a post is the channel's; its admin stays unnamed
			}
		}
		rid := int64(0)
		if randomID != 0 {
			rid = randomID + int64(i)
		}
		if hideAuthor {
			fwd = nil
		}
		nm := herald.Message{ChatID: ch.ID, SenderID: c.UserID, RandomID: rid, Text: m.Text, Fwd: fwd, SentAt: s.now()}
		if m.File != nil {
			nm.File = &herald.File{ID: m.File.ID}
		}
		var err error
		if nm.Extra, err = s.sealExtras(ch.ID, herald.Extras{Entities: m.Extras.Entities}); err != nil {
			return out, err
		}
		s.setTimer(&nm, ch, 0)
		nm, err = s.append(ctx, nm)
		if err != nil {
			return out, err
		}
		out = append(out, nm)
	}
	return out, nil
}

// History returns up to limit messages before the given id, oldest first.
func (s *Service) History(ctx context.Context, c Caller, p Peer, before int64, limit int) ([]herald.Message, error) {
	if limit <= 0 {
		limit = herald.DefaultListLimit
	}
	if limit > herald.MaxHistoryPage {
		limit = herald.MaxHistoryPage
	}
	if before < 0 {
		return nil, herald.Errorf(herald.Invalid, "before is a message id")
	}
	ch, mem, err := s.resolve(ctx, c, p, false, true)
	if p.Username != "" && herald.IsKind(err, herald.NotFound) && !herald.IsKind(s.userExists(ctx, p.Username), herald.NotFound) {
		return nil, nil // no chat yet with an existing user: an empty history
	}
	if err != nil {
		return nil, err
	}
	if ch.Kind == herald.Channel && mem.Role > 0 && before == 0 && ch.LastSeq > 0 {
		// A member looking at the newest posts has seen them.
		if err := s.store.ViewPosts(ctx, ch.ID, c.UserID, ch.LastSeq); err != nil {
			return nil, err
		}
	}
	msgs, err := s.store.History(ctx, c.UserID, ch.ID, before, limit)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	out := msgs[:0]
	for i := range msgs {
		if err := s.open(ctx, &msgs[i]); err != nil {
			return nil, err
		}
		if !msgs[i].Deleted { // expired, or its key is gone
			out = append(out, msgs[i])
		}
	}
	return out, s.annotate(ctx, c.UserID, out)
}

func (s *Service) userExists(ctx context.Context, name string) error {
	_, err := s.ResolveUser(ctx, name)
	return err
}

// Edit replaces the text of the caller's own message, within the edit
// window.
func (s *Service) Edit(ctx context.Context, c Caller, chatID, seq int64, text string) (herald.Message, error) {
	if err := herald.ValidateText(text); err != nil {
		return herald.Message{}, err
	}
	ch, _, now, err := s.editable(ctx, c, chatID, seq)
	if err != nil {
		return herald.Message{}, err
	}
	if err := s.spend(ctx, c, ch, 1); err != nil {
		return herald.Message{}, err
	}
	old, err := s.store.Message(ctx, c.UserID, chatID, seq)
	if err != nil {
		return herald.Message{}, err
	}
	edited := herald.Message{ChatID: chatID, Text: text, SealedUntil: old.SealedUntil}
	if err := s.seal(&edited); err != nil {
		return herald.Message{}, err
	}
	m, ups, err := s.store.EditMessage(ctx, chatID, seq, edited.Body, now)
	if err != nil {
		return m, err
	}
	s.announce(ctx, ups)
	return m, s.open(ctx, &m)
}

// EditFormatted is Edit for a person's composer: the new text comes with
// its formatting, which replaces the old (none removes it), so an edit
// never leaves entities pointing into text that is gone.
func (s *Service) EditFormatted(ctx context.Context, c Caller, chatID, seq int64, text string, ents []herald.Entity) (herald.Message, error) {
	if err := herald.ValidateText(text); err != nil {
		return herald.Message{}, err
	}
	if err := ValidateEntities(ents, text); err != nil {
		return herald.Message{}, err
	}
	if _, _, _, err := s.editable(ctx, c, chatID, seq); err != nil {
		return herald.Message{}, err
	}
	if s.bots != nil {
		extra, err := s.sealExtras(chatID, herald.Extras{Entities: ents})
		if err != nil {
			return herald.Message{}, err
		}
		if err := s.bots.SetExtra(ctx, chatID, seq, extra); err != nil {
			return herald.Message{}, err
		}
	}
	return s.Edit(ctx, c, chatID, seq, text)
}

// editable checks that the caller may edit message seq now.
func (s *Service) editable(ctx context.Context, c Caller, chatID, seq int64) (herald.Chat, herald.Message, time.Time, error) {
	ch, mem, err := s.membership(ctx, c, chatID)
	if err != nil {
		return ch, herald.Message{}, time.Time{}, err
	}
	old, err := s.store.Message(ctx, c.UserID, chatID, seq)
	if err == nil && old.Deleted {
		err = herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	if err != nil {
		return ch, old, time.Time{}, err
	}
	switch {
	case old.Service:
		return ch, old, time.Time{}, herald.Errorf(herald.PermissionDenied, "a service message cannot be edited")
	case ch.Kind == herald.Channel && mem.Role < herald.RoleAdmin:
		return ch, old, time.Time{}, herald.Errorf(herald.PermissionDenied, "only the channel's admins can edit posts")
	case ch.Kind != herald.Channel && old.SenderID != c.UserID:
		return ch, old, time.Time{}, herald.Errorf(herald.PermissionDenied, "only the sender can edit a message")
	}
	now := s.now()
	if now.Sub(old.SentAt) > herald.EditWindow {
		return ch, old, now, herald.Errorf(herald.PermissionDenied, "messages can be edited for %s after sending", herald.EditWindow)
	}
	if !old.ExpiresAt.IsZero() && !old.ExpiresAt.After(now) {
		return ch, old, now, herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
	}
	return ch, old, now, nil
}

// Delete deletes messages for the caller only, or for everyone: allowed
// for the sender, and for a group's owner and admins.
func (s *Service) Delete(ctx context.Context, c Caller, chatID int64, seqs []int64, forEveryone bool) error {
	if len(seqs) == 0 {
		return herald.Errorf(herald.Invalid, "name at least one message to delete")
	}
	if len(seqs) > herald.MaxBatchIDs {
		return herald.Errorf(herald.TooLarge, "at most %d messages can be deleted at once", herald.MaxBatchIDs)
	}
	ch, mem, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		m, err := s.store.Message(ctx, c.UserID, chatID, seq)
		if err == nil && m.Deleted {
			err = herald.Errorf(herald.NotFound, "no message %d in chat %d", seq, chatID)
		}
		if err != nil {
			return err
		}
		if !forEveryone {
			continue
		}
		if ch.Kind == herald.Channel && mem.Role < herald.RoleAdmin {
			return herald.Errorf(herald.PermissionDenied, "only the channel's admins can delete posts")
		}
		if ch.Kind != herald.Channel && m.SenderID != c.UserID && !(ch.Kind == herald.Group && mem.Role >= herald.RoleAdmin) {
			return herald.Errorf(herald.PermissionDenied, "only the sender or a group admin can delete message %d for everyone", seq)
		}
	}
	if forEveryone {
		// Each deletion reaches every member's log, as a message does.
		if err := s.spend(ctx, c, ch, len(seqs)); err != nil {
			return err
		}
	}
	ups, err := s.store.DeleteMessages(ctx, c.UserID, chatID, seqs, forEveryone, s.now())
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	if forEveryone {
		s.notifyWithdraw(chatID, seqs, c.UserID)
		// The body is overwritten in the database file; fold the log in
		// so it does not keep the old page either.
		return s.store.Checkpoint(ctx)
	}
	return nil
}

// Read marks the chat read up to seq (0: everything) and tells the other
// members' devices, so senders see their messages were read.
func (s *Service) Read(ctx context.Context, c Caller, p Peer, seq int64) (int64, error) {
	if seq < 0 {
		return 0, herald.Errorf(herald.Invalid, "max_id is a message id")
	}
	ch, _, err := s.resolve(ctx, c, p, false)
	if err != nil {
		return 0, err
	}
	if seq == 0 || seq > ch.LastSeq {
		seq = ch.LastSeq
	}
	ups, err := s.store.ReadHistory(ctx, c.UserID, ch.ID, seq, s.now())
	if err != nil {
		return 0, err
	}
	if ch.Kind == herald.Channel {
		if err := s.store.ViewPosts(ctx, ch.ID, c.UserID, seq); err != nil {
			return 0, err
		}
	}
	if ch.Kind == herald.Direct {
		if err := s.startCountdowns(ctx, c, ch.ID, seq); err != nil {
			return 0, err
		}
	}
	s.announce(ctx, ups)
	return seq, nil
}

// Typing tells the other members that the caller is typing. Nothing is
// stored. One notice per user and chat goes out every few seconds (a
// client shows it for about twice that); the rest are dropped without an
// error, since a client that repeats itself is not wrong, only eager.
func (s *Service) Typing(ctx context.Context, c Caller, chatID int64) error {
	ch, _, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	if ch.Broadcast {
		return herald.Errorf(herald.Invalid, "typing is not shown in channels")
	}
	if !s.typing.open(c.UserID, chatID) {
		return nil
	}
	members, err := s.store.Members(ctx, chatID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.UserID != c.UserID {
			s.emitTyping(ctx, m.UserID, chatID, c.UserID)
		}
	}
	return nil
}

// State returns the caller's current position in their update log.
func (s *Service) State(ctx context.Context, c Caller) (int64, error) {
	return s.store.Pts(ctx, c.UserID)
}

// Difference returns what the caller's device missed after pts. If it
// missed too much, TooLong is set and Pts is the current position: the
// device reloads its chat list and continues from there.
func (s *Service) Difference(ctx context.Context, c Caller, pts int64, limit int) (herald.Difference, error) {
	if pts < 0 {
		return herald.Difference{}, herald.Errorf(herald.Invalid, "pts is never negative")
	}
	if limit <= 0 || limit > herald.MaxDifferencePage {
		limit = herald.MaxDifferencePage
	}
	cur, err := s.store.Pts(ctx, c.UserID)
	if err != nil {
		return herald.Difference{}, err
	}
	if pts > cur {
		// A device from before a restore, or a confused client: it cannot
		// be ahead of the log, so it must reload.
		return herald.Difference{Pts: cur, TooLong: true}, nil
	}
	if cur-pts > s.gap {
		return herald.Difference{Pts: cur, TooLong: true}, nil
	}
	d, err := s.store.Difference(ctx, c.UserID, pts, limit)
	if err != nil {
		return d, err
	}
	for i := range d.Updates {
		if m := d.Updates[i].Message; m != nil {
			if err := s.open(ctx, m); err != nil {
				return d, err
			}
		}
	}
	return d, s.annotateUpdates(ctx, c.UserID, &d)
}

// startCountdowns starts the timers of the messages the reader has now
// read: each is resealed into the bucket of its real end, and every device
// learns when that is.
func (s *Service) startCountdowns(ctx context.Context, c Caller, chatID, seq int64) error {
	msgs, err := s.store.UnreadTimers(ctx, chatID, c.UserID, seq)
	if err != nil || len(msgs) == 0 {
		return err
	}
	now := s.now()
	start := msgs[:0]
	for i := range msgs {
		m := msgs[i]
		if err := s.open(ctx, &m); err != nil {
			return err
		}
		if m.Deleted {
			continue // expired unread, or its key is gone: nothing to start
		}
		m.Waiting = false
		m.ExpiresAt = now.Add(m.TTL)
		m.SealedUntil = m.ExpiresAt
		if err := s.seal(&m); err != nil {
			return err
		}
		start = append(start, m)
	}
	ups, err := s.store.Reseal(ctx, start, true, now)
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	return nil
}

// sendAllowed applies the per-user send rates for n messages (unless
// already paid) and, in direct chats, the other person's block.
func (s *Service) sendAllowed(ctx context.Context, c Caller, ch herald.Chat, n int, paid bool) error {
	if !paid {
		if err := s.spend(ctx, c, ch, n); err != nil {
			return err
		}
	}
	if ch.Kind != herald.Direct {
		return nil
	}
	members, err := s.store.Members(ctx, ch.ID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.UserID != c.UserID {
			if err := s.blockedBy(ctx, m.UserID, c.UserID, "messages"); err != nil {
				return err
			}
		}
	}
	return nil
}

// spend takes n tokens of the caller's send rate for the chat's kind:
// what sending n messages there costs. Edits and deletes for everyone
// pay it too, since each writes to every member's log as a message does.
func (s *Service) spend(ctx context.Context, c Caller, ch herald.Chat, n int) error {
	if c.Bot {
		// Bots have their own rates (Telegram's), per bot and per chat.
		return s.botRL.take(ctx, c.UserID, ch.ID, n)
	}
	switch ch.Kind {
	case herald.Direct:
		return s.rl.direct.takeN(ctx, key(c.UserID), n)
	case herald.Channel:
		return s.rl.channel.takeN(ctx, key(c.UserID), n)
	}
	return s.rl.group.takeN(ctx, key(c.UserID), n)
}

// ClearHistory deletes every message of a chat the caller can see: for
// them only, or — in a direct chat — for both sides, which removes the
// bodies from the store like a delete for everyone.
func (s *Service) ClearHistory(ctx context.Context, c Caller, p Peer, forEveryone bool) (int, error) {
	ch, _, err := s.resolve(ctx, c, p, false)
	if err != nil {
		return 0, err
	}
	if forEveryone && ch.Kind != herald.Direct {
		return 0, herald.Errorf(herald.PermissionDenied, "history is cleared for both sides only in direct chats")
	}
	if forEveryone {
		// It writes into both sides' logs as a delete for everyone does:
		// one send token, spent before anything is deleted.
		if err := s.spend(ctx, c, ch, 1); err != nil {
			return 0, err
		}
	}
	n := 0
	for {
		msgs, err := s.store.History(ctx, c.UserID, ch.ID, 0, herald.MaxBatchIDs)
		if err != nil {
			return n, err
		}
		if len(msgs) == 0 {
			break
		}
		seqs := make([]int64, len(msgs))
		for i, m := range msgs {
			seqs[i] = m.Seq
		}
		ups, err := s.store.DeleteMessages(ctx, c.UserID, ch.ID, seqs, forEveryone, s.now())
		if err != nil {
			return n, err
		}
		s.announce(ctx, ups)
		n += len(seqs)
	}
	if forEveryone && n > 0 {
		// Deleted bodies must not linger in the write-ahead log either.
		if err := s.store.Checkpoint(ctx); err != nil {
			return n, err
		}
	}
	return n, nil
}
