package transport

import (
	"context"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

// The bot-management and button methods join the method table here, so
// the table in methods.go stays as it was.
func init() {
	for name, m := range botMethods {
		methods[name] = m
	}
}

func pbButtons(rows [][]herald.Button) []*pb.ButtonRow {
	if len(rows) == 0 {
		return nil
	}
	out := make([]*pb.ButtonRow, 0, len(rows))
	for _, row := range rows {
		r := &pb.ButtonRow{}
		for _, b := range row {
			r.Buttons = append(r.Buttons, &pb.InlineButton{Text: b.Text, Data: b.Data, Url: b.URL})
		}
		out = append(out, r)
	}
	return out
}

func pbBot(b herald.Bot, token string) *pb.Bot {
	return &pb.Bot{
		User:  &pb.User{Id: b.UserID, Username: b.Username, DisplayName: b.DisplayName, IsBot: true},
		Token: token, Privacy: !b.ReadAll, WebhookUrl: b.WebhookURL, CreatedAt: unixMS(b.CreatedAt),
	}
}

var botMethods = map[string]method{
	"bots.create": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.CreateBotRequest) (proto.Message, error) {
		b, token, err := c.srv.svc.CreateBot(ctx, caller, r.Username, r.DisplayName)
		if err != nil {
			return nil, err
		}
		return pbBot(b, token), nil
	}),
	"bots.list": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		bs, err := c.srv.svc.Bots(ctx, caller)
		if err != nil {
			return nil, err
		}
		out := &pb.BotList{}
		for _, b := range bs {
			out.Bots = append(out.Bots, pbBot(b, ""))
		}
		return out, nil
	}),
	"bots.rotate": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.BotRequest) (proto.Message, error) {
		b, token, err := c.srv.svc.RotateBotToken(ctx, caller, r.Username)
		if err != nil {
			return nil, err
		}
		return pbBot(b, token), nil
	}),
	"bots.set": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SetBotRequest) (proto.Message, error) {
		if r.Privacy == nil {
			return nil, herald.Errorf(herald.Invalid, "name a setting to change")
		}
		b, err := c.srv.svc.SetBotPrivacy(ctx, caller, r.Username, *r.Privacy)
		if err != nil {
			return nil, err
		}
		return pbBot(b, ""), nil
	}),
	"bots.delete": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.BotRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.DeleteBot(ctx, caller, r.Username)
	}),
	"messages.press": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PressRequest) (proto.Message, error) {
		id, err := c.srv.svc.Press(ctx, caller, r.ChatId, r.Id, r.Data)
		return &pb.PressResult{QueryId: id}, err
	}),
}
