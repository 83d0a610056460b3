package client

import (
	"context"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// CreateBot creates a bot owned by this user. The result carries the
// bot's token, which the server shows only this once.
func (c *Client) CreateBot(ctx context.Context, username, displayName string) (*pb.Bot, error) {
	var b pb.Bot
	return &b, c.Call(ctx, "bots.create", &pb.CreateBotRequest{Username: username, DisplayName: displayName}, &b)
}

// Bots lists this user's bots.
func (c *Client) Bots(ctx context.Context) ([]*pb.Bot, error) {
	var l pb.BotList
	err := c.Call(ctx, "bots.list", &pb.Empty{}, &l)
	return l.Bots, err
}

// RotateBotToken gives a bot a new token; the old one stops working at
// once.
func (c *Client) RotateBotToken(ctx context.Context, username string) (*pb.Bot, error) {
	var b pb.Bot
	return &b, c.Call(ctx, "bots.rotate", &pb.BotRequest{Username: username}, &b)
}

// SetBotPrivacy turns a bot's group privacy mode on or off.
func (c *Client) SetBotPrivacy(ctx context.Context, username string, privacy bool) (*pb.Bot, error) {
	var b pb.Bot
	return &b, c.Call(ctx, "bots.set", &pb.SetBotRequest{Username: username, Privacy: &privacy}, &b)
}

// DeleteBot deletes a bot: its token stops working and it leaves every
// group and channel.
func (c *Client) DeleteBot(ctx context.Context, username string) error {
	return c.Call(ctx, "bots.delete", &pb.BotRequest{Username: username}, nil)
}

// Press presses the inline button with the given callback data under a
// bot's message. The bot's answer, if it gives one, arrives as an Event
// with CallbackAnswer whose QueryId is the id returned here (on clients
// that follow updates).
func (c *Client) Press(ctx context.Context, chatID, messageID int64, data string) (int64, error) {
	var r pb.PressResult
	err := c.Call(ctx, "messages.press", &pb.PressRequest{ChatId: chatID, Id: messageID, Data: data}, &r)
	return r.QueryId, err
}
