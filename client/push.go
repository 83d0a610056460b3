package client

import (
	"context"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// PushConfig returns whether the server sends pushes and its VAPID
// public key.
func (c *Client) PushConfig(ctx context.Context) (*pb.PushConfig, error) {
	var res pb.PushConfig
	return &res, c.Call(ctx, "push.config", &pb.Empty{}, &res)
}

// PushSubscribe registers a push endpoint for this device.
func (c *Client) PushSubscribe(ctx context.Context, endpoint, p256dh, auth string) error {
	return c.Call(ctx, "push.subscribe", &pb.PushSubscribeRequest{Endpoint: endpoint, P256Dh: p256dh, Auth: auth}, nil)
}

// PushSubscriptions lists the account's push subscriptions.
func (c *Client) PushSubscriptions(ctx context.Context) ([]*pb.PushSubscription, error) {
	var res pb.PushSubscriptionList
	if err := c.Call(ctx, "push.list", &pb.Empty{}, &res); err != nil {
		return nil, err
	}
	return res.Subscriptions, nil
}

// PushUnsubscribe deletes one of the account's push subscriptions.
func (c *Client) PushUnsubscribe(ctx context.Context, endpoint string) error {
	return c.Call(ctx, "push.unsubscribe", &pb.PushUnsubscribeRequest{Endpoint: endpoint}, nil)
}

// SetChatNotify sets a chat's notification level (all, mentions, off)
// and mute (0 none, -1 forever, else milliseconds).
func (c *Client) SetChatNotify(ctx context.Context, chatID int64, level string, muteForMS int64) (*pb.PushChatSettings, error) {
	var res pb.PushChatSettings
	return &res, c.Call(ctx, "push.set_chat", &pb.PushChatRequest{ChatId: chatID, Level: level, MuteForMs: muteForMS}, &res)
}

// SetPushPrefs sets the account's notification privacy switches.
func (c *Client) SetPushPrefs(ctx context.Context, p *pb.PushPrefs) error {
	return c.Call(ctx, "push.set_prefs", p, nil)
}
