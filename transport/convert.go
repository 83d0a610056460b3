package transport

import (
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func pbUser(u herald.User) *pb.User {
	return &pb.User{Id: u.ID, Username: u.Username, DisplayName: u.DisplayName, IsBot: u.IsBot}
}

// renderer converts domain values to wire values, looking up usernames
// once per batch.
type renderer struct {
	svc *service.Service
}

func (r renderer) messages(ctx context.Context, ms []herald.Message) []*pb.Message {
	var fwdIDs []int64
	for _, m := range ms {
		if m.Fwd != nil {
			fwdIDs = append(fwdIDs, m.Fwd.UserID)
		}
	}
	names := r.svc.UserNames(ctx, fwdIDs...)
	out := make([]*pb.Message, len(ms))
	for i := range ms {
		out[i] = pbMessage(&ms[i], r.svc.Sign(ctx, &ms[i]), names)
	}
	r.forwardedFrom(ctx, out)
	return out
}

func (r renderer) message(ctx context.Context, m herald.Message) *pb.Message {
	return r.messages(ctx, []herald.Message{m})[0]
}

func pbMessage(m *herald.Message, sig service.Signature, names map[int64]string) *pb.Message {
	out := &pb.Message{
		ChatId: m.ChatID, Id: m.Seq, FromId: sig.FromID, From: sig.From, Author: sig.Author, Text: m.Text,
		SentAt: unixMS(m.SentAt), EditedAt: unixMS(m.EditedAt), ReplyTo: m.ReplyTo, Deleted: m.Deleted, RandomId: m.RandomID,
		Views: m.Views, TtlMs: m.TTL.Milliseconds(), Service: m.Service,
	}
	if !m.Waiting {
		out.ExpiresAt = unixMS(m.ExpiresAt)
	}
	if m.Fwd != nil {
		out.Fwd = &pb.Forward{FromId: m.Fwd.UserID, From: names[m.Fwd.UserID], ChatId: m.Fwd.ChatID, Id: m.Fwd.Seq}
	}
	out.Buttons = pbButtons(m.Extras.Buttons)
	for _, e := range m.Extras.Entities {
		out.Entities = append(out.Entities, &pb.MessageEntity{Type: e.Type, Offset: int32(e.Offset), Length: int32(e.Length), Url: e.URL, Language: e.Language, UserId: e.UserID})
	}
	if r := m.Extras.Call; r != nil {
		out.Call = &pb.CallRecord{Video: r.Video, Outcome: r.Outcome, DurationMs: r.DurationMS}
	}
	if m.File != nil {
		out.File = pbFile(*m.File)
	}
	out.Reactions = pbReactions(m.Reactions)
	out.Pinned, out.MentionsMe = m.Pinned, m.MentionsMe
	return out
}

func pbReactions(rs []herald.Reaction) []*pb.Reaction {
	var out []*pb.Reaction
	for _, r := range rs {
		out = append(out, &pb.Reaction{Emoji: r.Emoji, Count: int32(r.Count), Chosen: r.Mine, UserIds: r.Users})
	}
	return out
}

// entities turns a request's formatting into the service's; the service
// checks them against the text.
func entities(es []*pb.MessageEntity) []herald.Entity {
	var out []herald.Entity
	for _, e := range es {
		out = append(out, herald.Entity{Type: e.Type, Offset: int(e.Offset), Length: int(e.Length), URL: e.Url, Language: e.Language, UserID: e.UserId})
	}
	return out
}

func pbFile(f herald.File) *pb.File {
	return &pb.File{
		Id: f.ID, Name: f.Name, Size: f.Size, Mime: f.MIME, Kind: string(f.Kind), Sha256: f.SHA256,
		Width: int32(f.Width), Height: int32(f.Height), DurationMs: f.Duration.Milliseconds(), Thumb: f.Thumb,
	}
}

// forwardedFrom names the origin of forwarded channel posts, which carry
// no user.
func (r renderer) forwardedFrom(ctx context.Context, out []*pb.Message) {
	for _, m := range out {
		if m.Fwd != nil && m.Fwd.FromId == 0 {
			sig := r.svc.Sign(ctx, &herald.Message{ChatID: m.Fwd.ChatId})
			m.Fwd.From, m.Fwd.Title = sig.From, sig.Title
		}
	}
}

func (r renderer) update(ctx context.Context, u *herald.Update) *pb.Update {
	out := &pb.Update{Pts: u.Pts, At: unixMS(u.At)}
	if u.UserID == 0 { // a broadcast chat's own log
		out.Pts, out.ChatPts = 0, u.Pts
	}
	switch u.Kind {
	case herald.UpdNewMessage, herald.UpdEditMessage:
		var m *pb.Message
		if u.Message != nil {
			m = r.message(ctx, *u.Message)
		} else {
			m = &pb.Message{ChatId: u.ChatID, Id: u.Seq, Deleted: true}
		}
		if u.Kind == herald.UpdNewMessage {
			out.Kind = &pb.Update_NewMessage{NewMessage: m}
		} else {
			out.Kind = &pb.Update_EditMessage{EditMessage: m}
		}
	case herald.UpdDelete:
		out.Kind = &pb.Update_DeleteMessages{DeleteMessages: &pb.DeleteMessages{ChatId: u.ChatID, Ids: u.Seqs}}
	case herald.UpdReadInbox:
		out.Kind = &pb.Update_ReadInbox{ReadInbox: &pb.ReadHistory{ChatId: u.ChatID, MaxId: u.Seq, UserId: u.ActorID}}
	case herald.UpdReadOutbox:
		out.Kind = &pb.Update_ReadOutbox{ReadOutbox: &pb.ReadHistory{ChatId: u.ChatID, MaxId: u.Seq, UserId: u.ActorID}}
	case herald.UpdChatJoined:
		out.Kind = &pb.Update_ChatJoined{ChatJoined: &pb.ChatMembership{ChatId: u.ChatID, UserId: u.ActorID, ChatPts: u.Seq}}
	case herald.UpdChatLeft:
		out.Kind = &pb.Update_ChatLeft{ChatLeft: &pb.ChatMembership{ChatId: u.ChatID, UserId: u.ActorID}}
	case herald.UpdMembers:
		change := "left"
		switch u.Seq {
		case 1:
			change = "joined"
		case 2:
			change = "role"
		}
		out.Kind = &pb.Update_MembersChanged{MembersChanged: &pb.ChatMembership{ChatId: u.ChatID, UserId: u.ActorID, Change: change, UserIds: u.Seqs}}
	}
	return out
}

func (r renderer) chat(ctx context.Context, c herald.Chat, role herald.Role, peer *herald.User, muted bool) *pb.Chat {
	out := &pb.Chat{
		Id: c.ID, Kind: c.Kind.String(), Title: c.Title, LastId: c.LastSeq, MemberCount: int32(c.MemberCount), Role: role.String(),
		Username: c.Username, Description: c.Description, Signatures: c.Signatures, Broadcast: c.Broadcast, Pts: c.Pts, Muted: muted,
		TtlMs: c.TTL.Milliseconds(),
	}
	if peer != nil {
		out.Peer = pbUser(*peer)
		out.Title = peer.Username
	}
	return out
}

func (r renderer) dialogs(ctx context.Context, ds []herald.Dialog) *pb.DialogList {
	out := &pb.DialogList{Dialogs: make([]*pb.Dialog, 0, len(ds))}
	for _, d := range ds {
		pd := &pb.Dialog{Chat: r.chat(ctx, d.Chat, d.Role, d.Peer, d.Muted), Unread: int32(d.Unread), UnreadMentions: int32(d.UnreadMentions), ReadId: d.ReadSeq, PeerReadId: d.PeerReadSeq}
		if d.Last != nil {
			pd.Last = r.message(ctx, *d.Last)
		}
		out.Dialogs = append(out.Dialogs, pd)
	}
	return out
}

func (r renderer) difference(ctx context.Context, d herald.Difference) *pb.Difference {
	out := &pb.Difference{Pts: d.Pts, More: d.More, TooLong: d.TooLong, Updates: make([]*pb.Update, 0, len(d.Updates))}
	for i := range d.Updates {
		out.Updates = append(out.Updates, r.update(ctx, &d.Updates[i]))
	}
	return out
}

func (r renderer) report(ctx context.Context, rep herald.Report, evidence map[int64]string) *pb.Report {
	out := &pb.Report{
		Id: rep.ID, ReporterId: rep.ReporterID, Reporter: r.svc.UserNames(ctx, rep.ReporterID)[rep.ReporterID], Kind: string(rep.Kind),
		TargetUser: rep.TargetUser, TargetChat: rep.TargetChat, TargetMessage: rep.TargetSeq,
		Reason: rep.Reason, Note: rep.Note, Evidence: evidence[rep.ID], Status: rep.Status, CreatedAt: unixMS(rep.CreatedAt),
	}
	switch {
	case rep.TargetUser != 0:
		out.Target = "@" + r.svc.UserNames(ctx, rep.TargetUser)[rep.TargetUser]
	case rep.TargetChat != 0:
		out.Target = r.svc.ChatLabel(ctx, rep.TargetChat)
	}
	return out
}

func (r renderer) reportView(ctx context.Context, v service.ReportView) *pb.ReportView {
	out := &pb.ReportView{Report: r.report(ctx, v.Report, v.Evidence), PrivateNote: v.Private}
	for _, o := range v.Related {
		out.Related = append(out.Related, r.report(ctx, o, v.Evidence))
	}
	out.PublicContent = r.messages(ctx, v.Public)
	return out
}

// The renderer is the service's Frames: the publisher renders each
// event's frame once, and every node writes those bytes as they are.
var _ service.Frames = renderer{}

// UpdateFrame renders an update as the frame its devices receive. A new
// message in a user's own log says whether it mentions that user.
func (r renderer) UpdateFrame(ctx context.Context, u *herald.Update) []byte {
	if m := u.Message; m != nil && u.UserID != 0 {
		mm, uu := *m, *u
		mm.MentionsMe = r.svc.MentionsReader(ctx, u.UserID, m)
		uu.Message = &mm
		u = &uu
	}
	return encodeUpdate(r.update(ctx, u))
}

// TypingFrame renders a typing notice.
func (r renderer) TypingFrame(ctx context.Context, chatID, userID int64) []byte {
	return encodeTyping(chatID, userID, r.svc.UserNames(ctx, userID)[userID])
}

// AnswerFrame renders a bot's answer to a button press.
func (r renderer) AnswerFrame(ctx context.Context, chatID, botID int64, a *service.CallbackAnswer) []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_CallbackAnswer{CallbackAnswer: &pb.CallbackAnswer{
		QueryId: a.QueryID, ChatId: chatID, MessageId: a.MessageID, BotId: botID,
		Bot: r.svc.UserNames(ctx, botID)[botID], Text: a.Plain, Alert: a.Alert, Url: a.URL,
	}}})
	return b
}

// EnvelopeFrame renders a secret-chat envelope.
func (r renderer) EnvelopeFrame(ctx context.Context, e *herald.Envelope) []byte {
	return encodeEnvelope(r.envelope(ctx, e))
}

// CallFrame renders a step of a call's signalling.
func (r renderer) CallFrame(ctx context.Context, sig *service.CallSignal) []byte {
	return encodeCall(sig, r.svc.UserNames(ctx, sig.FromUserID)[sig.FromUserID])
}

// ReactionsFrame renders a message's reactions for reader.
func (r renderer) ReactionsFrame(_ context.Context, chatID, seq int64, rs []herald.Reaction, reader int64) []byte {
	out := pbReactions(rs)
	for _, x := range out {
		x.Chosen = reader != 0 && slices.Contains(x.UserIds, reader)
	}
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Reaction{Reaction: &pb.ReactionUpdate{ChatId: chatID, Id: seq, Reactions: out}}})
	return b
}

// PinFrame renders a pin or an unpin.
func (r renderer) PinFrame(_ context.Context, chatID, seq int64, pinned bool) []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Pin{Pin: &pb.PinUpdate{ChatId: chatID, Id: seq, Pinned: pinned}}})
	return b
}
