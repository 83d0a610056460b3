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
       herald secret verify @USER [--confirm]`

func cmdSecret(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{secretUsage}
	}
	p, err := parseArgs(args[1:], flagSpec{values: []string{"ttl", "file"}, switches: []string{"confirm"}})
	if err != nil {
		return err
	}
	want := map[string]int{"start": 1, "send": 2, "history": 1, "verify": 1}
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
			if c.json {
				return c.printJSON(map[string]any{"peer": peer, "safety_number": sn.Number, "verified": sn.Verified, "changed": sn.Changed})
			}
			state := "not verified: compare it with @" + peer + " in person, then run herald secret verify @" + peer + " --confirm"
			if sn.Verified {
				state = "verified"
			} else if sn.Changed {
				state = "CHANGED since the chat began; " + state
			}
			_, err = fmt.Fprintf(c.stdout, "%s\n%s\n", sn.Number, state)
			return err
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
		out["file"] = map[string]any{"name": m.File.Name, "size": m.File.Size, "sha256": m.File.SHA256}
	}
	if m.Warning != "" {
		out["warning"] = m.Warning
	}
	return out
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
