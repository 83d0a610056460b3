package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// cmdReport files a report: herald report TARGET --reason R [--message ID] [--note TEXT] [--evidence TEXT].
func cmdReport(ctx context.Context, c *cli, args []string) error {
	return report(ctx, c, args, false)
}

// cmdAppeal asks the moderators to look again at an action on your
// content: herald appeal TARGET [--note TEXT].
func cmdAppeal(ctx context.Context, c *cli, args []string) error {
	return report(ctx, c, args, true)
}

func report(ctx context.Context, c *cli, args []string, appeal bool) error {
	spec := flagSpec{values: []string{"reason", "message", "note", "evidence"}}
	if appeal {
		spec = flagSpec{values: []string{"note"}}
	}
	p, err := parseArgs(args, spec)
	if err != nil {
		return err
	}
	if len(p.args) != 1 || (!appeal && p.vals["reason"] == "") {
		if appeal {
			return usageError{"usage: herald appeal TARGET [--note TEXT]"}
		}
		return usageError{"usage: herald report TARGET --reason violence|spam|scam|illegal|other [--message ID] [--note TEXT] [--evidence TEXT]"}
	}
	msg, err := p.int("message", 0)
	if err != nil {
		return err
	}
	peer, err := client.ParsePeer(p.args[0])
	if err != nil {
		return err
	}
	req := &pb.ReportRequest{Username: peer.Username, ChatId: peer.ChatId, MessageId: int64(msg), Reason: p.vals["reason"],
		Note: p.vals["note"], Evidence: p.vals["evidence"], Appeal: appeal}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		var r pb.Report
		if err := cl.Call(ctx, "reports.create", req, &r); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"report": r.Id, "kind": r.Kind, "status": r.Status})
		}
		_, err := fmt.Fprintf(c.stdout, "report %d filed; the server's moderators will look at it\n", r.Id)
		return err
	})
}

func cmdBlock(ctx context.Context, c *cli, args []string, on bool) error {
	if len(args) != 1 || !strings.HasPrefix(args[0], "@") {
		return usageError{"usage: herald block|unblock @user"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		return cl.Call(ctx, "users.block", &pb.BlockRequest{Username: args[0][1:], Blocked: on}, nil)
	})
}

// cmdRules prints the server's rules; it needs no account.
func cmdRules(ctx context.Context, c *cli, args []string) error {
	cl, err := c.anonymous(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var info pb.ServerInfo
	if err := cl.Call(cctx, "server.info", &pb.Empty{}, &info); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"rules": info.Rules})
	}
	if info.Rules == "" {
		_, err = fmt.Fprintln(c.stdout, "this server has not published rules")
		return err
	}
	_, err = fmt.Fprintln(c.stdout, info.Rules)
	return err
}
