package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/signalerror"
)

// Secret groups (docs/SECRET.md): each device has a sender key per
// group (libsignal's groups package), distributed to every other member
// device over the pairwise Signal sessions of secret chats; a message is
// encrypted once and the server copies the one ciphertext to every member
// device. Each device keeps its own view of the membership, changed only
// by what an admin (or a member leaving) says over a pairwise session,
// and refuses messages from anyone not in it.

// GroupChatID is the id of secret group id, as the CLI takes it wherever
// it takes @user and as messages carry it in chat.
func GroupChatID(id int64) string { return "sg-" + strconv.FormatInt(id, 10) }

// ParseGroupChatID returns the group of a GroupChatID, and false for
// anything else (a username never has a '-').
func ParseGroupChatID(s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, "sg-")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// GroupMember is a member of a secret group as this device knows it.
// Membership messages carry ids (and admin flags) only, so that a list of
// 1,000 fits one envelope; usernames are for display and come from the
// server's list.
type GroupMember struct {
	ID       int64  `json:"i"`
	Username string `json:"n,omitempty"`
	Admin    bool   `json:"a,omitempty"`
}

// groupInfo is a secret group as this device keeps it.
type groupInfo struct {
	ID      int64         `json:"id"`
	Title   string        `json:"title"`
	Members []GroupMember `json:"members"`
	// Version counts the membership changes this device accepted; a
	// change is accepted only with a higher one, so none is replayed.
	Version int64 `json:"version"`
	// Sent lists, by user, the devices that have this device's current
	// sender key.
	Sent map[int64][]int64 `json:"sent"`
	// Rotate says a member or a device left: a new sender key is made
	// before the next message, so they cannot read it.
	Rotate bool `json:"rotate,omitempty"`
	Left   bool `json:"left,omitempty"` // this user was removed or left
	// Held are group envelopes that came before their sender's key.
	Held []*pb.Envelope `json:"held,omitempty"`
}

func (g *groupInfo) member(id int64) *GroupMember {
	for i := range g.Members {
		if g.Members[i].ID == id {
			return &g.Members[i]
		}
	}
	return nil
}

// groupPayload is what travels pairwise about a group, inside a payload.
type groupPayload struct {
	ID      int64         `json:"id"`
	Title   string        `json:"t,omitempty"`
	Members []GroupMember `json:"m,omitempty"`
	Version int64         `json:"v"`
	Change  string        `json:"c,omitempty"` // create, add, remove, leave
	Target  int64         `json:"u,omitempty"` // the member added or removed
	// TargetName is the target's username, for the event shown.
	TargetName string `json:"tn,omitempty"`
	Key        []byte `json:"k,omitempty"` // a sender key distribution message
}

func groupKey(id int64) string { return "sgroup/" + strconv.FormatInt(id, 10) }

func (s *Secret) loadGroup(id int64) (*groupInfo, error) {
	b, ok, err := s.kv.Get(groupKey(id))
	if err != nil || !ok {
		return nil, err
	}
	var g groupInfo
	return &g, json.Unmarshal(b, &g)
}

func (s *Secret) saveGroup(g *groupInfo) error {
	b, _ := json.Marshal(g)
	return s.kv.Put(groupKey(g.ID), b)
}

func (s *Secret) senderKeyName(group, user, device int64) *protocol.SenderKeyName {
	return protocol.NewSenderKeyName(GroupChatID(group), protocol.NewSignalAddress(strconv.FormatInt(user, 10), uint32(device)))
}

func (s *Secret) groupBuilder() *groups.SessionBuilder {
	return groups.NewGroupSessionBuilder(s.sig, s.sig.ser)
}

// CreateGroup makes a secret group of this user (its admin) and the users
// named, tells every member's devices over pairwise sessions who is in it
// and what it is called, and returns its id (GroupChatID). The title
// never reaches the server.
func (s *Secret) CreateGroup(ctx context.Context, title string, usernames []string) (string, error) {
	if title == "" {
		return "", herald.Errorf(herald.Invalid, "a secret group needs a title")
	}
	if err := herald.ValidateName("title", title, herald.MaxTitleRunes); err != nil {
		return "", err
	}
	var info pb.SecretGroupInfo
	if err := s.c.Call(ctx, "secret.group.create", &pb.SecretGroupCreateRequest{Usernames: usernames}, &info); err != nil {
		return "", err
	}
	g := &groupInfo{ID: info.Id, Title: title, Version: 1, Sent: map[int64][]int64{}}
	for _, m := range info.Members {
		g.Members = append(g.Members, GroupMember{ID: m.UserId, Username: m.Username, Admin: m.Admin})
	}
	if err := s.withLock(ctx, func() error { return s.saveGroup(g) }); err != nil {
		return "", err
	}
	me, _ := s.c.Self()
	self, err := s.selfName(ctx)
	if err != nil {
		return "", err
	}
	if err := s.tellMembers(ctx, g, groupPayload{ID: g.ID, Title: title, Members: g.Members, Version: g.Version, Change: "create", Target: me, TargetName: self}, nil); err != nil {
		return "", err
	}
	return GroupChatID(g.ID), nil
}

// knownGroup returns the group as this device keeps it, fetching what
// is queued first if the device does not know it yet (a program that was
// not running when the group was made). Nil if it still does not.
func (s *Secret) knownGroup(ctx context.Context, id int64) (*groupInfo, error) {
	var g *groupInfo
	if err := s.withLock(ctx, func() (err error) { g, err = s.loadGroup(id); return }); err != nil || g != nil {
		return g, err
	}
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	err := s.withLock(ctx, func() (err error) { g, err = s.loadGroup(id); return })
	return g, err
}

// fillNames gives the members this device knows only by id their
// usernames, from the server's list: names are for display and for
// addressing pairwise messages; who is a member is this device's own
// view, by id. g is updated and saved.
func (s *Secret) fillNames(ctx context.Context, g *groupInfo) error {
	if !slices.ContainsFunc(g.Members, func(m GroupMember) bool { return m.Username == "" }) {
		return nil
	}
	var info pb.SecretGroupInfo
	if err := s.c.Call(ctx, "secret.group.get", &pb.SecretGroupRequest{GroupId: g.ID}, &info); err != nil {
		return err
	}
	names := map[int64]string{}
	for _, m := range info.Members {
		names[m.UserId] = m.Username
	}
	return s.withLock(ctx, func() error {
		cur, err := s.loadGroup(g.ID)
		if err != nil || cur == nil {
			return err
		}
		for i := range cur.Members {
			if cur.Members[i].Username == "" {
				cur.Members[i].Username = names[cur.Members[i].ID]
			}
		}
		g.Members = cur.Members
		return s.saveGroup(cur)
	})
}

func (s *Secret) withLock(ctx context.Context, f func() error) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

// tellMembers sends a group payload pairwise to every member (and extra
// users, such as one just removed), which also reaches this user's other
// devices.
func (s *Secret) tellMembers(ctx context.Context, g *groupInfo, gp groupPayload, extra []GroupMember) error {
	me, _ := s.c.Self()
	kind := "gs"
	if gp.Key != nil {
		kind = "gk"
	}
	if err := s.fillNames(ctx, g); err != nil {
		return err
	}
	to := append(slices.Clone(g.Members), extra...)
	if len(to) == 1 && to[0].ID == me {
		return nil
	}
	gp.Members = slices.Clone(gp.Members)
	for i := range gp.Members {
		gp.Members[i].Username = ""
	}
	for _, m := range to {
		if m.ID == me {
			continue
		}
		if err := s.sendPairwise(ctx, m, kind, gp); err != nil {
			return err
		}
	}
	return nil
}

func (s *Secret) sendPairwise(ctx context.Context, m GroupMember, kind string, gp groupPayload) error {
	u, _, _, err := s.start(ctx, m.Username, false)
	if err != nil {
		return err
	}
	p := payload{V: 1, Kind: kind, ID: randomID(), Peer: u.Id, Name: u.Username, Sent: s.opts.Now().UnixMilli(), Group: &gp}
	_, err = s.fanOut(ctx, u, p, 0, nil)
	return err
}

// groupChange asks the server for a membership change and tells every
// member (and the one removed) what changed and who changed it.
func (s *Secret) groupChange(ctx context.Context, chat, change, username string) error {
	id, ok := ParseGroupChatID(chat)
	if !ok {
		return herald.Errorf(herald.Invalid, "%q is not a secret group id (sg-N)", chat)
	}
	g, err := s.knownGroup(ctx, id)
	if err != nil {
		return err
	}
	if g == nil || g.Left {
		return herald.Errorf(herald.NotFound, "no secret group %s on this device", chat)
	}
	// Names first: after a leave the server no longer answers.
	if err := s.fillNames(ctx, g); err != nil {
		return err
	}
	me, _ := s.c.Self()
	var info pb.SecretGroupInfo
	switch change {
	case "add":
		err = s.c.Call(ctx, "secret.group.add", &pb.SecretGroupChangeRequest{GroupId: id, Username: username}, &info)
	case "remove":
		err = s.c.Call(ctx, "secret.group.remove", &pb.SecretGroupChangeRequest{GroupId: id, Username: username}, &info)
	case "leave":
		err = s.c.Call(ctx, "secret.group.leave", &pb.SecretGroupRequest{GroupId: id}, &info)
	}
	if err != nil {
		return err
	}
	var target GroupMember
	var extra []GroupMember
	switch change {
	case "add":
		u, err := s.resolve(ctx, username)
		if err != nil {
			return err
		}
		target = GroupMember{ID: u.Id, Username: u.Username}
	case "remove":
		u, err := s.resolve(ctx, username)
		if err != nil {
			return err
		}
		target = GroupMember{ID: u.Id, Username: u.Username}
		extra = []GroupMember{target}
	case "leave":
		self, _ := s.selfName(ctx)
		target = GroupMember{ID: me, Username: self}
	}
	// This device's view changes as every other device's will.
	var gp groupPayload
	err = s.withLock(ctx, func() error {
		g, err := s.loadGroup(id)
		if err != nil {
			return err
		}
		members := slices.DeleteFunc(slices.Clone(g.Members), func(m GroupMember) bool { return m.ID == target.ID })
		if change == "add" {
			members = append(members, target)
		}
		gp = groupPayload{ID: id, Title: g.Title, Members: members, Version: g.Version + 1, Change: change, Target: target.ID, TargetName: target.Username}
		if change == "leave" {
			extra = g.Members // tell everyone, from the old list
		}
		self, _ := s.selfName(ctx)
		m, err := s.applyGroup(ctx, g, me, self, gp)
		if err != nil || m == nil {
			return err
		}
		return s.putMessage(m)
	})
	if err != nil {
		return err
	}
	if change == "leave" {
		g.Members = nil
	}
	return s.tellMembers(ctx, &groupInfo{ID: id, Members: gp.Members}, gp, extra)
}

// GroupAdd adds @username to secret group chat (admins only): every
// member's devices learn who added whom, and the new member's devices get
// messages from now on, never the history.
func (s *Secret) GroupAdd(ctx context.Context, chat, username string) error {
	return s.groupChange(ctx, chat, "add", username)
}

// GroupRemove removes @username from secret group chat (admins only).
// Every device makes a new sender key before its next message, so the
// removed member's devices cannot read anything sent after.
func (s *Secret) GroupRemove(ctx context.Context, chat, username string) error {
	return s.groupChange(ctx, chat, "remove", username)
}

// GroupLeave takes this user out of secret group chat.
func (s *Secret) GroupLeave(ctx context.Context, chat string) error {
	return s.groupChange(ctx, chat, "leave", "")
}

// Group returns the members of secret group chat as this device knows
// them, and its title.
func (s *Secret) Group(ctx context.Context, chat string) (string, []GroupMember, error) {
	id, ok := ParseGroupChatID(chat)
	if !ok {
		return "", nil, herald.Errorf(herald.Invalid, "%q is not a secret group id (sg-N)", chat)
	}
	var g *groupInfo
	if err := s.withLock(ctx, func() (err error) { g, err = s.loadGroup(id); return }); err != nil {
		return "", nil, err
	}
	if g == nil {
		return "", nil, herald.Errorf(herald.NotFound, "no secret group %s on this device", chat)
	}
	if !g.Left {
		if err := s.fillNames(ctx, g); err != nil {
			return "", nil, err
		}
	}
	return g.Title, g.Members, nil
}

// applyGroup applies a membership change from user `from` to g (nil if
// this device does not know the group) if from may make it: an admin in
// this device's view, or a member leaving. A new group is accepted from
// the admin who made it or added this user. It returns the event message
// to show, nil for a change refused or seen before. The store is locked.
func (s *Secret) applyGroup(ctx context.Context, g *groupInfo, from int64, fromName string, gp groupPayload) (*SecretMessage, error) {
	me, _ := s.c.Self()
	if g == nil {
		if gp.Change != "create" && gp.Change != "add" {
			return nil, herald.Errorf(herald.PermissionDenied, "a change to secret group %s, which this device does not know, was refused", GroupChatID(gp.ID))
		}
		if len(gp.Members) > herald.MaxSecretGroupMembers {
			return nil, herald.Errorf(herald.TooLarge, "a secret group has at most %d members", herald.MaxSecretGroupMembers)
		}
		g = &groupInfo{ID: gp.ID, Members: gp.Members, Sent: map[int64][]int64{}}
		if a := g.member(from); a == nil || !a.Admin || g.member(me) == nil {
			return nil, herald.Errorf(herald.PermissionDenied, "secret group %s from someone who is not its admin was refused", GroupChatID(gp.ID))
		}
		g.Members = nil
	} else if gp.Version <= g.Version {
		return nil, nil // seen before (a copy for another member, or a replay)
	}
	if len(g.Members) > 0 {
		a := g.member(from)
		leaving := gp.Change == "leave" && gp.Target == from
		if a == nil || (!a.Admin && !leaving) {
			return nil, herald.Errorf(herald.PermissionDenied, "a change to secret group %s by someone who is not its admin was refused", GroupChatID(gp.ID))
		}
		if leaving && (g.member(from) == nil || slices.ContainsFunc(gp.Members, func(m GroupMember) bool { return m.ID == from })) {
			return nil, herald.Errorf(herald.PermissionDenied, "a malformed leave of secret group %s was refused", GroupChatID(gp.ID))
		}
		if leaving {
			// A member leaving changes nothing else.
			gp.Members = slices.DeleteFunc(slices.Clone(g.Members), func(m GroupMember) bool { return m.ID == from })
		}
	}
	// Who is gone: their keys are forgotten and this device's own key is
	// replaced before it next sends.
	for _, m := range g.Members {
		if !slices.ContainsFunc(gp.Members, func(n GroupMember) bool { return n.ID == m.ID }) {
			g.Rotate = true
			delete(g.Sent, m.ID)
			keys, _ := s.kv.Keys("senderkey/" + GroupChatID(g.ID) + "/" + strconv.FormatInt(m.ID, 10) + ".")
			for _, k := range keys {
				s.kv.Delete(k)
			}
		}
	}
	byName := map[int64]string{}
	for _, m := range append(slices.Clone(g.Members), gp.Members...) {
		if m.Username != "" {
			byName[m.ID] = m.Username
		}
	}
	if gp.TargetName != "" && byName[gp.Target] == "" {
		byName[gp.Target] = gp.TargetName
	}
	if fromName != "" {
		byName[from] = fromName
	}
	g.Members, g.Version = slices.Clone(gp.Members), gp.Version
	for i := range g.Members {
		g.Members[i].Username = byName[g.Members[i].ID]
	}
	if gp.Title != "" {
		g.Title = gp.Title
	}
	if g.member(me) == nil {
		g.Left, g.Held, g.Sent = true, nil, map[int64][]int64{}
		_, did := s.c.Self()
		s.sig.deleteSenderKey(s.senderKeyName(g.ID, me, did))
	}
	if err := s.saveGroup(g); err != nil {
		return nil, err
	}
	text := ""
	switch gp.Change {
	case "create":
		text = fmt.Sprintf("created the group %q", g.Title)
	case "add":
		text = "added @" + byName[gp.Target]
	case "remove":
		text = "removed @" + byName[gp.Target]
	case "leave":
		text = "left the group"
	}
	return &SecretMessage{
		ID: fmt.Sprintf("event-%d-%d", g.ID, gp.Version), ChatID: GroupChatID(g.ID), PeerID: -g.ID, GroupID: g.ID,
		Outgoing: from == me, FromID: from, From: byName[from], Text: text, Event: gp.Change, SentAt: s.opts.Now().UTC(),
	}, nil
}

// openGroupPayload handles a pairwise payload about a group: a membership
// change or a sender key. The store is locked.
func (s *Secret) openGroupPayload(ctx context.Context, e *pb.Envelope, p payload) (*SecretEvent, error) {
	gp := p.Group
	if gp == nil || gp.ID <= 0 {
		return nil, herald.Errorf(herald.Invalid, "a secret group message from @%s is malformed", e.SenderUsername)
	}
	g, err := s.loadGroup(gp.ID)
	if err != nil {
		return nil, err
	}
	switch p.Kind {
	case "gs":
		m, err := s.applyGroup(ctx, g, e.SenderId, e.SenderUsername, *gp)
		if err != nil || m == nil {
			return nil, err
		}
		// Shown when the admin made the change, in order with the messages.
		m.SentAt = time.UnixMilli(p.Sent).UTC()
		if err := s.putMessage(m); err != nil {
			return nil, err
		}
		return &SecretEvent{Message: m, Peer: m.PeerID}, nil
	case "gq":
		// A member's device lacks this device's key (its distribution was
		// lost): it goes to that member's devices again with the next
		// message. Those that have it ignore it.
		if g == nil || g.Left || g.member(e.SenderId) == nil {
			return nil, nil
		}
		delete(g.Sent, e.SenderId)
		return nil, s.saveGroup(g)
	case "gk":
		if g == nil || g.Left || g.member(e.SenderId) == nil {
			return nil, herald.Errorf(herald.PermissionDenied, "a sender key for secret group %s from @%s, who is not a member on this device, was refused", GroupChatID(gp.ID), e.SenderUsername)
		}
		skdm, err := protocol.NewSenderKeyDistributionMessageFromBytes(gp.Key, s.sig.ser.SenderKeyDistributionMessage)
		if err != nil {
			return nil, herald.Errorf(herald.Invalid, "a sender key from @%s is malformed", e.SenderUsername)
		}
		name := s.senderKeyName(gp.ID, e.SenderId, e.SenderDevice)
		rec, err := s.sig.LoadSenderKey(ctx, name)
		if err != nil {
			return nil, err
		}
		// A key this device has is not taken again: its chain would go
		// back to an earlier message, which could then be replayed.
		if _, err := rec.GetSenderKeyStateByID(skdm.ID()); err == nil {
			return nil, nil
		}
		if err := s.groupBuilder().Process(ctx, name, skdm); err != nil {
			return nil, err
		}
		// Messages that came before the key can be read now.
		held := g.Held
		g.Held = nil
		if err := s.saveGroup(g); err != nil {
			return nil, err
		}
		var last *SecretEvent
		for _, h := range held {
			if h.SenderId != e.SenderId || h.SenderDevice != e.SenderDevice {
				g.Held = append(g.Held, h)
				continue
			}
			ev, err := s.openGroup(ctx, h)
			if err != nil {
				s.emit(SecretEvent{Err: err, Peer: -gp.ID})
				continue
			}
			if ev != nil {
				if last != nil {
					s.emit(*last)
				}
				last = ev
			}
		}
		if len(g.Held) > 0 {
			if g2, err := s.loadGroup(gp.ID); err == nil && g2 != nil {
				g2.Held = append(g2.Held, g.Held...)
				s.saveGroup(g2)
			}
		}
		return last, nil
	}
	return nil, nil
}

// keyAsk is a request for a member's sender key, sent once the store is
// unlocked.
type keyAsk struct {
	group  int64
	member GroupMember
}

// askForKeys sends the requests for sender keys that opening envelopes
// found missing, at most one per group and member at a time.
func (s *Secret) askForKeys(ctx context.Context) {
	s.mu.Lock()
	asks := s.asks
	s.asks = nil
	s.mu.Unlock()
	if s.sig.id == nil {
		return // not initialised (Init): no pairwise session to ask over
	}
	me, _ := s.c.Self()
	done := map[keyAsk]bool{}
	for _, a := range asks {
		if done[a] || a.member.ID == me {
			continue
		}
		done[a] = true
		s.sendPairwise(ctx, a.member, "gq", groupPayload{ID: a.group})
	}
}

// maxHeld bounds the group envelopes kept waiting for their sender's key.
const maxHeld = 200

// openGroup decrypts a sender-key envelope of a group. The store is locked.
func (s *Secret) openGroup(ctx context.Context, e *pb.Envelope) (*SecretEvent, error) {
	me, _ := s.c.Self()
	g, err := s.loadGroup(e.GroupId)
	if err != nil {
		return nil, err
	}
	chat := GroupChatID(e.GroupId)
	if g == nil || g.Left {
		return nil, herald.Errorf(herald.PermissionDenied, "a message in secret group %s, which this device is not in, was refused", chat)
	}
	from := g.member(e.SenderId)
	if from == nil {
		return nil, herald.Errorf(herald.PermissionDenied, "a message in secret group %s from @%s, who is not a member on this device, was refused", chat, e.SenderUsername)
	}
	msg, err := protocol.NewSenderKeyMessageFromBytes(e.Body, s.sig.ser.SenderKeyMessage)
	if err != nil {
		return nil, herald.Errorf(herald.Invalid, "a message in secret group %s from @%s is malformed", chat, e.SenderUsername)
	}
	name := s.senderKeyName(e.GroupId, e.SenderId, e.SenderDevice)
	plain, err := groups.NewGroupCipher(s.groupBuilder(), name, s.sig).Decrypt(ctx, msg)
	if errors.Is(err, signalerror.ErrNoSenderKeyForUser) || errors.Is(err, signalerror.ErrNoSenderKeyStateForID) {
		// The key may still be on its way: hold the message for it, and
		// ask the sender for it in case it was lost.
		if len(g.Held) < maxHeld {
			g.Held = append(g.Held, e)
			if err := s.saveGroup(g); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		s.asks = append(s.asks, keyAsk{group: g.ID, member: *from})
		s.mu.Unlock()
		return nil, nil
	}
	if errors.Is(err, signalerror.ErrOldCounter) {
		return nil, nil // a replay: already shown once
	}
	if err != nil {
		return nil, herald.Errorf(herald.Invalid, "a message in secret group %s from @%s does not decrypt and was dropped: %v", chat, e.SenderUsername, err)
	}
	plain, err = unpad(plain)
	var p payload
	if err == nil {
		err = json.Unmarshal(plain, &p)
	}
	if err != nil || p.Kind != "m" || p.Peer != -e.GroupId {
		return nil, herald.Errorf(herald.Invalid, "a message in secret group %s from @%s is malformed", chat, e.SenderUsername)
	}
	if s.hasMessage(-e.GroupId, p.ID) {
		return nil, nil
	}
	if p.File == nil && herald.ValidateText(p.Text) != nil {
		return nil, herald.Errorf(herald.Invalid, "a message in secret group %s from @%s is empty or too long", chat, e.SenderUsername)
	}
	m := &SecretMessage{
		ID: p.ID, ChatID: chat, PeerID: -e.GroupId, GroupID: e.GroupId, Outgoing: e.SenderId == me,
		FromID: e.SenderId, From: cmp.Or(from.Username, e.SenderUsername), FromDevice: e.SenderDevice, Text: p.Text, File: p.File,
		SentAt: time.UnixMilli(p.Sent).UTC(), TTL: time.Duration(p.TTL) * time.Millisecond,
	}
	if err := s.putMessage(m); err != nil {
		return nil, err
	}
	return &SecretEvent{Message: m, Peer: m.PeerID}, nil
}

// groupSend encrypts a message once with this device's sender key and
// has the server copy it to every member device. Devices without the key
// get it first, over pairwise sessions; if a member or a device left, a
// new key is made and distributed first.
func (s *Secret) groupSend(ctx context.Context, id int64, text string, opts SecretSendOptions) (*SecretMessage, error) {
	me, did := s.c.Self()
	chat := GroupChatID(id)
	g, err := s.knownGroup(ctx, id)
	if err != nil {
		return nil, err
	}
	if g == nil || g.Left {
		return nil, herald.Errorf(herald.NotFound, "no secret group %s on this device", chat)
	}
	if err := s.fillNames(ctx, g); err != nil {
		return nil, err
	}
	p := payload{V: 1, Kind: "m", ID: randomID(), Peer: -id, Text: text, TTL: opts.TTL.Milliseconds(), Sent: s.opts.Now().UnixMilli()}
	var fileIDs []string
	if opts.File != nil {
		f, err := s.uploadEncrypted(ctx, opts)
		if err != nil {
			return nil, err
		}
		p.File, fileIDs = f, []string{f.ID}
	}
	var life time.Duration
	if opts.TTL > 0 {
		life = herald.MaxTTL
	}
	plain, _ := json.Marshal(p)
	plain = pad(plain)
	name := s.senderKeyName(id, me, did)
	var stale *herald.StaleDevicesError
	synced := false
	for attempt := 0; ; attempt++ {
		// A member this device still lists is gone from the server's
		// list: the admin's word is likely queued. Read it before giving
		// anyone a key.
		if stale != nil && !synced && s.goneFromServer(g, stale) != nil {
			synced = true
			if err := s.Sync(ctx); err != nil {
				return nil, err
			}
		}
		// Rotate if someone left, and make sure every device named has
		// the current key.
		var need []GroupMember
		var skdm []byte
		err := s.withLock(ctx, func() error {
			var err error
			if g, err = s.loadGroup(id); err != nil {
				return err
			}
			if g == nil || g.Left {
				return herald.Errorf(herald.NotFound, "no secret group %s on this device", chat)
			}
			if stale != nil {
				if len(stale.Extra) > 0 {
					g.Rotate = true
				}
				// Never a key for someone the server no longer fans out
				// to: a member removed must not get the next one.
				if m := s.goneFromServer(g, stale); m != nil {
					return herald.Errorf(herald.PermissionDenied, "the server's members of secret group %s differ from this device's (@%s is not on the server's list): nothing was sent", chat, m.Username)
				}
				for _, set := range stale.Current {
					if g.member(set.UserID) == nil {
						return herald.Errorf(herald.PermissionDenied, "the server's members of secret group %s differ from this device's (user %d): nothing was sent", chat, set.UserID)
					}
					if !sameDevices(g.Sent[set.UserID], set.Devices) {
						delete(g.Sent, set.UserID)
					}
				}
			}
			if g.Rotate {
				if err := s.sig.deleteSenderKey(name); err != nil {
					return err
				}
				g.Rotate, g.Sent = false, map[int64][]int64{}
			}
			dist, err := s.groupBuilder().Create(ctx, name)
			if err != nil {
				return err
			}
			skdm = dist.Serialize()
			for _, m := range g.Members {
				if _, ok := g.Sent[m.ID]; !ok {
					need = append(need, m)
				}
			}
			return s.saveGroup(g)
		})
		if err != nil {
			return nil, err
		}
		if err := s.distribute(ctx, g, need, skdm); err != nil {
			return nil, err
		}
		req := &pb.SecretGroupSendRequest{GroupId: id, TtlMs: life.Milliseconds(), FileIds: fileIDs}
		err = s.withLock(ctx, func() error {
			g, err = s.loadGroup(id)
			if err != nil {
				return err
			}
			for _, m := range g.Members {
				req.Devices = append(req.Devices, &pb.DeviceSet{UserId: m.ID, DeviceIds: g.Sent[m.ID]})
			}
			ct, err := groups.NewGroupCipher(s.groupBuilder(), name, s.sig).Encrypt(ctx, plain)
			if err != nil {
				return herald.Errorf(herald.Internal, "cannot encrypt for secret group %s: %v", chat, err)
			}
			req.Body = ct.SignedSerialize()
			return nil
		})
		if err != nil {
			return nil, err
		}
		err = s.c.Call(ctx, "secret.group.send", req, &pb.SecretSendResult{})
		stale = nil
		if !errors.As(err, &stale) || attempt >= 3 {
			if err != nil {
				return nil, err
			}
			break
		}
	}
	m := &SecretMessage{
		ID: p.ID, ChatID: chat, PeerID: -id, GroupID: id, Outgoing: true, FromID: me, FromDevice: did,
		Text: text, File: p.File, SentAt: time.UnixMilli(p.Sent).UTC(), TTL: opts.TTL,
	}
	m.From, _ = s.selfName(ctx)
	return m, s.withLock(ctx, func() error { return s.putMessage(m) })
}

// goneFromServer returns a member of g missing from the server's current
// list in stale, or nil.
func (s *Secret) goneFromServer(g *groupInfo, stale *herald.StaleDevicesError) *GroupMember {
	for i, m := range g.Members {
		if !slices.ContainsFunc(stale.Current, func(d herald.DeviceSet) bool { return d.UserID == m.ID }) {
			return &g.Members[i]
		}
	}
	return nil
}

func sameDevices(a, b []int64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// distribute sends this device's sender key to the members' devices over
// pairwise sessions and records which devices got it.
func (s *Secret) distribute(ctx context.Context, g *groupInfo, to []GroupMember, skdm []byte) error {
	me, _ := s.c.Self()
	for _, m := range to {
		var devices []int64
		if m.ID == me {
			// Own other devices get a copy with every pairwise send; one
			// to any member will do, or none if this user is alone.
			for _, o := range g.Members {
				if o.ID != me {
					if err := s.sendPairwise(ctx, o, "gk", groupPayload{ID: g.ID, Version: g.Version, Key: skdm}); err != nil {
						return err
					}
					break
				}
			}
			p, err := s.lockedPeerOwn(ctx, g)
			if err != nil {
				return err
			}
			devices = p
		} else {
			if err := s.sendPairwise(ctx, m, "gk", groupPayload{ID: g.ID, Version: g.Version, Key: skdm}); err != nil {
				return err
			}
			err := s.withLock(ctx, func() error {
				p, err := s.loadPeer(m.ID)
				devices = slices.Clone(p.Devices)
				return err
			})
			if err != nil {
				return err
			}
		}
		err := s.withLock(ctx, func() error {
			cur, err := s.loadGroup(g.ID)
			if err != nil || cur == nil {
				return err
			}
			if cur.Sent == nil {
				cur.Sent = map[int64][]int64{}
			}
			cur.Sent[m.ID] = devices
			return s.saveGroup(cur)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lockedPeerOwn returns this user's other devices as the pairwise
// sessions with the group's first other member know them.
func (s *Secret) lockedPeerOwn(ctx context.Context, g *groupInfo) ([]int64, error) {
	me, _ := s.c.Self()
	var out []int64
	err := s.withLock(ctx, func() error {
		for _, o := range g.Members {
			if o.ID != me {
				p, err := s.loadPeer(o.ID)
				out = slices.Clone(p.Own)
				return err
			}
		}
		return nil
	})
	return out, err
}
