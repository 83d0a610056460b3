package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// ParsePeer reads a CLI-style target: "@username" (the direct chat with
// that user) or a numeric chat id.
func ParsePeer(s string) (*pb.Peer, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "@") {
		if len(s) == 1 {
			return nil, herald.Errorf(herald.Invalid, "give a username after '@'")
		}
		return &pb.Peer{Username: s[1:]}, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return nil, herald.Errorf(herald.Invalid, "%q is neither @username nor a chat id", s)
	}
	return &pb.Peer{ChatId: id}, nil
}

// RandomID returns a fresh idempotency key for a send.
func RandomID() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:])&^(1<<63) | 1)
}

func (c *Client) authenticated(res *pb.AuthResult) {
	c.mu.Lock()
	c.token = res.Token
	c.userID, c.deviceID = res.GetUser().GetId(), res.GetDevice().GetId()
	if !c.ptsSet {
		c.pts, c.ptsSet = res.Pts, true
	}
	c.mu.Unlock()
	c.requestSync()
}

// Signup creates an account and logs this client in as its first device.
func (c *Client) Signup(ctx context.Context, req *pb.SignupRequest) (*pb.AuthResult, error) {
	var res pb.AuthResult
	if err := c.Call(ctx, "auth.signup", req, &res); err != nil {
		return nil, err
	}
	c.authenticated(&res)
	return &res, nil
}

// Login logs this client in as a new device of an existing account.
func (c *Client) Login(ctx context.Context, req *pb.LoginRequest) (*pb.AuthResult, error) {
	var res pb.AuthResult
	if err := c.Call(ctx, "auth.login", req, &res); err != nil {
		return nil, err
	}
	c.authenticated(&res)
	return &res, nil
}

// Logout revokes this device's token.
func (c *Client) Logout(ctx context.Context) error {
	return c.Call(ctx, "auth.logout", &pb.Empty{}, nil)
}

// Me returns the logged-in user.
func (c *Client) Me(ctx context.Context) (*pb.User, error) {
	var u pb.User
	return &u, c.Call(ctx, "users.me", &pb.Empty{}, &u)
}

// Send sends a text message. A random id is chosen if req has none, so
// a retry after a dropped connection is stored once.
func (c *Client) Send(ctx context.Context, req *pb.SendRequest) (*pb.Message, error) {
	if req.RandomId == 0 {
		req.RandomId = RandomID()
	}
	var m pb.Message
	return &m, c.call(ctx, "messages.send", req, &m, true)
}

// History returns messages of a chat, oldest first.
func (c *Client) History(ctx context.Context, req *pb.HistoryRequest) ([]*pb.Message, error) {
	var l pb.MessageList
	err := c.Call(ctx, "messages.history", req, &l)
	return l.Messages, err
}

// Chats returns the whole chat list, newest activity first, reading it
// page by page.
func (c *Client) Chats(ctx context.Context) ([]*pb.Dialog, error) {
	return allChats(func(req *pb.ChatsRequest, l *pb.DialogList) error {
		return c.Call(ctx, "chats.list", req, l)
	})
}

// ChatsPage returns one page of the chat list: req.Limit lines (0: the
// server's largest page) after req.Offset (nil: from the top). The page's
// Next, if set, is the Offset of the page after it.
func (c *Client) ChatsPage(ctx context.Context, req *pb.ChatsRequest) (*pb.DialogList, error) {
	var l pb.DialogList
	return &l, c.Call(ctx, "chats.list", req, &l)
}

// allChats reads every page of the chat list through call. A chat that
// moves to the top while the pages are read is listed once; one that
// moves up past the pages read so far is missed, as its update tells of
// it anyway.
func allChats(call func(*pb.ChatsRequest, *pb.DialogList) error) ([]*pb.Dialog, error) {
	var out []*pb.Dialog
	seen := map[int64]bool{}
	req := &pb.ChatsRequest{}
	for range 100_000 {
		var l pb.DialogList
		if err := call(req, &l); err != nil {
			return out, err
		}
		for _, d := range l.Dialogs {
			if id := d.GetChat().GetId(); !seen[id] {
				seen[id] = true
				out = append(out, d)
			}
		}
		if l.Next == nil || len(l.Dialogs) == 0 || proto.Equal(l.Next, req.Offset) {
			return out, nil // the end, or a confused server: never spin
		}
		req = &pb.ChatsRequest{Offset: l.Next}
	}
	return out, nil
}

// GetChat returns one chat.
func (c *Client) GetChat(ctx context.Context, p *pb.Peer) (*pb.Chat, error) {
	var ch pb.Chat
	return &ch, c.Call(ctx, "chats.get", &pb.GetChatRequest{Peer: p}, &ch)
}

// Read marks a chat read up to maxID (0: everything).
func (c *Client) Read(ctx context.Context, p *pb.Peer, maxID int64) (*pb.ReadResult, error) {
	var r pb.ReadResult
	return &r, c.Call(ctx, "messages.read", &pb.ReadRequest{Peer: p, MaxId: maxID}, &r)
}

// Edit replaces a message's text.
func (c *Client) Edit(ctx context.Context, chatID, id int64, text string) (*pb.Message, error) {
	var m pb.Message
	return &m, c.Call(ctx, "messages.edit", &pb.EditRequest{ChatId: chatID, Id: id, Text: text}, &m)
}

// Delete deletes messages for this user, or for everyone.
func (c *Client) Delete(ctx context.Context, chatID int64, ids []int64, forEveryone bool) error {
	return c.Call(ctx, "messages.delete", &pb.DeleteRequest{ChatId: chatID, Ids: ids, ForEveryone: forEveryone}, nil)
}

// Forward forwards messages to another chat.
func (c *Client) Forward(ctx context.Context, fromChat int64, ids []int64, to *pb.Peer) ([]*pb.Message, error) {
	var l pb.MessageList
	err := c.call(ctx, "messages.forward", &pb.ForwardRequest{FromChatId: fromChat, Ids: ids, To: to, RandomId: RandomID()}, &l, true)
	return l.Messages, err
}

// ForwardCopies forwards messages as the user's own copies, which do not
// name where they came from.
func (c *Client) ForwardCopies(ctx context.Context, fromChat int64, ids []int64, to *pb.Peer) ([]*pb.Message, error) {
	var l pb.MessageList
	err := c.call(ctx, "messages.forward", &pb.ForwardRequest{FromChatId: fromChat, Ids: ids, To: to, RandomId: RandomID(), HideAuthor: true}, &l, true)
	return l.Messages, err
}

// Typing tells the chat's other members this user is typing.
func (c *Client) Typing(ctx context.Context, chatID int64) error {
	return c.Call(ctx, "messages.typing", &pb.TypingRequest{ChatId: chatID}, nil)
}

// CreateGroup creates a group with the given members.
func (c *Client) CreateGroup(ctx context.Context, title string, usernames []string) (*pb.Chat, error) {
	var ch pb.Chat
	return &ch, c.Call(ctx, "groups.create", &pb.CreateGroupRequest{Title: title, Usernames: usernames}, &ch)
}

// AddMembers adds users to a group.
func (c *Client) AddMembers(ctx context.Context, chatID int64, usernames []string) error {
	return c.Call(ctx, "groups.add", &pb.MembersRequest{ChatId: chatID, Usernames: usernames}, nil)
}

// RemoveMembers removes users from a group.
func (c *Client) RemoveMembers(ctx context.Context, chatID int64, usernames []string) error {
	return c.Call(ctx, "groups.remove", &pb.MembersRequest{ChatId: chatID, Usernames: usernames}, nil)
}

// Leave leaves a group.
func (c *Client) Leave(ctx context.Context, chatID int64) error {
	return c.Call(ctx, "chats.leave", &pb.ChatRequest{ChatId: chatID}, nil)
}

// Devices lists this user's devices.
func (c *Client) Devices(ctx context.Context) ([]*pb.Device, error) {
	var l pb.DeviceList
	err := c.Call(ctx, "devices.list", &pb.Empty{}, &l)
	return l.Devices, err
}

// RevokeDevice logs one of this user's devices out.
func (c *Client) RevokeDevice(ctx context.Context, id int64) error {
	return c.Call(ctx, "devices.revoke", &pb.RevokeRequest{DeviceId: id}, nil)
}

// State returns the user's current update log position.
func (c *Client) State(ctx context.Context) (int64, error) {
	var s pb.State
	err := c.Call(ctx, "updates.state", &pb.Empty{}, &s)
	return s.Pts, err
}

// CreateChannel creates a broadcast channel.
func (c *Client) CreateChannel(ctx context.Context, req *pb.CreateChannelRequest) (*pb.Chat, error) {
	var ch pb.Chat
	return &ch, c.Call(ctx, "channels.create", req, &ch)
}

// Join subscribes to a public channel by @name, or to a channel by invite
// code.
func (c *Client) Join(ctx context.Context, username, invite string) (*pb.Chat, error) {
	var ch pb.Chat
	return &ch, c.Call(ctx, "channels.join", &pb.JoinRequest{Username: username, Invite: invite}, &ch)
}

// Invite creates an invite code for a channel, or revokes one.
func (c *Client) Invite(ctx context.Context, chatID int64, revoke string) (string, error) {
	var inv pb.Invite
	err := c.Call(ctx, "channels.invite", &pb.InviteRequest{ChatId: chatID, Revoke: revoke}, &inv)
	return inv.Code, err
}

// SetChat changes a channel's settings; unset fields stay.
func (c *Client) SetChat(ctx context.Context, req *pb.SetChatRequest) (*pb.Chat, error) {
	var ch pb.Chat
	return &ch, c.Call(ctx, "channels.set", req, &ch)
}

// SetRole makes a member of a group or channel an admin, or not.
func (c *Client) SetRole(ctx context.Context, chatID int64, username string, admin bool) error {
	return c.Call(ctx, "chats.set_role", &pb.SetRoleRequest{ChatId: chatID, Username: username, Admin: admin}, nil)
}

// Mute stops or resumes pushes of a chat to this user's devices.
func (c *Client) Mute(ctx context.Context, p *pb.Peer, muted bool) error {
	return c.Call(ctx, "chats.mute", &pb.MuteRequest{Peer: p, Muted: muted}, nil)
}

// React toggles the user's emoji on a message and returns its reactions.
func (c *Client) React(ctx context.Context, chatID, id int64, emoji string) ([]*pb.Reaction, error) {
	var l pb.ReactionList
	err := c.Call(ctx, "messages.react", &pb.ReactionRequest{ChatId: chatID, Id: id, Emoji: emoji}, &l)
	return l.Reactions, err
}

// Pin pins a message (on) or unpins it.
func (c *Client) Pin(ctx context.Context, chatID, id int64, on bool) error {
	method := "messages.unpin"
	if on {
		method = "messages.pin"
	}
	return c.Call(ctx, method, &pb.PinRequest{ChatId: chatID, Id: id}, nil)
}

// Pins returns a chat's pinned messages, newest pin first.
func (c *Client) Pins(ctx context.Context, p *pb.Peer) ([]*pb.Message, error) {
	var l pb.MessageList
	err := c.Call(ctx, "messages.pins", &pb.PinListRequest{Peer: p}, &l)
	return l.Messages, err
}
