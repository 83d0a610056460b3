package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/format"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

const channelUsage = `usage: herald channel create NAME --title TITLE [--description TEXT] [--private]
       herald channel info TARGET
       herald channel admins TARGET add|remove @user
       herald channel invite TARGET [--revoke CODE]
       herald channel set TARGET [--signatures on|off] [--title TITLE] [--description TEXT]
       herald channel mute|unmute TARGET`

func cmdChannel(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{channelUsage}
	}
	switch args[0] {
	case "create":
		return cmdChannelCreate(ctx, c, args[1:])
	case "info":
		return cmdChannelInfo(ctx, c, args[1:])
	case "admins":
		return cmdChannelAdmins(ctx, c, args[1:])
	case "invite":
		return cmdChannelInvite(ctx, c, args[1:])
	case "set":
		return cmdChannelSet(ctx, c, args[1:])
	case "mute", "unmute":
		return cmdMute(ctx, c, args[1:], args[0] == "mute")
	}
	return usageError{channelUsage}
}

func chatJSON(ch *pb.Chat) map[string]any {
	out := map[string]any{"chat": ch.Id, "kind": ch.Kind, "title": ch.Title, "subscribers": ch.MemberCount, "role": ch.Role,
		"description": ch.Description, "signatures": ch.Signatures, "muted": ch.Muted, "private": ch.Username == ""}
	if ch.Username != "" {
		out["username"] = ch.Username
	}
	return out
}

func cmdChannelCreate(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"title", "description"}, switches: []string{"private"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald channel create NAME --title TITLE [--description TEXT] [--private]"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ch, err := cl.CreateChannel(ctx, &pb.CreateChannelRequest{
			Username: strings.TrimPrefix(p.args[0], "@"), Title: p.vals["title"], Description: p.vals["description"], Private: p.on["private"],
		})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(chatJSON(ch))
		}
		_, err = fmt.Fprintln(c.stdout, ch.Id)
		return err
	})
}

func cmdChannelInfo(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageError{"usage: herald channel info TARGET"}
	}
	peer, err := client.ParsePeer(args[0])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ch, err := cl.GetChat(ctx, peer)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(chatJSON(ch))
		}
		name := "(private)"
		if ch.Username != "" {
			name = "@" + ch.Username
		}
		fmt.Fprintf(c.stdout, "%s %s\n", ch.Title, name)
		if ch.Description != "" {
			fmt.Fprintln(c.stdout, ch.Description)
		}
		role := ch.Role
		if role == "none" {
			role = "not subscribed"
		}
		fmt.Fprintf(c.stdout, "chat %d, %s, your role: %s", ch.Id, format.Count(int64(ch.MemberCount), "subscriber", ""), role)
		if ch.Signatures {
			fmt.Fprint(c.stdout, ", signed posts")
		}
		if ch.Muted {
			fmt.Fprint(c.stdout, ", muted")
		}
		_, err = fmt.Fprintln(c.stdout)
		return err
	})
}

func cmdChannelAdmins(ctx context.Context, c *cli, args []string) error {
	if len(args) < 3 || (args[1] != "add" && args[1] != "remove") {
		return usageError{"usage: herald channel admins TARGET add|remove @user ..."}
	}
	users, err := usernames(args[2:])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, args[0])
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := cl.SetRole(ctx, chat, u, args[1] == "add"); err != nil {
				return err
			}
		}
		return nil
	})
}

func cmdChannelInvite(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"revoke"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald channel invite TARGET [--revoke CODE]"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, p.args[0])
		if err != nil {
			return err
		}
		code, err := cl.Invite(ctx, chat, p.vals["revoke"])
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"chat": chat, "code": code, "revoked": p.vals["revoke"] != ""})
		}
		if p.vals["revoke"] != "" {
			_, err = fmt.Fprintf(c.stdout, "invite %s revoked\n", code)
			return err
		}
		_, err = fmt.Fprintln(c.stdout, code)
		return err
	})
}

func cmdChannelSet(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"signatures", "title", "description"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 || len(p.vals) == 0 {
		return usageError{"usage: herald channel set TARGET [--signatures on|off] [--title TITLE] [--description TEXT]"}
	}
	req := &pb.SetChatRequest{}
	if v, ok := p.vals["signatures"]; ok {
		on, err := parseOnOff(v)
		if err != nil {
			return err
		}
		req.Signatures = &on
	}
	if v, ok := p.vals["title"]; ok {
		req.Title = &v
	}
	if v, ok := p.vals["description"]; ok {
		req.Description = &v
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, p.args[0])
		if err != nil {
			return err
		}
		req.ChatId = chat
		ch, err := cl.SetChat(ctx, req)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(chatJSON(ch))
		}
		return nil
	})
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "yes":
		return true, nil
	case "off", "no":
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usageError{fmt.Sprintf("%q is not on or off", v)}
	}
	return b, nil
}

func cmdJoin(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageError{"usage: herald join @channel | herald join INVITE-CODE"}
	}
	name, code := "", args[0]
	if strings.HasPrefix(code, "@") {
		name, code = code[1:], ""
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ch, err := cl.Join(ctx, name, code)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(chatJSON(ch))
		}
		_, err = fmt.Fprintln(c.stdout, ch.Id)
		return err
	})
}

func cmdMute(ctx context.Context, c *cli, args []string, muted bool) error {
	if len(args) != 1 {
		return usageError{"usage: herald mute|unmute TARGET"}
	}
	peer, err := client.ParsePeer(args[0])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		return cl.Mute(ctx, peer, muted)
	})
}
