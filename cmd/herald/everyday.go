package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// cmdReact toggles a reaction: the same command again takes it off.
func cmdReact(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{})
	if err != nil {
		return err
	}
	if len(p.args) != 3 {
		return usageError{"usage: herald react TARGET ID EMOJI"}
	}
	ids, err := parseIDs(p.args[1:2])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, p.args[0])
		if err != nil {
			return err
		}
		rs, err := cl.React(ctx, chat, ids[0], p.args[2])
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"chat": chat, "id": ids[0], "reactions": reactionsJSON(rs)})
		}
		_, err = fmt.Fprintln(c.stdout, strings.TrimSpace(reactionsText(rs)))
		return err
	})
}

// cmdPin pins (on) or unpins a message.
func cmdPin(ctx context.Context, c *cli, args []string, on bool) error {
	p, err := parseArgs(args, flagSpec{})
	if err != nil {
		return err
	}
	verb := "unpin"
	if on {
		verb = "pin"
	}
	if len(p.args) != 2 {
		return usageError{"usage: herald " + verb + " TARGET ID"}
	}
	ids, err := parseIDs(p.args[1:2])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, p.args[0])
		if err != nil {
			return err
		}
		return cl.Pin(ctx, chat, ids[0], on)
	})
}

// cmdPins lists a chat's pinned messages, newest pin first.
func cmdPins(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald pins TARGET"}
	}
	peer, err := client.ParsePeer(p.args[0])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ms, err := cl.Pins(ctx, peer)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := c.printMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// reactionsJSON is the CLI contract's reactions object: emoji → its
// count and whether I reacted.
func reactionsJSON(rs []*pb.Reaction) map[string]any {
	out := map[string]any{}
	for _, r := range rs {
		out[r.Emoji] = map[string]any{"count": r.Count, "mine": r.Chosen}
	}
	return out
}

// reactionsText is " [👍 2 ❤️ 1*]", a star after the ones I chose.
func reactionsText(rs []*pb.Reaction) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s %d", r.Emoji, r.Count)
		if r.Chosen {
			parts[i] += "*"
		}
	}
	return " [" + strings.Join(parts, " ") + "]"
}
