package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/format"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"golang.org/x/term"
)

type command func(ctx context.Context, c *cli, args []string) error

var commands map[string]command

func init() {
	commands = map[string]command{
		"signup":     cmdSignup,
		"login":      cmdLogin,
		"logout":     cmdLogout,
		"whoami":     cmdWhoami,
		"token":      cmdToken,
		"devices":    cmdDevices,
		"chats":      cmdChats,
		"send":       cmdSend,
		"history":    cmdHistory,
		"listen":     cmdListen,
		"read":       cmdRead,
		"edit":       cmdEdit,
		"delete":     cmdDelete,
		"forward":    cmdForward,
		"download":   cmdDownload,
		"link":       cmdLink,
		"group":      cmdGroup,
		"leave":      cmdLeave,
		"channel":    cmdChannel,
		"join":       cmdJoin,
		"autodelete": cmdAutodelete,
		"bot":        cmdBot,
		"press":      cmdPress,
		"report":     cmdReport,
		"clear":      cmdClear,
		"secret":     cmdSecret,
		"push":       cmdPush,
		"appeal":     cmdAppeal,
		"rules":      cmdRules,
		"react":      cmdReact,
		"pin":        func(ctx context.Context, c *cli, args []string) error { return cmdPin(ctx, c, args, true) },
		"unpin":      func(ctx context.Context, c *cli, args []string) error { return cmdPin(ctx, c, args, false) },
		"pins":       cmdPins,
		"block":      func(ctx context.Context, c *cli, args []string) error { return cmdBlock(ctx, c, args, true) },
		"unblock":    func(ctx context.Context, c *cli, args []string) error { return cmdBlock(ctx, c, args, false) },
		"mute":       func(ctx context.Context, c *cli, args []string) error { return cmdMute(ctx, c, args, true) },
		"unmute":     func(ctx context.Context, c *cli, args []string) error { return cmdMute(ctx, c, args, false) },
		"help":       func(_ context.Context, c *cli, args []string) error { return cmdHelp(c, args) },
	}
}

const callTimeout = 30 * time.Second

// connect opens a client for a logged-in device.
func (c *cli) connect(ctx context.Context, follow bool, pts int64) (*client.Client, client.Credentials, error) {
	return c.connectWith(ctx, follow, pts, nil)
}

func (c *cli) connectWith(ctx context.Context, follow bool, pts int64, chans map[int64]int64) (*client.Client, client.Credentials, error) {
	home := client.Home{Dir: c.home}
	cred, err := home.Load()
	if err != nil {
		return nil, cred, err
	}
	server := c.server
	if !c.serverSet && cred.Server != "" {
		server = cred.Server
	}
	opts := client.Options{Server: server, Token: cred.Token, Follow: follow, Pts: pts, ChannelPts: chans}
	cl, err := client.New(opts)
	if err != nil {
		return nil, cred, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := cl.Connect(cctx); err != nil {
		return nil, cred, err
	}
	return cl, cred, nil
}

// withClient runs fn with a connected client and a per-call timeout.
func (c *cli) withClient(ctx context.Context, fn func(ctx context.Context, cl *client.Client, cred client.Credentials) error) error {
	cl, cred, err := c.connect(ctx, false, -1)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return fn(cctx, cl, cred)
}

func (c *cli) password(confirm bool) (string, error) {
	if p := c.getenv("HERALD_PASSWORD"); p != "" {
		return p, nil
	}
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		if confirm {
			fmt.Fprint(c.stderr, "Password again: ")
			b2, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			if err != nil {
				return "", err
			}
			if string(b) != string(b2) {
				return "", herald.Errorf(herald.Invalid, "the passwords do not match")
			}
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", herald.Errorf(herald.Invalid, "no password: set $HERALD_PASSWORD or type it")
	}
	_ = err
	return line, nil
}

func defaultDevice() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "herald cli"
	}
	return "herald cli on " + h
}

func (c *cli) saveSession(res *pb.AuthResult, server string) error {
	return client.Home{Dir: c.home}.Save(client.Credentials{
		Server: server, UserID: res.User.Id, Username: res.User.Username, DeviceID: res.Device.Id, Token: res.Token, Pts: res.Pts,
	})
}

func (c *cli) anonymous(ctx context.Context) (*client.Client, error) {
	cl, err := client.New(client.Options{Server: c.server})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return cl, cl.Connect(cctx)
}

func cmdSignup(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"display-name", "device", "invite"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald signup USERNAME [--display-name NAME]"}
	}
	pw, err := c.password(true)
	if err != nil {
		return err
	}
	device := p.vals["device"]
	if device == "" {
		device = defaultDevice()
	}
	cl, err := c.anonymous(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var info pb.ServerInfo
	if err := cl.Call(cctx, "server.info", &pb.Empty{}, &info); err == nil && info.Rules != "" && !c.json {
		fmt.Fprintf(c.stderr, "By signing up you accept this server's rules:\n%s\n", info.Rules)
	}
	res, err := cl.Signup(cctx, &pb.SignupRequest{Username: p.args[0], Password: pw, DisplayName: p.vals["display-name"], DeviceName: device, Invite: p.vals["invite"]})
	if err != nil {
		return err
	}
	if err := c.saveSession(res, c.server); err != nil {
		return err
	}
	c.initSecret(cctx, cl)
	return c.printSession("signed up", res)
}

func cmdLogin(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"device"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald login USERNAME [--device NAME]"}
	}
	pw, err := c.password(false)
	if err != nil {
		return err
	}
	device := p.vals["device"]
	if device == "" {
		device = defaultDevice()
	}
	cl, err := c.anonymous(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := cl.Login(cctx, &pb.LoginRequest{Username: p.args[0], Password: pw, DeviceName: device})
	if err != nil {
		return err
	}
	if err := c.saveSession(res, c.server); err != nil {
		return err
	}
	c.initSecret(cctx, cl)
	return c.printSession("logged in", res)
}

func (c *cli) printSession(what string, res *pb.AuthResult) error {
	if c.json {
		return c.printJSON(map[string]any{"user": userJSON(res.User), "device_id": res.Device.Id})
	}
	_, err := fmt.Fprintf(c.stdout, "%s as @%s (device %d)\n", what, res.User.Username, res.Device.Id)
	return err
}

func cmdLogout(ctx context.Context, c *cli, args []string) error {
	// A home that never logged in has nothing to log out of: saying
	// "logged out" would hide a wrong --home from a script.
	if _, err := (client.Home{Dir: c.home}).Load(); err != nil {
		return err
	}
	err := c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		return cl.Logout(ctx)
	})
	if err != nil && !herald.IsKind(err, herald.Unauthenticated) {
		return err
	}
	if err := (client.Home{Dir: c.home}).Clear(); err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintln(c.stdout, "logged out")
	}
	return nil
}

func cmdWhoami(ctx context.Context, c *cli, args []string) error {
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, cred client.Credentials) error {
		u, err := cl.Me(ctx)
		if err != nil {
			return err
		}
		if c.json {
			out := userJSON(u)
			out["device_id"] = cred.DeviceID
			return c.printJSON(out)
		}
		_, err = fmt.Fprintf(c.stdout, "@%s (%s), user %d, device %d\n", u.Username, u.DisplayName, u.Id, cred.DeviceID)
		return err
	})
}

func cmdToken(ctx context.Context, c *cli, args []string) error {
	cred, err := client.Home{Dir: c.home}.Load()
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"token": cred.Token})
	}
	_, err = fmt.Fprintln(c.stdout, cred.Token)
	return err
}

func cmdDevices(ctx context.Context, c *cli, args []string) error {
	if len(args) >= 1 && args[0] == "revoke" {
		if len(args) != 2 {
			return usageError{"usage: herald devices revoke ID"}
		}
		ids, err := parseIDs(args[1:])
		if err != nil {
			return err
		}
		return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
			if err := cl.RevokeDevice(ctx, ids[0]); err != nil {
				return err
			}
			if !c.json {
				fmt.Fprintf(c.stdout, "device %d revoked\n", ids[0])
			}
			return nil
		})
	}
	if len(args) != 0 {
		return usageError{"usage: herald devices | herald devices revoke ID"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ds, err := cl.Devices(ctx)
		if err != nil {
			return err
		}
		if c.json {
			for _, d := range ds {
				if err := c.printJSON(map[string]any{"id": d.Id, "name": d.Name, "created_at": rfc3339(d.CreatedAt), "last_seen": rfc3339(d.LastSeen), "current": d.Current}); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST SEEN\t")
		for _, d := range ds {
			cur := ""
			if d.Current {
				cur = "(this device)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Id, d.Name, rfc3339(d.CreatedAt), rfc3339(d.LastSeen), cur)
		}
		return tw.Flush()
	})
}

func cmdChats(ctx context.Context, c *cli, args []string) error {
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ds, err := cl.Chats(ctx)
		if err != nil {
			return err
		}
		if c.json {
			for _, d := range ds {
				out := map[string]any{"chat": d.Chat.Id, "kind": d.Chat.Kind, "title": d.Chat.Title, "unread": d.Unread, "members": d.Chat.MemberCount, "muted": d.Chat.Muted}
				if d.Chat.Peer != nil {
					out["peer"] = d.Chat.Peer.Username
				}
				if d.UnreadMentions > 0 {
					out["unread_mentions"] = d.UnreadMentions
				}
				if d.Last != nil {
					out["last"] = messageJSON(d.Last)
				}
				if err := c.printJSON(out); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHAT\tNAME\tUNREAD\tLAST MESSAGE")
		for _, d := range ds {
			name := d.Chat.Title
			if d.Chat.Peer != nil {
				name = "@" + d.Chat.Peer.Username
			}
			if d.Chat.Muted {
				name += " (muted)"
			}
			last := ""
			if d.Last != nil {
				last = format.Preview(fromName(d.Last), oneLine(d.Last.Text, 50), d.Last.Service)
			}
			unread := fmt.Sprint(d.Unread)
			if d.UnreadMentions > 0 {
				unread += " @" // someone named you: shown even when muted
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.Chat.Id, name, unread, last)
		}
		return tw.Flush()
	})
}

func cmdSend(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"reply-to", "ttl", "file"}})
	if err != nil {
		return err
	}
	path, withFile := p.vals["file"]
	if len(p.args) < 2 && !(withFile && len(p.args) == 1) {
		return usageError{"usage: herald send [--ttl DURATION] TARGET TEXT... | herald send --file PATH TARGET [CAPTION...]"}
	}
	var ttl time.Duration
	if v, ok := p.vals["ttl"]; ok {
		if ttl, err = parseDays(v); err != nil || ttl <= 0 {
			return usageError{fmt.Sprintf("--ttl needs a duration like 30s, 5m, 1h or 7d, not %q", v)}
		}
	}
	peer, err := client.ParsePeer(p.args[0])
	if err != nil {
		return err
	}
	replyTo, err := p.int("reply-to", 0)
	if err != nil {
		return err
	}
	text := strings.Join(p.args[1:], " ")
	if withFile {
		return sendFile(ctx, c, path, peer, text, int64(replyTo), ttl)
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		m, err := cl.Send(ctx, &pb.SendRequest{Peer: peer, Text: text, ReplyTo: int64(replyTo), TtlMs: ttl.Milliseconds()})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(messageJSON(m))
		}
		_, err = fmt.Fprintln(c.stdout, m.Id)
		return err
	})
}

func cmdHistory(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"limit", "before"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald history TARGET [--limit N]"}
	}
	peer, err := client.ParsePeer(p.args[0])
	if err != nil {
		return err
	}
	limit, err := p.int("limit", 50)
	if err != nil {
		return err
	}
	before, err := p.int("before", 0)
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		ms, err := cl.History(ctx, &pb.HistoryRequest{Peer: peer, Limit: int32(limit), BeforeId: int64(before)})
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

func cmdListen(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"count", "timeout"}, switches: []string{"catch-up", "all"}})
	if err != nil {
		return err
	}
	if len(p.args) != 0 {
		return usageError{"usage: herald listen [--count N] [--timeout DURATION]"}
	}
	count, err := p.int("count", 0)
	if err != nil {
		return err
	}
	timeout, err := p.duration("timeout")
	if err != nil {
		return err
	}
	home := client.Home{Dir: c.home}
	cred, err := home.Load()
	if err != nil {
		return err
	}
	// By default listen shows what arrives from now on; --catch-up first
	// shows what arrived since this device last listened.
	start := int64(-1)
	var chans map[int64]int64
	if p.on["catch-up"] {
		start, chans = cred.Pts, cred.ChannelPts
	}
	cl, cred, err := c.connectWith(ctx, true, start, chans)
	if err != nil {
		return err
	}
	defer func() {
		cl.Close()
		if cur, err := home.Load(); err == nil && cur.Token == cred.Token {
			cur.Pts = max(cur.Pts, cl.Pts())
			cur.ChannelPts = cl.ChannelPts()
			home.Save(cur)
		}
	}()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	secrets, sec, stopSecret := c.listenSecret(ctx, cl)
	defer stopSecret()
	seen := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-secrets:
			if ev.Message == nil || (ev.Message.Outgoing && !p.on["all"]) {
				continue
			}
			if err := c.printSecret(ev.Message); err != nil {
				return err
			}
			c.shownSecret(ctx, sec, ev.Message)
			seen++
			if count > 0 && seen >= count {
				return nil
			}
		case ev, ok := <-cl.Events():
			if !ok {
				if err := cl.Err(); err != nil {
					return err
				}
				return nil
			}
			m := ev.Update.GetNewMessage()
			if m == nil || (m.FromId == cred.UserID && !p.on["all"]) {
				continue
			}
			if err := c.printMessage(m); err != nil {
				return err
			}
			seen++
			if count > 0 && seen >= count {
				return nil
			}
		}
	}
}

func cmdRead(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageError{"usage: herald read TARGET"}
	}
	peer, err := client.ParsePeer(args[0])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		r, err := cl.Read(ctx, peer, 0)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"chat": r.ChatId, "read_to": r.MaxId})
		}
		return nil
	})
}

// chatID resolves a TARGET to a chat id.
func chatID(ctx context.Context, cl *client.Client, target string) (int64, error) {
	peer, err := client.ParsePeer(target)
	if err != nil {
		return 0, err
	}
	if peer.ChatId != 0 {
		return peer.ChatId, nil
	}
	ch, err := cl.GetChat(ctx, peer)
	if err != nil {
		return 0, err
	}
	return ch.Id, nil
}

func cmdEdit(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{})
	if err != nil {
		return err
	}
	if len(p.args) < 3 {
		return usageError{"usage: herald edit TARGET ID TEXT..."}
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
		m, err := cl.Edit(ctx, chat, ids[0], strings.Join(p.args[2:], " "))
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(messageJSON(m))
		}
		return nil
	})
}

func cmdDelete(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{switches: []string{"for-everyone"}})
	if err != nil {
		return err
	}
	if len(p.args) < 2 {
		return usageError{"usage: herald delete TARGET ID... [--for-everyone]"}
	}
	ids, err := parseIDs(p.args[1:])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, p.args[0])
		if err != nil {
			return err
		}
		return cl.Delete(ctx, chat, ids, p.on["for-everyone"])
	})
}

func cmdForward(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"to"}, switches: []string{"hide-author"}})
	if err != nil {
		return err
	}
	if len(p.args) < 2 || p.vals["to"] == "" {
		return usageError{"usage: herald forward TARGET ID... --to TARGET [--hide-author]"}
	}
	ids, err := parseIDs(p.args[1:])
	if err != nil {
		return err
	}
	to, err := client.ParsePeer(p.vals["to"])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, p.args[0])
		if err != nil {
			return err
		}
		forward := cl.Forward
		if p.on["hide-author"] {
			forward = cl.ForwardCopies
		}
		ms, err := forward(ctx, chat, ids, to)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if c.json {
				err = c.printJSON(messageJSON(m))
			} else {
				_, err = fmt.Fprintln(c.stdout, m.Id)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func usernames(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if !strings.HasPrefix(a, "@") || len(a) < 2 {
			return nil, usageError{fmt.Sprintf("%q is not an @username", a)}
		}
		out = append(out, a[1:])
	}
	return out, nil
}

func cmdGroup(ctx context.Context, c *cli, args []string) error {
	if len(args) < 2 {
		return usageError{"usage: herald group create TITLE [@user ...] | group add|remove CHAT @user ... | group promote|demote CHAT @user"}
	}
	sub := args[0]
	if sub == "create" {
		users, err := usernames(args[2:])
		if err != nil {
			return err
		}
		return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
			ch, err := cl.CreateGroup(ctx, args[1], users)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]any{"chat": ch.Id, "title": ch.Title, "members": ch.MemberCount})
			}
			_, err = fmt.Fprintln(c.stdout, ch.Id)
			return err
		})
	}
	if sub == "title" {
		if len(args) < 3 {
			return usageError{"usage: herald group title TARGET TITLE..."}
		}
		title := strings.Join(args[2:], " ")
		return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
			chat, err := chatID(ctx, cl, args[1])
			if err != nil {
				return err
			}
			ch, err := cl.SetChat(ctx, &pb.SetChatRequest{ChatId: chat, Title: &title})
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]any{"chat": ch.Id, "title": ch.Title})
			}
			return nil
		})
	}
	if len(args) < 3 {
		return usageError{fmt.Sprintf("usage: herald group %s CHAT @user ...", sub)}
	}
	users, err := usernames(args[2:])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, args[1])
		if err != nil {
			return err
		}
		var done string
		switch sub {
		case "add":
			err, done = cl.AddMembers(ctx, chat, users), "added to"
		case "remove":
			err, done = cl.RemoveMembers(ctx, chat, users), "removed from"
		case "promote", "demote":
			for _, u := range users {
				if err = cl.Call(ctx, "groups.set_role", &pb.SetRoleRequest{ChatId: chat, Username: u, Admin: sub == "promote"}, nil); err != nil {
					break
				}
			}
			done = map[string]string{"promote": "now an admin of", "demote": "no longer an admin of"}[sub]
		default:
			return usageError{fmt.Sprintf("unknown group command %q", sub)}
		}
		if err != nil {
			return err
		}
		// Say what was done: a silent success reads like nothing happened.
		if c.json {
			return c.printJSON(map[string]any{"chat": chat, "action": sub, "users": users})
		}
		for _, u := range users {
			if _, err := fmt.Fprintf(c.stdout, "@%s %s chat %d\n", u, done, chat); err != nil {
				return err
			}
		}
		return nil
	})
}

func cmdLeave(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageError{"usage: herald leave TARGET"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		chat, err := chatID(ctx, cl, args[0])
		if err != nil {
			return err
		}
		return cl.Leave(ctx, chat)
	})
}

// ---- output ----

func (c *cli) printJSON(v any) error {
	return json.NewEncoder(c.stdout).Encode(v)
}

func rfc3339(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func userJSON(u *pb.User) map[string]any {
	return map[string]any{"id": u.Id, "username": u.Username, "display_name": u.DisplayName}
}

// messageJSON is the message object of the CLI contract.
func messageJSON(m *pb.Message) map[string]any {
	out := map[string]any{"chat": m.ChatId, "id": m.Id, "from": m.From, "text": m.Text, "sent_at": rfc3339(m.SentAt)}
	if m.EditedAt != 0 {
		out["edited_at"] = rfc3339(m.EditedAt)
	}
	if m.ReplyTo != 0 {
		out["reply_to"] = m.ReplyTo
	}
	if m.Fwd != nil {
		out["forwarded_from"] = m.Fwd.From
	}
	if m.Author != "" {
		out["author"] = m.Author
	}
	if m.Views > 0 {
		out["views"] = m.Views
	}
	if m.TtlMs > 0 {
		out["ttl"] = float64(m.TtlMs) / 1000
	}
	if m.ExpiresAt > 0 {
		out["expires_at"] = rfc3339(m.ExpiresAt)
	}
	if m.Service {
		out["service"] = true
	}
	if len(m.Buttons) > 0 {
		out["buttons"] = buttonsJSON(m.Buttons)
	}
	out["entities"] = []any{}
	if len(m.Entities) > 0 {
		out["entities"] = entitiesJSON(m.Entities)
	}
	if m.File != nil {
		out["file"] = fileJSON(m.File)
	}
	if m.Call != nil {
		out["call"] = map[string]any{"video": m.Call.Video, "outcome": m.Call.Outcome, "duration": float64(m.Call.DurationMs) / 1000}
	}
	out["reactions"] = reactionsJSON(m.Reactions)
	out["pinned"] = m.Pinned
	out["edited"] = m.EditedAt != 0
	if m.MentionsMe {
		out["mentions_me"] = true
	}
	return out
}

func (c *cli) printMessage(m *pb.Message) error {
	if c.json {
		return c.printJSON(messageJSON(m))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%d #%d] %s ", m.ChatId, m.Id, time.UnixMilli(m.SentAt).Local().Format("2006-01-02 15:04"))
	if m.Service {
		// "@alice set …" names who did it; "@alice: @alice set …" twice.
		b.WriteString(m.Text)
		_, err := fmt.Fprintln(c.stdout, b.String())
		return err
	}
	b.WriteString(fromName(m))
	switch {
	case m.Fwd != nil && m.Fwd.FromId == 0 && m.Fwd.Title != "":
		fmt.Fprintf(&b, " (forwarded from %s)", m.Fwd.Title) // a channel, by its title
	case m.Fwd != nil:
		fmt.Fprintf(&b, " (forwarded from @%s)", m.Fwd.From)
	}
	if m.ReplyTo != 0 {
		fmt.Fprintf(&b, " (reply to #%d)", m.ReplyTo)
	}
	b.WriteString(": ")
	if m.File != nil {
		b.WriteString(describeFile(m.File))
		if m.Text != "" {
			b.WriteString(" ")
		}
	}
	b.WriteString(styled(m.Text, m.Entities, c.ansi))
	if len(m.Buttons) > 0 {
		b.WriteString(buttonsText(m.Buttons))
	}
	if m.EditedAt != 0 {
		b.WriteString(" (edited)")
	}
	b.WriteString(reactionsText(m.Reactions))
	if m.Pinned {
		b.WriteString(" (pinned)")
	}
	if m.Author != "" {
		fmt.Fprintf(&b, " — %s", m.Author)
	}
	if m.Views > 0 {
		fmt.Fprintf(&b, " (%s)", format.Count(m.Views, "view", ""))
	}
	switch {
	case m.ExpiresAt > 0:
		fmt.Fprintf(&b, " (disappears %s)", time.UnixMilli(m.ExpiresAt).Local().Format("2006-01-02 15:04:05"))
	case m.TtlMs > 0:
		fmt.Fprintf(&b, " (disappears %s after it is read)", time.Duration(m.TtlMs)*time.Millisecond)
	}
	_, err := fmt.Fprintln(c.stdout, b.String())
	return err
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func fromName(m *pb.Message) string {
	if m.FromId == 0 {
		return m.From // a channel post: signed by the channel
	}
	return "@" + m.From
}

// parseDays reads a duration that may be given in days ("7d"), as people
// write timers, or in Go's units ("30s", "1h30m").
func parseDays(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad day count %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

func cmdAutodelete(ctx context.Context, c *cli, args []string) error {
	if len(args) != 2 {
		return usageError{"usage: herald autodelete TARGET off|DURATION (1h … 365d)"}
	}
	peer, err := client.ParsePeer(args[0])
	if err != nil {
		return err
	}
	var ttl time.Duration
	if args[1] != "off" {
		if ttl, err = parseDays(args[1]); err != nil || ttl <= 0 {
			return usageError{fmt.Sprintf("%q is not off or a duration like 1h, 1d or 7d", args[1])}
		}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		var ch pb.Chat
		if err := cl.Call(ctx, "chats.set_ttl", &pb.SetTTLRequest{Peer: peer, TtlMs: ttl.Milliseconds()}, &ch); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"chat": ch.Id, "ttl": float64(ch.TtlMs) / 1000})
		}
		return nil
	})
}

func cmdClear(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{switches: []string{"for-everyone"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald clear TARGET [--for-everyone]"}
	}
	peer, err := client.ParsePeer(p.args[0])
	if err != nil {
		return err
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		var r pb.ClearResult
		if err := cl.Call(ctx, "messages.clear", &pb.ClearRequest{Peer: peer, ForEveryone: p.on["for-everyone"]}, &r); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"deleted": r.Deleted})
		}
		_, err := fmt.Fprintf(c.stdout, "%d messages deleted\n", r.Deleted)
		return err
	})
}
