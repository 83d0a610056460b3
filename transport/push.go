package transport

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

var levelNames = map[herald.NotifyLevel]string{herald.NotifyAll: "all", herald.NotifyMentions: "mentions", herald.NotifyOff: "off"}

func pbChatNotify(chatID int64, n herald.ChatNotify) *pb.PushChatSettings {
	out := &pb.PushChatSettings{ChatId: chatID, Level: levelNames[n.Level]}
	if n.MuteUntil.Equal(herald.MuteForever) {
		out.MutedForever = true
	} else {
		out.MuteUntil = unixMS(n.MuteUntil)
	}
	return out
}

// pushMethods are the push notification methods (docs/PROTOCOL.md).
var pushMethods = map[string]method{
	"push.config": handler(true, func(_ context.Context, c *conn, _ service.Caller, _ *pb.Empty) (proto.Message, error) {
		return &pb.PushConfig{Enabled: c.srv.svc.PushEnabled(), VapidPublicKey: c.srv.svc.VAPIDPublicKey()}, nil
	}),
	"push.subscribe": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PushSubscribeRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.PushSubscribe(ctx, caller, r.Endpoint, r.P256Dh, r.Auth)
	}),
	"push.list": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		subs, err := c.srv.svc.PushSubscriptions(ctx, caller)
		if err != nil {
			return nil, err
		}
		out := &pb.PushSubscriptionList{}
		for _, s := range subs {
			out.Subscriptions = append(out.Subscriptions, &pb.PushSubscription{Endpoint: s.Endpoint, DeviceId: s.DeviceID, CreatedAt: unixMS(s.CreatedAt)})
		}
		return out, nil
	}),
	"push.unsubscribe": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PushUnsubscribeRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.PushUnsubscribe(ctx, caller, r.Endpoint)
	}),
	"push.focus": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PushFocusRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.PushFocus(ctx, caller, r.Focused)
	}),
	"push.prefs": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		p, err := c.srv.svc.PushPrefs(ctx, caller)
		return &pb.PushPrefs{HideText: p.HideText, HideSender: p.HideSender}, err
	}),
	"push.set_prefs": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PushPrefs) (proto.Message, error) {
		return r, c.srv.svc.SetPushPrefs(ctx, caller, herald.PushPrefs{HideText: r.HideText, HideSender: r.HideSender})
	}),
	"push.chat": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.ChatRequest) (proto.Message, error) {
		n, err := c.srv.svc.ChatNotify(ctx, caller, r.ChatId)
		if err != nil {
			return nil, err
		}
		return pbChatNotify(r.ChatId, n), nil
	}),
	"push.set_chat": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PushChatRequest) (proto.Message, error) {
		level := herald.NotifyLevel(-1)
		for l, name := range levelNames {
			if name == r.Level || (r.Level == "" && l == herald.NotifyAll) {
				level = l
			}
		}
		if level < 0 {
			return nil, herald.Errorf(herald.Invalid, "level is all, mentions or off")
		}
		if r.MuteForMs < -1 || r.MuteForMs > (366*24*time.Hour).Milliseconds() {
			return nil, herald.Errorf(herald.Invalid, "mute_for_ms is 0 (unmuted), -1 (forever) or a length of at most a year")
		}
		n, err := c.srv.svc.SetChatNotify(ctx, caller, r.ChatId, level, time.Duration(r.MuteForMs)*time.Millisecond)
		if err != nil {
			return nil, err
		}
		return pbChatNotify(r.ChatId, n), nil
	}),
}

func init() {
	for name, m := range pushMethods {
		if _, dup := methods[name]; dup {
			panic("transport: method " + name + " defined twice")
		}
		methods[name] = m
	}
}
