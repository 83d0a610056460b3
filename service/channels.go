package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"

	"github.com/heraldim/herald"
)

// maxDescription is the length of a channel description, as in Telegram.
const maxDescription = 255

// ChannelParams describe a new channel.
type ChannelParams struct {
	Username    string // the public @name; empty with Private
	Title       string
	Description string
	Private     bool
}

// CreateChannel creates a broadcast channel owned by the caller.
func (s *Service) CreateChannel(ctx context.Context, c Caller, p ChannelParams) (herald.Chat, error) {
	ch := herald.Chat{CreatedBy: c.UserID, CreatedAt: s.now(), Description: strings.TrimSpace(p.Description), Title: strings.TrimSpace(p.Title)}
	if !p.Private {
		ch.Username = herald.NormalizeUsername(p.Username)
		if err := herald.ValidateUsername(ch.Username); err != nil {
			return herald.Chat{}, err
		}
		if ch.Title == "" {
			ch.Title = ch.Username
		}
	} else if ch.Title == "" {
		ch.Title = strings.TrimSpace(strings.TrimPrefix(p.Username, "@"))
	}
	if ch.Title == "" {
		return herald.Chat{}, herald.Errorf(herald.Invalid, "a channel needs a title")
	}
	if err := herald.ValidateName("title", ch.Title, herald.MaxTitleRunes); err != nil {
		return herald.Chat{}, err
	}
	if err := validateDescription(ch.Description); err != nil {
		return herald.Chat{}, err
	}
	if err := s.mayCreate(ctx, c, true); err != nil {
		return herald.Chat{}, err
	}
	if ch.Username != "" {
		// Users and channels share one namespace.
		if _, _, err := s.store.UserByName(ctx, ch.Username); err == nil {
			return herald.Chat{}, herald.Errorf(herald.AlreadyExists, "the name @%s is taken", ch.Username)
		}
	}
	ch, ups, err := s.store.CreateChannel(ctx, ch)
	if err != nil {
		return ch, err
	}
	s.announce(ctx, ups)
	s.follow(ctx, c.UserID, ch, true)
	return ch, nil
}

func validateDescription(d string) error {
	if err := herald.ValidateName("description", strings.NewReplacer("\n", " ", "\t", " ").Replace(d), maxDescription); err != nil {
		return err
	}
	return nil
}

// Join subscribes the caller to a public channel by name, or to any
// channel by a live invite code. Joining twice is not an error.
func (s *Service) Join(ctx context.Context, c Caller, username, invite string) (herald.Chat, error) {
	var ch herald.Chat
	var err error
	switch {
	case username != "" && invite != "":
		return ch, herald.Errorf(herald.Invalid, "join by name or by invite, not both")
	case username != "":
		name := herald.NormalizeUsername(username)
		ch, err = s.store.ChatByName(ctx, name)
		if herald.IsKind(err, herald.NotFound) {
			return ch, herald.Errorf(herald.NotFound, "no channel @%s", name)
		}
	case invite != "":
		var id int64
		if len(invite) > herald.MaxInviteCodeLen {
			return ch, herald.Errorf(herald.NotFound, "the invite is unknown or was revoked")
		}
		if id, err = s.store.ChatInvite(ctx, invite); err == nil {
			ch, err = s.store.Chat(ctx, id)
		}
	default:
		return ch, herald.Errorf(herald.Invalid, "give a channel @name or an invite code")
	}
	if err != nil {
		return ch, err
	}
	if ch.Kind != herald.Channel {
		return ch, herald.Errorf(herald.NotFound, "no channel @%s", herald.NormalizeUsername(username))
	}
	if ch.TakenDown {
		return ch, unavailable(ch)
	}
	if err := s.rl.joins.take(ctx, key(ch.ID)); err != nil {
		return ch, err
	}
	ups, err := s.store.AddMembers(ctx, ch.ID, c.UserID, []int64{c.UserID}, herald.RoleMember, s.now())
	if err != nil {
		return ch, err
	}
	s.announce(ctx, ups)
	if len(ups) > 0 {
		s.follow(ctx, c.UserID, ch, true)
	}
	return s.store.Chat(ctx, ch.ID)
}

func (s *Service) adminOf(ctx context.Context, c Caller, chatID int64) (herald.Chat, error) {
	ch, m, err := s.membership(ctx, c, chatID)
	if err != nil {
		return ch, err
	}
	if ch.Kind != herald.Channel {
		return ch, herald.Errorf(herald.Invalid, "chat %d is not a channel", chatID)
	}
	if m.Role < herald.RoleAdmin {
		return ch, herald.Errorf(herald.PermissionDenied, "only the channel's owner and admins can do that")
	}
	return ch, nil
}

// CreateInvite makes a revocable invite code for a channel; admins only.
func (s *Service) CreateChatInvite(ctx context.Context, c Caller, chatID int64) (string, error) {
	if _, err := s.adminOf(ctx, c, chatID); err != nil {
		return "", err
	}
	if err := s.mayCreate(ctx, c, false); err != nil {
		return "", err
	}
	b := make([]byte, 16)
	rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	return code, s.store.CreateChatInvite(ctx, code, chatID, c.UserID, s.now())
}

// RevokeChatInvite makes an invite code stop working; admins only.
func (s *Service) RevokeChatInvite(ctx context.Context, c Caller, chatID int64, code string) error {
	if _, err := s.adminOf(ctx, c, chatID); err != nil {
		return err
	}
	return s.store.RevokeChatInvite(ctx, chatID, code)
}

// ChatSettings are changes to a channel; nil fields stay as they are.
type ChatSettings struct {
	Title       *string
	Description *string
	Signatures  *bool
}

// SetChat changes a channel's title, description or signatures, or a
// group's title; admins only. A group's members see a service message.
func (s *Service) SetChat(ctx context.Context, c Caller, chatID int64, set ChatSettings) (herald.Chat, error) {
	var ch herald.Chat
	var err error
	if g, m, gerr := s.membership(ctx, c, chatID); gerr == nil && g.Kind == herald.Group {
		switch {
		case m.Role < herald.RoleAdmin:
			return g, herald.Errorf(herald.PermissionDenied, "only the group's owner and admins can change its title")
		case set.Description != nil || set.Signatures != nil:
			return g, herald.Errorf(herald.Invalid, "only channels have a description and signatures")
		}
		ch = g
	} else if ch, err = s.adminOf(ctx, c, chatID); err != nil {
		return ch, err
	}
	old := ch.Title
	if set.Title != nil {
		t := strings.TrimSpace(*set.Title)
		if t == "" {
			return ch, herald.Errorf(herald.Invalid, "a channel needs a title")
		}
		if err := herald.ValidateName("title", t, herald.MaxTitleRunes); err != nil {
			return ch, err
		}
		ch.Title = t
	}
	if set.Description != nil {
		d := strings.TrimSpace(*set.Description)
		if err := validateDescription(d); err != nil {
			return ch, err
		}
		ch.Description = d
	}
	if set.Signatures != nil {
		ch.Signatures = *set.Signatures
	}
	if err := s.store.UpdateChat(ctx, ch); err != nil {
		return ch, err
	}
	s.forgetChat(ctx, ch.ID)
	if set.Title != nil && ch.Title != old {
		s.groupNote(ctx, c, ch, "changed the title to “"+ch.Title+"”")
	}
	return ch, nil
}

// Mute stops (or resumes) pushes of a chat to the caller's devices; the
// chat stays readable and its unread count keeps counting.
func (s *Service) Mute(ctx context.Context, c Caller, p Peer, muted bool) (herald.Chat, error) {
	ch, _, err := s.resolve(ctx, c, p, false)
	if err != nil {
		return ch, err
	}
	if err := s.store.SetMuted(ctx, ch.ID, c.UserID, muted); err != nil {
		return ch, err
	}
	s.follow(ctx, c.UserID, ch, !muted)
	return ch, nil
}

// ChatDifference returns what a member's device missed of a broadcast
// chat's log after pts.
func (s *Service) ChatDifference(ctx context.Context, c Caller, chatID, pts int64, limit int) (herald.Difference, error) {
	if pts < 0 {
		return herald.Difference{}, herald.Errorf(herald.Invalid, "pts is never negative")
	}
	if limit <= 0 || limit > herald.MaxDifferencePage {
		limit = herald.MaxDifferencePage
	}
	ch, _, err := s.membership(ctx, c, chatID)
	if err != nil {
		return herald.Difference{}, err
	}
	if !ch.Broadcast {
		return herald.Difference{}, herald.Errorf(herald.Invalid, "chat %d has no log of its own; use updates.difference", chatID)
	}
	if pts > ch.Pts || ch.Pts-pts > s.gap {
		return herald.Difference{Pts: ch.Pts, TooLong: true}, nil
	}
	d, err := s.store.ChatDifference(ctx, chatID, pts, limit)
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

// FollowedChats lists the broadcast chats whose posts the caller's
// connections receive.
func (s *Service) FollowedChats(ctx context.Context, c Caller) ([]int64, error) {
	return s.store.BroadcastChats(ctx, c.UserID)
}
