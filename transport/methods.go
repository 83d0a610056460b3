package transport

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

type method struct {
	auth   bool // needs an authenticated connection
	decode func(params []byte) (proto.Message, error)
	call   func(ctx context.Context, c *conn, caller service.Caller, req proto.Message) (proto.Message, error)
}

// handler adapts a typed method to the table. Its decoder refuses params
// that are not a valid Req (proto3 decoding also rejects strings that are
// not valid UTF-8).
func handler[Req any, P interface {
	*Req
	proto.Message
}](auth bool, fn func(ctx context.Context, c *conn, caller service.Caller, req P) (proto.Message, error)) method {
	return method{
		auth: auth,
		decode: func(params []byte) (proto.Message, error) {
			req := P(new(Req))
			if err := proto.Unmarshal(params, req); err != nil {
				return nil, herald.Errorf(herald.Invalid, "the parameters do not decode as %s (strings must be valid UTF-8)", req.ProtoReflect().Descriptor().Name())
			}
			return req, nil
		},
		call: func(ctx context.Context, c *conn, caller service.Caller, req proto.Message) (proto.Message, error) {
			return fn(ctx, c, caller, req.(P))
		},
	}
}

func peer(p *pb.Peer) service.Peer {
	if p == nil {
		return service.Peer{}
	}
	return service.Peer{ChatID: p.ChatId, Username: p.Username}
}

func authResult(sess service.Session) *pb.AuthResult {
	return &pb.AuthResult{
		User:   pbUser(sess.User),
		Device: &pb.Device{Id: sess.Device.ID, Name: sess.Device.Name, CreatedAt: unixMS(sess.Device.CreatedAt), LastSeen: unixMS(sess.Device.LastSeen), Current: true},
		Token:  sess.Token, Pts: sess.Pts,
	}
}

// methods is the protocol's method table; docs/PROTOCOL.md lists the same.
var methods = map[string]method{
	"auth.signup": handler(false, func(ctx context.Context, c *conn, _ service.Caller, r *pb.SignupRequest) (proto.Message, error) {
		if err := c.unauthenticated(); err != nil {
			return nil, err
		}
		sess, err := c.srv.svc.SignupFrom(ctx, c.addr, r.Username, r.Password, r.DisplayName, r.DeviceName, r.Invite)
		if err != nil {
			return nil, err
		}
		if err := c.authenticate(ctx, sess.Token); err != nil {
			return nil, err
		}
		return authResult(sess), nil
	}),
	"auth.login": handler(false, func(ctx context.Context, c *conn, _ service.Caller, r *pb.LoginRequest) (proto.Message, error) {
		if err := c.unauthenticated(); err != nil {
			return nil, err
		}
		sess, err := c.srv.svc.Login(ctx, r.Username, r.Password, r.DeviceName, c.addr)
		if err != nil {
			return nil, err
		}
		if err := c.authenticate(ctx, sess.Token); err != nil {
			return nil, err
		}
		return authResult(sess), nil
	}),
	"auth.resume": handler(false, func(ctx context.Context, c *conn, _ service.Caller, r *pb.AuthRequest) (proto.Message, error) {
		if err := c.authenticate(ctx, r.Token); err != nil {
			return nil, err
		}
		caller, _ := c.authed()
		u, err := c.srv.svc.Me(ctx, caller)
		if err != nil {
			return nil, err
		}
		pts, err := c.srv.svc.State(ctx, caller)
		if err != nil {
			return nil, err
		}
		return &pb.AuthResult{User: pbUser(u), Device: &pb.Device{Id: caller.DeviceID, Current: true}, Pts: pts}, nil
	}),
	"auth.logout": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Logout(ctx, caller)
	}),
	"devices.list": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		ds, err := c.srv.svc.Devices(ctx, caller)
		if err != nil {
			return nil, err
		}
		out := &pb.DeviceList{}
		for _, d := range ds {
			out.Devices = append(out.Devices, &pb.Device{Id: d.ID, Name: d.Name, CreatedAt: unixMS(d.CreatedAt), LastSeen: unixMS(d.LastSeen), Current: d.ID == caller.DeviceID})
		}
		return out, nil
	}),
	"devices.revoke": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.RevokeRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.RevokeDevice(ctx, caller, r.DeviceId)
	}),
	"users.me": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		u, err := c.srv.svc.Me(ctx, caller)
		return pbUser(u), err
	}),
	"users.resolve": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ResolveRequest) (proto.Message, error) {
		u, err := c.srv.svc.ResolveUser(ctx, r.Username)
		return pbUser(u), err
	}),
	"chats.list": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ChatsRequest) (proto.Message, error) {
		// Clients from before paging send Empty, which reads as the first
		// page of the largest size.
		var after herald.DialogCursor
		if o := r.Offset; o != nil {
			after = herald.DialogCursor{At: fromUnixMS(o.Date), ChatID: o.ChatId}
		}
		ds, next, err := c.srv.svc.Dialogs(ctx, caller, after, int(r.Limit))
		if err != nil {
			return nil, err
		}
		out := c.srv.render.dialogs(ctx, ds)
		if next != (herald.DialogCursor{}) {
			out.Next = &pb.ChatsCursor{Date: unixMS(next.At), ChatId: next.ChatID}
		}
		return out, nil
	}),
	"chats.get": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.GetChatRequest) (proto.Message, error) {
		info, err := c.srv.svc.GetChat(ctx, caller, peer(r.Peer))
		if err != nil {
			return nil, err
		}
		out := c.srv.render.chat(ctx, info.Chat, info.Role, info.Peer, info.Muted)
		ids := make([]int64, 0, len(info.Members))
		for _, m := range info.Members {
			ids = append(ids, m.UserID)
		}
		names := c.srv.svc.UserNames(ctx, ids...)
		for _, m := range info.Members {
			out.Members = append(out.Members, &pb.Member{User: &pb.User{Id: m.UserID, Username: names[m.UserID]}, Role: m.Role.String(), ReadId: m.ReadSeq})
		}
		return out, nil
	}),
	"chats.leave": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ChatRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Leave(ctx, caller, r.ChatId)
	}),
	"groups.create": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.CreateGroupRequest) (proto.Message, error) {
		ch, err := c.srv.svc.CreateGroup(ctx, caller, r.Title, r.Usernames)
		if err != nil {
			return nil, err
		}
		return c.srv.render.chat(ctx, ch, herald.RoleOwner, nil, false), nil
	}),
	"groups.add": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.MembersRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.AddMembers(ctx, caller, r.ChatId, r.Usernames)
	}),
	"groups.remove": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.MembersRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.RemoveMembers(ctx, caller, r.ChatId, r.Usernames)
	}),
	"groups.set_role": setRole,
	"chats.set_role":  setRole,
	"server.info": handler(false, func(ctx context.Context, c *conn, _ service.Caller, _ *pb.Empty) (proto.Message, error) {
		rules, err := c.srv.svc.Rules(ctx)
		return &pb.ServerInfo{Rules: rules, Reactions: c.srv.svc.ReactionSet()}, err
	}),
	"users.block": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.BlockRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Block(ctx, caller, r.Username, r.Blocked)
	}),
	"reports.create": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ReportRequest) (proto.Message, error) {
		rep, err := c.srv.svc.Report(ctx, caller, service.ReportParams{
			Username: r.Username, ChatID: r.ChatId, Seq: r.MessageId, Reason: r.Reason, Note: r.Note, Evidence: r.Evidence, Appeal: r.Appeal,
		})
		if err != nil {
			return nil, err
		}
		return &pb.Report{Id: rep.ID, Kind: string(rep.Kind), Status: rep.Status, Reason: rep.Reason, CreatedAt: unixMS(rep.CreatedAt)}, nil
	}),
	"admin.reports": admin(func(ctx context.Context, c *conn, op service.Operator, r *pb.ReportsRequest) (proto.Message, error) {
		rs, ev, err := c.srv.svc.Reports(ctx, op, r.Status, int(r.Limit))
		if err != nil {
			return nil, err
		}
		out := &pb.ReportList{}
		for _, rep := range rs {
			out.Reports = append(out.Reports, c.srv.render.report(ctx, rep, ev))
		}
		return out, nil
	}),
	"admin.show": admin(func(ctx context.Context, c *conn, op service.Operator, r *pb.ShowReportRequest) (proto.Message, error) {
		v, err := c.srv.svc.ShowReport(ctx, op, r.Id)
		if err != nil {
			return nil, err
		}
		return c.srv.render.reportView(ctx, v), nil
	}),
	"admin.takedown": admin(func(ctx context.Context, c *conn, op service.Operator, r *pb.AdminRequest) (proto.Message, error) {
		_, err := c.srv.svc.Takedown(ctx, op, r.Target, r.Reason, true)
		return &pb.Empty{}, err
	}),
	"admin.restore": admin(func(ctx context.Context, c *conn, op service.Operator, r *pb.AdminRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Restore(ctx, op, r.Target, r.Reason)
	}),
	"admin.suspend": admin(func(ctx context.Context, c *conn, op service.Operator, r *pb.AdminRequest) (proto.Message, error) {
		_, err := c.srv.svc.Suspend(ctx, op, r.Target, r.Reason, time.Duration(r.DurationMs)*time.Millisecond, true)
		return &pb.Empty{}, err
	}),
	"admin.delete_post": admin(func(ctx context.Context, c *conn, op service.Operator, r *pb.AdminRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.DeletePost(ctx, op, r.Target, r.MessageId, r.Reason)
	}),
	"admin.audit": admin(func(ctx context.Context, c *conn, op service.Operator, _ *pb.Empty) (proto.Message, error) {
		es, err := c.srv.svc.AuditLog(ctx, op, 1000)
		if err != nil {
			return nil, err
		}
		out := &pb.AuditList{}
		for _, e := range es {
			out.Entries = append(out.Entries, &pb.AuditEntry{Id: e.ID, At: unixMS(e.At), Operator: e.Operator, Action: e.Action, Target: e.Target, Reason: e.Reason})
		}
		return out, nil
	}),
	"chats.set_ttl": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SetTTLRequest) (proto.Message, error) {
		if r.TtlMs < 0 {
			return nil, herald.Errorf(herald.Invalid, "ttl_ms is never negative")
		}
		ch, err := c.srv.svc.SetAutoDelete(ctx, caller, peer(r.Peer), time.Duration(r.TtlMs)*time.Millisecond)
		if err != nil {
			return nil, err
		}
		return c.srv.render.chat(ctx, ch, 0, nil, false), nil
	}),
	"chats.mute": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.MuteRequest) (proto.Message, error) {
		ch, err := c.srv.svc.Mute(ctx, caller, peer(r.Peer), r.Muted)
		if err != nil {
			return nil, err
		}
		return c.srv.render.chat(ctx, ch, 0, nil, r.Muted), nil
	}),
	"channels.create": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.CreateChannelRequest) (proto.Message, error) {
		ch, err := c.srv.svc.CreateChannel(ctx, caller, service.ChannelParams{Username: r.Username, Title: r.Title, Description: r.Description, Private: r.Private})
		if err != nil {
			return nil, err
		}
		return c.srv.render.chat(ctx, ch, herald.RoleOwner, nil, false), nil
	}),
	"channels.join": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.JoinRequest) (proto.Message, error) {
		ch, err := c.srv.svc.Join(ctx, caller, r.Username, r.Invite)
		if err != nil {
			return nil, err
		}
		return c.srv.render.chat(ctx, ch, herald.RoleMember, nil, false), nil
	}),
	"channels.invite": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.InviteRequest) (proto.Message, error) {
		if r.Revoke != "" {
			return &pb.Invite{Code: r.Revoke}, c.srv.svc.RevokeChatInvite(ctx, caller, r.ChatId, r.Revoke)
		}
		code, err := c.srv.svc.CreateChatInvite(ctx, caller, r.ChatId)
		return &pb.Invite{Code: code}, err
	}),
	"channels.set": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SetChatRequest) (proto.Message, error) {
		ch, err := c.srv.svc.SetChat(ctx, caller, r.ChatId, service.ChatSettings{Title: r.Title, Description: r.Description, Signatures: r.Signatures})
		if err != nil {
			return nil, err
		}
		return c.srv.render.chat(ctx, ch, herald.RoleAdmin, nil, false), nil
	}),
	"channels.difference": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ChatDifferenceRequest) (proto.Message, error) {
		d, err := c.srv.svc.ChatDifference(ctx, caller, r.ChatId, r.Pts, int(r.Limit))
		if err != nil {
			return nil, err
		}
		return c.srv.render.difference(ctx, d), nil
	}),
	"messages.send": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SendRequest) (proto.Message, error) {
		m, err := c.srv.svc.Send(ctx, caller, service.SendParams{Peer: peer(r.Peer), Text: r.Text, ReplyTo: r.ReplyTo, RandomID: r.RandomId, TTL: time.Duration(r.TtlMs) * time.Millisecond, FileID: r.FileId, Entities: entities(r.Entities)})
		if err != nil {
			return nil, err
		}
		c.srv.metrics.messagesIn.Inc()
		return c.srv.render.message(ctx, m), nil
	}),
	"files.get": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.FileRequest) (proto.Message, error) {
		f, err := c.srv.svc.FileInfo(ctx, caller, r.Id)
		if err != nil {
			return nil, err
		}
		return pbFile(f), nil
	}),
	"files.link": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.FileLinkRequest) (proto.Message, error) {
		q, exp, err := c.srv.svc.SignFileLink(ctx, caller, r.Id, time.Duration(r.TtlMs)*time.Millisecond)
		if err != nil {
			return nil, err
		}
		return &pb.FileLink{Url: "/v1/files/" + r.Id + "?" + q, ExpiresAt: unixMS(exp)}, nil
	}),
	"messages.forward": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ForwardRequest) (proto.Message, error) {
		ms, err := c.srv.svc.Forward(ctx, caller, r.FromChatId, r.Ids, peer(r.To), r.RandomId, r.HideAuthor)
		if err != nil {
			return nil, err
		}
		c.srv.metrics.messagesIn.Add(float64(len(ms)))
		return &pb.MessageList{Messages: c.srv.render.messages(ctx, ms)}, nil
	}),
	"messages.history": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.HistoryRequest) (proto.Message, error) {
		ms, err := c.srv.svc.History(ctx, caller, peer(r.Peer), r.BeforeId, int(r.Limit))
		if err != nil {
			return nil, err
		}
		return &pb.MessageList{Messages: c.srv.render.messages(ctx, ms)}, nil
	}),
	"messages.edit": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.EditRequest) (proto.Message, error) {
		m, err := c.srv.svc.EditFormatted(ctx, caller, r.ChatId, r.Id, r.Text, entities(r.Entities))
		if err != nil {
			return nil, err
		}
		return c.srv.render.message(ctx, m), nil
	}),
	"messages.delete": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.DeleteRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Delete(ctx, caller, r.ChatId, r.Ids, r.ForEveryone)
	}),
	"messages.clear": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ClearRequest) (proto.Message, error) {
		n, err := c.srv.svc.ClearHistory(ctx, caller, peer(r.Peer), r.ForEveryone)
		return &pb.ClearResult{Deleted: int32(n)}, err
	}),
	"messages.read": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ReadRequest) (proto.Message, error) {
		p := peer(r.Peer)
		seq, err := c.srv.svc.Read(ctx, caller, p, r.MaxId)
		if err != nil {
			return nil, err
		}
		info, err := c.srv.svc.GetChat(ctx, caller, p)
		if err != nil {
			return nil, err
		}
		return &pb.ReadResult{ChatId: info.Chat.ID, MaxId: seq}, nil
	}),
	"messages.react": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ReactionRequest) (proto.Message, error) {
		rs, err := c.srv.svc.React(ctx, caller, r.ChatId, r.Id, r.Emoji)
		if err != nil {
			return nil, err
		}
		return &pb.ReactionList{Reactions: pbReactions(rs)}, nil
	}),
	"messages.pin": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PinRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Pin(ctx, caller, r.ChatId, r.Id, true)
	}),
	"messages.unpin": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PinRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Pin(ctx, caller, r.ChatId, r.Id, false)
	}),
	"messages.pins": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PinListRequest) (proto.Message, error) {
		ms, err := c.srv.svc.Pins(ctx, caller, peer(r.Peer))
		if err != nil {
			return nil, err
		}
		return &pb.MessageList{Messages: c.srv.render.messages(ctx, ms)}, nil
	}),
	"messages.typing": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.TypingRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.Typing(ctx, caller, r.ChatId)
	}),
	"updates.state": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		pts, err := c.srv.svc.State(ctx, caller)
		return &pb.State{Pts: pts}, err
	}),
	"updates.difference": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.DifferenceRequest) (proto.Message, error) {
		d, err := c.srv.svc.Difference(ctx, caller, r.Pts, int(r.Limit))
		if err != nil {
			return nil, err
		}
		return c.srv.render.difference(ctx, d), nil
	}),
}

var setRole = handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SetRoleRequest) (proto.Message, error) {
	return &pb.Empty{}, c.srv.svc.SetRole(ctx, caller, r.ChatId, r.Username, r.Admin)
})

// admin wraps a moderation method: the caller must hold the moderator role.
func admin[Req any, P interface {
	*Req
	proto.Message
}](fn func(ctx context.Context, c *conn, op service.Operator, req P) (proto.Message, error)) method {
	return handler(true, func(ctx context.Context, c *conn, caller service.Caller, req P) (proto.Message, error) {
		op, err := c.srv.svc.AsOperator(ctx, caller)
		if err != nil {
			return nil, err
		}
		return fn(ctx, c, op, req)
	})
}
