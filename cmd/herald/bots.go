package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

const botUsage = `usage: herald bot create NAME [--name DISPLAY] | bot token NAME --rotate | bot list | bot delete NAME | bot privacy NAME on|off`

// cmdBot manages the user's bots.
func cmdBot(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{botUsage}
	}
	sub := args[0]
	p, err := parseArgs(args[1:], flagSpec{values: []string{"name"}, switches: []string{"rotate"}})
	if err != nil {
		return err
	}
	want := map[string]int{"create": 1, "token": 1, "list": 0, "delete": 1, "privacy": 2}
	n, ok := want[sub]
	if !ok || len(p.args) != n {
		return usageError{botUsage}
	}
	if sub == "token" && !p.on["rotate"] {
		return usageError{"herald bot token NAME --rotate: tokens are stored only as hashes, so the old one cannot be shown; --rotate issues a new one and the old stops working"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		switch sub {
		case "create":
			b, err := cl.CreateBot(ctx, p.args[0], p.vals["name"])
			if err != nil {
				return err
			}
			return c.printToken(b)
		case "token":
			b, err := cl.RotateBotToken(ctx, p.args[0])
			if err != nil {
				return err
			}
			return c.printToken(b)
		case "list":
			bs, err := cl.Bots(ctx)
			if err != nil {
				return err
			}
			for _, b := range bs {
				if c.json {
					if err := c.printJSON(botJSON(b)); err != nil {
						return err
					}
					continue
				}
				privacy := "privacy on"
				if !b.Privacy {
					privacy = "privacy off"
				}
				extra := ""
				if b.WebhookUrl != "" {
					extra = ", webhook " + b.WebhookUrl
				}
				if _, err := fmt.Fprintf(c.stdout, "@%s\t%s\t(id %d, %s%s)\n", b.User.Username, b.User.DisplayName, b.User.Id, privacy, extra); err != nil {
					return err
				}
			}
			return nil
		case "delete":
			return cl.DeleteBot(ctx, p.args[0])
		case "privacy":
			var on bool
			switch p.args[1] {
			case "on":
				on = true
			case "off":
			default:
				return usageError{"usage: herald bot privacy NAME on|off"}
			}
			b, err := cl.SetBotPrivacy(ctx, p.args[0], on)
			if err != nil || !c.json {
				return err
			}
			return c.printJSON(botJSON(b))
		}
		return nil
	})
}

func botJSON(b *pb.Bot) map[string]any {
	out := map[string]any{"id": b.User.Id, "username": b.User.Username, "display_name": b.User.DisplayName, "privacy": b.Privacy}
	if b.Token != "" {
		out["token"] = b.Token
	}
	if b.WebhookUrl != "" {
		out["webhook_url"] = b.WebhookUrl
	}
	return out
}

// printToken prints a new token: alone on its line, so scripts can take
// it with $(herald bot create …).
func (c *cli) printToken(b *pb.Bot) error {
	if c.json {
		return c.printJSON(botJSON(b))
	}
	_, err := fmt.Fprintln(c.stdout, b.Token)
	return err
}

// cmdPress presses an inline button under a bot's message and prints the
// bot's answer.
func cmdPress(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"wait"}})
	if err != nil {
		return err
	}
	if len(p.args) != 3 {
		return usageError{"usage: herald press TARGET MESSAGE_ID BUTTON [--wait DURATION]"}
	}
	id, err := strconv.ParseInt(p.args[1], 10, 64)
	if err != nil || id <= 0 {
		return usageError{fmt.Sprintf("%q is not a message id", p.args[1])}
	}
	wait := 10 * time.Second
	if _, ok := p.vals["wait"]; ok {
		if wait, err = p.duration("wait"); err != nil {
			return err
		}
	}
	cl, _, err := c.connect(ctx, false, -1)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	chat, err := chatID(cctx, cl, p.args[0])
	if err != nil {
		return err
	}
	ms, err := cl.History(cctx, &pb.HistoryRequest{Peer: &pb.Peer{ChatId: chat}, BeforeId: id + 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(ms) == 0 || ms[0].Id != id {
		return herald.Errorf(herald.NotFound, "no message %d in this chat", id)
	}
	data, err := findButton(ms[0], p.args[2])
	if err != nil {
		return err
	}
	qid, err := cl.Press(cctx, chat, id, data)
	if err != nil {
		return err
	}
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-cl.Events():
			if !ok {
				return cl.Err()
			}
			a := ev.CallbackAnswer
			if a == nil || a.QueryId != qid {
				continue
			}
			if c.json {
				out := map[string]any{"query": qid, "answered": true, "text": a.Text, "alert": a.Alert}
				if a.Url != "" {
					out["url"] = a.Url
				}
				return c.printJSON(out)
			}
			_, err := fmt.Fprintln(c.stdout, a.Text)
			return err
		case <-timeout:
			if c.json {
				return c.printJSON(map[string]any{"query": qid, "answered": false})
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// findButton picks a button by its callback data, its text, or its
// position (1 is the first button, counting row by row).
func findButton(m *pb.Message, which string) (string, error) {
	var all []*pb.InlineButton
	for _, row := range m.Buttons {
		all = append(all, row.Buttons...)
	}
	if len(all) == 0 {
		return "", herald.Errorf(herald.NotFound, "message %d has no buttons", m.Id)
	}
	for _, pass := range []func(b *pb.InlineButton) bool{
		func(b *pb.InlineButton) bool { return b.Data != "" && b.Data == which },
		func(b *pb.InlineButton) bool { return b.Text == which },
		func(b *pb.InlineButton) bool { return strings.EqualFold(b.Text, which) },
	} {
		for _, b := range all {
			if pass(b) {
				if b.Data == "" {
					return "", herald.Errorf(herald.Invalid, "the button %q is a link: %s", b.Text, b.Url)
				}
				return b.Data, nil
			}
		}
	}
	if n, err := strconv.Atoi(which); err == nil && n >= 1 && n <= len(all) {
		if all[n-1].Data == "" {
			return "", herald.Errorf(herald.Invalid, "the button %q is a link: %s", all[n-1].Text, all[n-1].Url)
		}
		return all[n-1].Data, nil
	}
	return "", herald.Errorf(herald.NotFound, "message %d has no button %q", m.Id, which)
}

// buttonsJSON is the buttons of a message in the CLI's JSON.
func buttonsJSON(rows []*pb.ButtonRow) [][]map[string]string {
	out := make([][]map[string]string, 0, len(rows))
	for _, row := range rows {
		r := make([]map[string]string, 0, len(row.Buttons))
		for _, b := range row.Buttons {
			o := map[string]string{"text": b.Text}
			if b.Data != "" {
				o["data"] = b.Data
			}
			if b.Url != "" {
				o["url"] = b.Url
			}
			r = append(r, o)
		}
		out = append(out, r)
	}
	return out
}

// buttonsText shows buttons after a message's text: [Yes] [No], rows
// separated by " / ".
func buttonsText(rows []*pb.ButtonRow) string {
	var b strings.Builder
	for i, row := range rows {
		if i > 0 {
			b.WriteString(" /")
		}
		for _, btn := range row.Buttons {
			fmt.Fprintf(&b, " [%s]", btn.Text)
		}
	}
	return b.String()
}
