package service

import (
	"context"
	"strconv"
	"strings"

	"github.com/heraldim/herald"
)

// Peer names a chat from the caller's side: a chat id, or a username for
// the direct chat with that user.
type Peer struct {
	ChatID   int64
	Username string
}

func (p Peer) String() string {
	if p.Username != "" {
		return "@" + herald.NormalizeUsername(p.Username)
	}
	return "chat " + strconv.FormatInt(p.ChatID, 10)
}

// notFound is the one answer for chats the caller is not in, whether or not
// they exist, so chat ids cannot be probed.
func notFound(chatID int64) error {
	return herald.Errorf(herald.NotFound, "no chat %d", chatID)
}

// membership returns the chat and the caller's membership, or NotFound.
// With preview, a public chat is returned to a non-member too, with a
// zero Member (Role 0), so the caller can read it without joining.
func (s *Service) membership(ctx context.Context, c Caller, chatID int64, preview ...bool) (herald.Chat, herald.Member, error) {
	if chatID <= 0 {
		return herald.Chat{}, herald.Member{}, herald.Errorf(herald.Invalid, "a chat id is a positive number")
	}
	m, err := s.store.Member(ctx, chatID, c.UserID)
	if herald.IsKind(err, herald.NotFound) {
		if len(preview) > 0 && preview[0] {
			if ch, err := s.store.Chat(ctx, chatID); err == nil && ch.Public() {
				if ch.TakenDown {
					return ch, herald.Member{}, unavailable(ch)
				}
				return ch, herald.Member{ChatID: chatID, UserID: c.UserID}, nil
			}
		}
		return herald.Chat{}, m, notFound(chatID)
	}
	if err != nil {
		return herald.Chat{}, m, err
	}
	ch, err := s.store.Chat(ctx, chatID)
	if err != nil {
		return ch, m, err
	}
	if ch.TakenDown {
		return ch, m, unavailable(ch)
	}
	return ch, m, nil
}

// resolve turns a peer into a chat the caller is a member of. With create,
// a direct chat is created on first use. With preview, a public channel is
// returned to non-members too (Role 0).
func (s *Service) resolve(ctx context.Context, c Caller, p Peer, create bool, preview ...bool) (herald.Chat, herald.Member, error) {
	if p.Username == "" {
		return s.membership(ctx, c, p.ChatID, preview...)
	}
	other, err := s.ResolveUser(ctx, p.Username)
	if herald.IsKind(err, herald.NotFound) {
		ch, cerr := s.store.ChatByName(ctx, herald.NormalizeUsername(p.Username))
		if cerr != nil {
			if herald.IsKind(cerr, herald.NotFound) {
				return herald.Chat{}, herald.Member{}, herald.Errorf(herald.NotFound, "no user or channel @%s", herald.NormalizeUsername(p.Username))
			}
			return herald.Chat{}, herald.Member{}, cerr
		}
		return s.membership(ctx, c, ch.ID, preview...)
	}
	if err != nil {
		return herald.Chat{}, herald.Member{}, err
	}
	ch, err := s.directChat(ctx, c, other, create)
	if err != nil {
		return ch, herald.Member{}, err
	}
	m, err := s.store.Member(ctx, ch.ID, c.UserID)
	return ch, m, err
}

// resolveToWrite is resolve for a write of n messages that may start a
// direct chat (a first message, forward or timer). A chat that does not
// exist yet is created only after the n send tokens are spent, so a
// sender over its rate creates no chat, memberships or updates. paid says
// the tokens were spent here; the caller then does not spend them again.
// (A bot's first write to a user pays into its bucket for chat 0.)
func (s *Service) resolveToWrite(ctx context.Context, c Caller, p Peer, n int, preview ...bool) (herald.Chat, herald.Member, bool, error) {
	ch, m, err := s.resolve(ctx, c, p, false, preview...)
	if err == nil || p.Username == "" || !herald.IsKind(err, herald.NotFound) {
		return ch, m, false, err
	}
	if _, uerr := s.ResolveUser(ctx, p.Username); uerr != nil {
		return ch, m, false, err // no such user: the chat's own answer
	}
	if err := s.spend(ctx, c, herald.Chat{Kind: herald.Direct}, n); err != nil {
		return ch, m, false, err
	}
	ch, m, err = s.resolve(ctx, c, p, true, preview...)
	return ch, m, true, err
}

// directChat finds or creates the direct chat with other. A new account
// may start only so many conversations a day: the usual shape of spam is
// a fresh account writing to strangers.
func (s *Service) directChat(ctx context.Context, c Caller, other herald.User, create bool) (herald.Chat, error) {
	ch, _, err := s.store.DirectChat(ctx, c.UserID, other.ID, false, s.now())
	if err == nil || !create || !herald.IsKind(err, herald.NotFound) {
		return ch, err
	}
	if err := s.blockedBy(ctx, other.ID, c.UserID, "messages"); err != nil {
		return ch, err
	}
	me, err := s.user(ctx, c.UserID)
	if err != nil {
		return ch, err
	}
	if s.now().Sub(me.CreatedAt) < s.rl.newAge {
		if err := s.rl.newChats.take(ctx, key(c.UserID)); err != nil {
			return ch, err
		}
	}
	ch, ups, err := s.store.DirectChat(ctx, c.UserID, other.ID, true, s.now())
	if err != nil {
		return ch, err
	}
	s.announce(ctx, ups)
	return ch, nil
}

// ChatInfo is a chat with the caller's view of it.
type ChatInfo struct {
	Chat    herald.Chat
	Role    herald.Role // 0 when previewing a public chat without being in it
	Muted   bool
	Peer    *herald.User
	Members []herald.Member // groups only
}

// GetChat returns a chat the caller is in.
func (s *Service) GetChat(ctx context.Context, c Caller, p Peer) (ChatInfo, error) {
	ch, m, err := s.resolve(ctx, c, p, false, true)
	if err != nil {
		return ChatInfo{}, err
	}
	info := ChatInfo{Chat: ch, Role: m.Role, Muted: m.Muted}
	if ch.Kind == herald.Channel && m.Role < herald.RoleAdmin {
		return info, nil // subscribers do not see each other
	}
	members, err := s.store.Members(ctx, ch.ID)
	if err != nil {
		return info, err
	}
	if ch.Kind == herald.Direct {
		for _, mm := range members {
			if mm.UserID != c.UserID {
				u, err := s.user(ctx, mm.UserID)
				if err == nil {
					info.Peer = &u
				}
			}
		}
	} else {
		info.Members = members
	}
	return info, nil
}

// Dialogs returns a page of up to limit lines of the caller's chat list
// after the cursor (0 or too many: herald.MaxChatsPage), and the cursor
// of the next page, zero after the last. A list of any length costs each
// call the same.
func (s *Service) Dialogs(ctx context.Context, c Caller, after herald.DialogCursor, limit int) ([]herald.Dialog, herald.DialogCursor, error) {
	if limit < 0 || after.ChatID < 0 {
		return nil, herald.DialogCursor{}, herald.Errorf(herald.Invalid, "limit and offset are never negative")
	}
	if limit == 0 || limit > herald.MaxChatsPage {
		limit = herald.MaxChatsPage
	}
	// One line more than asked says whether there is a next page.
	ds, err := s.store.Dialogs(ctx, c.UserID, after, limit+1)
	if err != nil {
		return nil, herald.DialogCursor{}, err
	}
	var next herald.DialogCursor
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[limit-1]
		next = herald.DialogCursor{At: last.Active, ChatID: last.Chat.ID}
	}
	var mentioned map[int64]int
	if s.annot != nil {
		if mentioned, err = s.annot.UnreadMentions(ctx, c.UserID); err != nil {
			return nil, next, err
		}
	}
	for i := range ds {
		ds[i].UnreadMentions = mentioned[ds[i].Chat.ID]
		if ds[i].Last != nil {
			if err := s.open(ctx, ds[i].Last); err != nil {
				return nil, next, err
			}
		}
	}
	return ds, next, nil
}

// allDialogs reads a user's whole chat list, page by page.
func (s *Service) allDialogs(ctx context.Context, userID int64) ([]herald.Dialog, error) {
	var out []herald.Dialog
	var after herald.DialogCursor
	for {
		ds, err := s.store.Dialogs(ctx, userID, after, herald.MaxChatsPage)
		if err != nil {
			return out, err
		}
		out = append(out, ds...)
		if len(ds) < herald.MaxChatsPage {
			return out, nil
		}
		last := ds[len(ds)-1]
		after = herald.DialogCursor{At: last.Active, ChatID: last.Chat.ID}
	}
}

func (s *Service) usersByName(ctx context.Context, names []string) ([]int64, error) {
	if len(names) > herald.MaxNewMembers {
		return nil, herald.Errorf(herald.TooLarge, "at most %d users at a time", herald.MaxNewMembers)
	}
	ids := make([]int64, 0, len(names))
	seen := map[int64]bool{}
	for _, n := range names {
		u, err := s.ResolveUser(ctx, n)
		if err != nil {
			return nil, err
		}
		if !seen[u.ID] {
			seen[u.ID] = true
			ids = append(ids, u.ID)
		}
	}
	return ids, nil
}

// mayCreate spends one of the caller's creations, before the work, and
// for a new group or channel checks how many they own already: rows that
// cost nothing to make are what a script makes by the thousand.
func (s *Service) mayCreate(ctx context.Context, c Caller, chat bool) error {
	if err := s.rl.creates.take(ctx, key(c.UserID)); err != nil {
		return err
	}
	if !chat {
		return nil
	}
	n, err := s.store.OwnedChats(ctx, c.UserID)
	if err != nil {
		return err
	}
	if n >= s.rl.maxOwned {
		return herald.Errorf(herald.PermissionDenied, "you own %d groups and channels, the most one person may; delete or hand one over first", n)
	}
	return nil
}

// CreateGroup creates a group owned by the caller with the named members.
func (s *Service) CreateGroup(ctx context.Context, c Caller, title string, members []string) (herald.Chat, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return herald.Chat{}, herald.Errorf(herald.Invalid, "a group needs a title")
	}
	if err := herald.ValidateName("title", title, herald.MaxTitleRunes); err != nil {
		return herald.Chat{}, err
	}
	if err := s.mayCreate(ctx, c, true); err != nil {
		return herald.Chat{}, err
	}
	ids, err := s.usersByName(ctx, members)
	if err != nil {
		return herald.Chat{}, err
	}
	others := ids[:0]
	for _, id := range ids {
		if id != c.UserID {
			if err := s.blockedBy(ctx, id, c.UserID, "group invitations"); err != nil {
				return herald.Chat{}, err
			}
			others = append(others, id)
		}
	}
	ch, ups, err := s.store.CreateGroup(ctx, herald.Chat{Title: title, CreatedBy: c.UserID, CreatedAt: s.now()}, others)
	if err != nil {
		return ch, err
	}
	s.announce(ctx, ups)
	return ch, nil
}

// AddMembers adds users to a group; owners and admins only.
func (s *Service) AddMembers(ctx context.Context, c Caller, chatID int64, usernames []string) error {
	ch, m, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	if ch.Kind == herald.Direct {
		return herald.Errorf(herald.Invalid, "members can only be added to groups and channels")
	}
	if m.Role < herald.RoleAdmin {
		return herald.Errorf(herald.PermissionDenied, "only the owner and admins can add members")
	}
	ids, err := s.usersByName(ctx, usernames)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.blockedBy(ctx, id, c.UserID, "invitations"); err != nil {
			return err
		}
	}
	// Each call writes to every member's log: spent before any of it.
	if err := s.rl.members.take(ctx, key(c.UserID)); err != nil {
		return err
	}
	if ch.Kind == herald.Group && ch.MemberCount+len(ids) > herald.MaxGroupMembers {
		return herald.Errorf(herald.TooLarge, "a group has at most %d members", herald.MaxGroupMembers)
	}
	if ch.Kind == herald.Group && !ch.Broadcast && ch.MemberCount+len(ids) > s.large {
		// Past this size, copying every message into every member's log
		// costs more than the message; the group fans out on read instead.
		ups, err := s.store.MakeBroadcast(ctx, chatID, s.now())
		if err != nil {
			return err
		}
		s.announce(ctx, ups)
		ch.Broadcast = true
		for _, u := range ups {
			s.follow(ctx, u.UserID, ch, true)
		}
	}
	ups, err := s.store.AddMembers(ctx, chatID, c.UserID, ids, herald.RoleMember, s.now())
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	var added []int64
	for _, u := range ups {
		if u.Kind == herald.UpdChatJoined {
			s.follow(ctx, u.UserID, ch, true)
			added = append(added, u.UserID)
		}
	}
	if len(added) > 0 {
		s.groupNote(ctx, c, ch, "added "+s.atNames(ctx, added))
	}
	return nil
}

// RemoveMembers removes users from a group. The owner may remove anyone
// else; admins may remove plain members.
func (s *Service) RemoveMembers(ctx context.Context, c Caller, chatID int64, usernames []string) error {
	ch, m, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	if ch.Kind == herald.Direct {
		return herald.Errorf(herald.Invalid, "members can only be removed from groups and channels")
	}
	if m.Role < herald.RoleAdmin {
		return herald.Errorf(herald.PermissionDenied, "only the owner and admins can remove members")
	}
	ids, err := s.usersByName(ctx, usernames)
	if err != nil {
		return err
	}
	for _, id := range ids {
		target, err := s.store.Member(ctx, chatID, id)
		if herald.IsKind(err, herald.NotFound) {
			name := s.UserNames(ctx, id)[id]
			return herald.Errorf(herald.NotFound, "@%s is not a member of this chat", name)
		}
		if err != nil {
			return err
		}
		if id == c.UserID {
			return herald.Errorf(herald.Invalid, "use leave to leave a chat")
		}
		if target.Role >= m.Role {
			return herald.Errorf(herald.PermissionDenied, "you cannot remove a member whose role is %s", target.Role)
		}
	}
	if err := s.rl.members.take(ctx, key(c.UserID)); err != nil {
		return err
	}
	// One write for the whole call: each member who stays hears of it once.
	ups, err := s.store.RemoveMembers(ctx, chatID, c.UserID, ids, s.now())
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	for _, id := range ids {
		s.follow(ctx, id, ch, false)
	}
	s.groupNote(ctx, c, ch, "removed "+s.atNames(ctx, ids))
	return nil
}

// SetRole makes a group member an admin or a plain member; owner only.
func (s *Service) SetRole(ctx context.Context, c Caller, chatID int64, username string, admin bool) error {
	ch, m, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	if ch.Kind == herald.Direct {
		return herald.Errorf(herald.Invalid, "only groups and channels have admins")
	}
	if m.Role != herald.RoleOwner {
		return herald.Errorf(herald.PermissionDenied, "only the owner can change roles")
	}
	u, err := s.ResolveUser(ctx, username)
	if err != nil {
		return err
	}
	if u.ID == c.UserID {
		return herald.Errorf(herald.Invalid, "the owner's role cannot change")
	}
	if err := s.rl.members.take(ctx, key(c.UserID)); err != nil {
		return err
	}
	role := herald.RoleMember
	if admin {
		role = herald.RoleAdmin
	}
	ups, err := s.store.SetRole(ctx, chatID, c.UserID, u.ID, role, s.now())
	if herald.IsKind(err, herald.NotFound) && admin && ch.Kind == herald.Channel {
		// Making someone a channel admin subscribes them.
		if ups, err = s.store.AddMembers(ctx, chatID, c.UserID, []int64{u.ID}, herald.RoleAdmin, s.now()); err == nil {
			s.announce(ctx, ups)
			s.follow(ctx, u.ID, ch, true)
			return nil
		}
	}
	if herald.IsKind(err, herald.NotFound) {
		return herald.Errorf(herald.NotFound, "@%s is not a member of this chat", u.Username)
	}
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	return nil
}

// Leave removes the caller from a group.
func (s *Service) Leave(ctx context.Context, c Caller, chatID int64) error {
	ch, m, err := s.membership(ctx, c, chatID)
	if err != nil {
		return err
	}
	if ch.Kind == herald.Direct {
		return herald.Errorf(herald.Invalid, "you can only leave groups and channels")
	}
	if m.Role == herald.RoleOwner {
		// A group is never left without an owner: the longest-standing
		// admin takes over, else the longest-standing member.
		if err := s.handOver(ctx, chatID, c.UserID); err != nil {
			return err
		}
	}
	ups, err := s.store.RemoveMembers(ctx, chatID, c.UserID, []int64{c.UserID}, s.now())
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	s.follow(ctx, c.UserID, ch, false)
	s.groupNote(ctx, c, ch, "left")
	return nil
}

func (s *Service) handOver(ctx context.Context, chatID, owner int64) error {
	members, err := s.store.Members(ctx, chatID)
	if err != nil {
		return err
	}
	var next *herald.Member
	for i := range members {
		m := &members[i]
		if m.UserID == owner {
			continue
		}
		if next == nil || m.Role > next.Role || (m.Role == next.Role && m.JoinedAt.Before(next.JoinedAt)) {
			next = m
		}
	}
	if next == nil {
		return nil
	}
	ups, err := s.store.SetRole(ctx, chatID, owner, next.UserID, herald.RoleOwner, s.now())
	if err != nil {
		return err
	}
	s.announce(ctx, ups)
	return nil
}
