package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/format"
)

// secretFor returns the device's secret chats, with keys made and
// published if it has none yet.
func (c *cli) secretFor(ctx context.Context, cl *client.Client) (*client.Secret, error) {
	s := client.NewSecret(cl, client.SecretOptions{Store: client.Home{Dir: c.home}.SecretStore()})
	return s, s.Init(ctx)
}

// initSecret makes a new device's secret-chat keys at signup and login.
// A server without secret chats does not stop the login.
func (c *cli) initSecret(ctx context.Context, cl *client.Client) {
	if _, err := c.secretFor(ctx, cl); err != nil && !c.json {
		fmt.Fprintf(c.stderr, "note: secret chats are not set up on this device: %s\n", herald.ErrorMessage(err))
	}
}

const secretUsage = `usage: herald secret start @USER
       herald secret send @USER TEXT [--ttl 10s] [--file PATH]
       herald secret history @USER
       herald secret verify @USER [--confirm]
       herald secret accept @USER
       herald secret download @USER MSG_ID -o FILE
       herald secret group create TITLE @USER...
       herald secret group add|remove GROUP @USER
       herald secret group leave GROUP
GROUP is a secret group's id (sg-N), taken by send, history and download
wherever they take @USER.`

const secretGroupUsage = `usage: herald secret group create TITLE @USER...
       herald secret group add|remove GROUP @USER
       herald secret group leave GROUP`

func cmdSecret(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{secretUsage}
	}
	if args[0] == "group" {
		return cmdSecretGroup(ctx, c, args[1:])
	}
	p, err := parseArgs(args[1:], flagSpec{values: []string{"ttl", "file", "o"}, switches: []string{"confirm"}})
	if err != nil {
		return err
	}
	want := map[string]int{"start": 1, "send": 2, "history": 1, "verify": 1, "accept": 1, "download": 2}
	n, ok := want[args[0]]
	if !ok || len(p.args) != n && !(args[0] == "send" && p.vals["file"] != "" && len(p.args) == 1) {
		return usageError{secretUsage}
	}
	peer := herald.NormalizeUsername(p.args[0])
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, cred client.Credentials) error {
		s, err := c.secretFor(ctx, cl)
		if err != nil {
			return err
		}
		switch args[0] {
		case "start":
			id, err := s.Start(ctx, peer)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]any{"chat": id, "peer": peer, "secret": true})
			}
			_, err = fmt.Fprintln(c.stdout, id)
			return err
		case "send":
			ttl, err := p.duration("ttl")
			if err != nil {
				return err
			}
			opts := client.SecretSendOptions{TTL: ttl}
			if path := p.vals["file"]; path != "" {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				st, err := f.Stat()
				if err != nil {
					return err
				}
				opts.File, opts.FileSize, opts.FileName = f, st.Size(), filepath.Base(path)
			}
			text := ""
			if len(p.args) > 1 {
				text = p.args[1]
			}
			m, err := s.Send(ctx, peer, text, opts)
			if err != nil {
				return err
			}
			if c.json {
				return c.printSecret(m)
			}
			_, err = fmt.Fprintln(c.stdout, m.ID) // as send prints the id
			return err
		case "history":
			ms, err := s.History(ctx, peer)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if err := c.printSecret(m); err != nil {
					return err
				}
			}
			return nil
		case "verify":
			var sn client.SafetyNumber
			if p.on["confirm"] {
				sn, err = s.Verify(ctx, peer)
			} else {
				sn, err = s.SafetyNumber(ctx, peer)
			}
			if err != nil {
				return err
			}
			return c.printSafety(peer, sn)
		case "accept":
			sn, err := s.Accept(ctx, peer)
			if err != nil {
				return err
			}
			return c.printSafety(peer, sn)
		case "download":
			return c.secretDownload(ctx, s, peer, p.args[1], p.vals["o"])
		}
		return nil
	})
}

// secretJSON is a secret message in the CLI's message object, marked
// secret; chat is the secret chat's id.
func secretJSON(m *client.SecretMessage) map[string]any {
	out := map[string]any{"chat": m.ChatID, "id": m.ID, "from": m.From, "text": m.Text, "sent_at": m.SentAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), "secret": true, "peer": m.Peer}
	if m.TTL > 0 {
		out["ttl"] = m.TTL.Seconds()
	}
	if !m.ExpiresAt.IsZero() {
		out["expires_at"] = m.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	if m.File != nil {
		out["file"] = secretFileJSON(m.File)
	}
	if m.Warning != "" {
		out["warning"] = m.Warning
	}
	if m.Event != "" {
		out["event"] = m.Event
	}
	return out
}

// cmdSecretGroup makes and changes secret groups (docs/SECRET.md).
func cmdSecretGroup(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{secretGroupUsage}
	}
	p, err := parseArgs(args[1:], flagSpec{})
	if err != nil {
		return err
	}
	switch {
	case args[0] == "create" && len(p.args) >= 2:
	case (args[0] == "add" || args[0] == "remove") && len(p.args) == 2:
	case args[0] == "leave" && len(p.args) == 1:
	default:
		return usageError{secretGroupUsage}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, cred client.Credentials) error {
		s, err := c.secretFor(ctx, cl)
		if err != nil {
			return err
		}
		chat := p.args[0]
		switch args[0] {
		case "create":
			var names []string
			for _, a := range p.args[1:] {
				names = append(names, herald.NormalizeUsername(a))
			}
			if chat, err = s.CreateGroup(ctx, p.args[0], names); err != nil {
				return err
			}
		case "add":
			err = s.GroupAdd(ctx, chat, herald.NormalizeUsername(p.args[1]))
		case "remove":
			err = s.GroupRemove(ctx, chat, herald.NormalizeUsername(p.args[1]))
		case "leave":
			err = s.GroupLeave(ctx, chat)
		}
		if err != nil {
			return err
		}
		if c.json {
			title, members, err := s.Group(ctx, chat)
			if err != nil {
				return err
			}
			var ms []map[string]any
			for _, m := range members {
				ms = append(ms, map[string]any{"id": m.ID, "username": m.Username, "admin": m.Admin})
			}
			return c.printJSON(map[string]any{"chat": chat, "title": title, "members": ms, "secret": true})
		}
		_, err = fmt.Fprintln(c.stdout, chat)
		return err
	})
}

func (c *cli) printSecret(m *client.SecretMessage) error {
	if c.json {
		return c.printJSON(secretJSON(m))
	}
	var b strings.Builder
	if m.Warning != "" {
		fmt.Fprintf(&b, "! %s\n", m.Warning)
	}
	fmt.Fprintf(&b, "[secret %s] %s @%s: ", m.ChatID, m.SentAt.Local().Format("2006-01-02 15:04"), m.From)
	if m.File != nil {
		fmt.Fprintf(&b, "[file %s, %s] ", m.File.Name, format.Size(m.File.Size))
	}
	b.WriteString(m.Text)
	switch {
	case !m.ExpiresAt.IsZero():
		fmt.Fprintf(&b, " (disappears %s)", m.ExpiresAt.Local().Format("2006-01-02 15:04:05"))
	case m.TTL > 0:
		fmt.Fprintf(&b, " (disappears %s after it is read)", m.TTL)
	}
	_, err := fmt.Fprintln(c.stdout, b.String())
	return err
}

// listenSecret starts receiving secret messages for listen, if this
// device has secret chats. Its events are nil otherwise.
func (c *cli) listenSecret(ctx context.Context, cl *client.Client) (<-chan client.SecretEvent, *client.Secret, func()) {
	if _, ok, _ := (client.Home{Dir: c.home}).SecretStore().Get("identity"); !ok {
		return nil, nil, func() {}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	s, err := c.secretFor(cctx, cl)
	cancel()
	if err != nil {
		return nil, nil, func() {}
	}
	s.Receive(ctx)
	return s.Events(), s, s.Close
}

// shownSecret marks an incoming secret message read once listen printed
// it: its self-destruct timer starts, on every device of both people.
func (c *cli) shownSecret(ctx context.Context, s *client.Secret, m *client.SecretMessage) {
	if m.Outgoing || m.TTL == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.MarkRead(cctx, m.PeerID); err != nil && !c.json {
		fmt.Fprintf(c.stderr, "note: could not start the timer of a secret message: %s\n", herald.ErrorMessage(err))
	}
}

// printSafety prints a safety number and what to do about it.
func (c *cli) printSafety(peer string, sn client.SafetyNumber) error {
	if c.json {
		out := map[string]any{"peer": peer, "safety_number": sn.Number, "verified": sn.Verified, "changed": sn.Changed}
		if sn.KeyChanged != "" {
			out["key_changed"] = sn.KeyChanged
		}
		return c.printJSON(out)
	}
	state := "not verified: compare it with @" + peer + " in person, then run herald secret verify @" + peer + " --confirm"
	switch {
	case sn.KeyChanged != "":
		state = "KEY CHANGED: " + sn.KeyChanged + "\nthe number above is the one before the change; run herald secret accept @" + peer + " to see the new one and send again"
	case sn.Verified:
		state = "verified"
	case sn.Changed:
		state = "CHANGED since the chat began; " + state
	}
	_, err := fmt.Fprintf(c.stdout, "%s\n%s\n", sn.Number, state)
	return err
}

// secretDownload writes the file of one secret message to path,
// decrypted on this device and checked against the SHA-256 its sender put
// in the message. The plaintext goes to a temporary file beside path
// (mode 0600) and takes its name only once checked.
func (c *cli) secretDownload(ctx context.Context, s *client.Secret, peer, id, path string) error {
	if path == "" {
		return usageError{"usage: herald secret download @USER MSG_ID -o FILE"}
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return herald.Errorf(herald.Invalid, "%s is a directory: give the file's name with -o", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	m, err := s.DownloadMessage(ctx, peer, id, f)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"path": path, "id": m.ID, "file": secretFileJSON(m.File)})
	}
	_, err = fmt.Fprintln(c.stdout, path)
	return err
}

// secretFileJSON is a secret message's file in the CLI's output: what
// identifies it, never its key (which stays in this device's store).
func secretFileJSON(f *client.SecretFile) map[string]any {
	return map[string]any{"name": f.Name, "size": f.Size, "sha256": f.SHA256, "file_id": f.ID}
}
