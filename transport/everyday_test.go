package transport

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store/sqlite"
)

// everydayNode is a node with blocks and bots' stores wired, as heraldd
// wires them, on a real SQLite file.
func everydayNode(t *testing.T) *testNode {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	b := memory.New()
	svc := service.New(service.Config{Store: db, Bus: b, Sealer: sealer, Moderation: db, Bots: db,
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
		Limits:       service.Limits{DirectPerSecond: 1 << 20, GroupPerSecond: 1 << 20, ChannelPerSecond: 1 << 20, SignupsPerHourPerAddr: 1 << 20, JoinsPerMinutePerChat: 1 << 20}})
	srv := New(svc, b, nil, Limits{})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return &testNode{svc: svc, srv: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws"}
}

// everydayChats is one chat of each kind with a message in it, and a
// caller of each standing in each.
type everydayChats struct {
	owner, admin, member, outsider, blocked service.Caller
	direct, group, channel, blockedDirect   herald.Chat
	msg                                     map[int64]int64 // chat → a live message's seq
}

func setupEveryday(t *testing.T, n *testNode) *everydayChats {
	t.Helper()
	ctx := context.Background()
	e := &everydayChats{msg: map[int64]int64{}}
	caller := func(name string) service.Caller {
		c, _ := n.signup(t, name)
		c.Username = name
		return c
	}
	e.owner, e.admin, e.member, e.outsider, e.blocked = caller("owner"), caller("deputy"), caller("member"), caller("outsider"), caller("blocker")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	send := func(c service.Caller, p service.Peer) herald.Chat {
		m, err := n.svc.Send(ctx, c, service.SendParams{Peer: p, Text: "hello @member"})
		must(err)
		e.msg[m.ChatID] = m.Seq
		return herald.Chat{ID: m.ChatID}
	}
	e.direct = send(e.owner, service.Peer{Username: "member"})
	var err error
	e.group, err = n.svc.CreateGroup(ctx, e.owner, "g", []string{"deputy", "member"})
	must(err)
	must(n.svc.SetRole(ctx, e.owner, e.group.ID, "deputy", true))
	send(e.member, service.Peer{ChatID: e.group.ID})
	e.channel, err = n.svc.CreateChannel(ctx, e.owner, service.ChannelParams{Username: "newsroom", Title: "News"})
	must(err)
	for _, c := range []service.Caller{e.admin, e.member} {
		_, err := n.svc.Join(ctx, c, "newsroom", "")
		must(err)
	}
	must(n.svc.SetRole(ctx, e.owner, e.channel.ID, "deputy", true))
	send(e.owner, service.Peer{ChatID: e.channel.ID})
	// A direct chat whose other person then blocks the caller.
	e.blockedDirect = send(e.owner, service.Peer{Username: "blocker"})
	must(n.svc.Block(ctx, e.blocked, "owner", true))
	return e
}

// TestReactPermissions: who may react, per chat kind and standing.
func TestReactPermissions(t *testing.T) {
	n := everydayNode(t)
	e := setupEveryday(t, n)
	ctx := context.Background()
	tests := []struct {
		name string
		who  service.Caller
		chat herald.Chat
		want herald.Kind // "" for allowed
	}{
		{"direct: sender", e.owner, e.direct, ""},
		{"direct: recipient", e.member, e.direct, ""},
		{"direct: outsider", e.outsider, e.direct, herald.NotFound},
		{"direct: blocked by the other", e.owner, e.blockedDirect, herald.PermissionDenied},
		{"group: owner", e.owner, e.group, ""},
		{"group: admin", e.admin, e.group, ""},
		{"group: member", e.member, e.group, ""},
		{"group: outsider", e.outsider, e.group, herald.NotFound},
		{"channel: owner", e.owner, e.channel, ""},
		{"channel: admin", e.admin, e.channel, ""},
		{"channel: subscriber", e.member, e.channel, ""},
		{"channel: not subscribed", e.outsider, e.channel, herald.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := n.svc.React(ctx, tc.who, tc.chat.ID, e.msg[tc.chat.ID], "👍")
			if tc.want != "" {
				if !herald.IsKind(err, tc.want) {
					t.Fatalf("React = %v, want %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("React: %v", err)
			}
			if len(rs) != 1 || rs[0].Emoji != "👍" || !rs[0].Mine {
				t.Fatalf("React = %+v, want 👍 chosen", rs)
			}
			// Again takes it off.
			if rs, err := n.svc.React(ctx, tc.who, tc.chat.ID, e.msg[tc.chat.ID], "👍"); err != nil || len(rs) != 0 {
				t.Fatalf("React again = %+v, %v; want none", rs, err)
			}
		})
	}
}

// TestPinPermissions: admins pin in groups and channels, both people in
// a direct chat.
func TestPinPermissions(t *testing.T) {
	n := everydayNode(t)
	e := setupEveryday(t, n)
	ctx := context.Background()
	tests := []struct {
		name string
		who  service.Caller
		chat herald.Chat
		want herald.Kind
	}{
		{"direct: sender", e.owner, e.direct, ""},
		{"direct: recipient", e.member, e.direct, ""},
		{"direct: outsider", e.outsider, e.direct, herald.NotFound},
		{"direct: blocked by the other", e.owner, e.blockedDirect, herald.PermissionDenied},
		{"group: owner", e.owner, e.group, ""},
		{"group: admin", e.admin, e.group, ""},
		{"group: member", e.member, e.group, herald.PermissionDenied},
		{"group: outsider", e.outsider, e.group, herald.NotFound},
		{"channel: owner", e.owner, e.channel, ""},
		{"channel: admin", e.admin, e.channel, ""},
		{"channel: subscriber", e.member, e.channel, herald.PermissionDenied},
		{"channel: not subscribed", e.outsider, e.channel, herald.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := e.msg[tc.chat.ID]
			for _, on := range []bool{true, false} {
				err := n.svc.Pin(ctx, tc.who, tc.chat.ID, seq, on)
				if tc.want != "" {
					if !herald.IsKind(err, tc.want) {
						t.Fatalf("Pin(%v) = %v, want %s", on, err, tc.want)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Pin(%v): %v", on, err)
				}
				pins, err := n.svc.Pins(ctx, tc.who, service.Peer{ChatID: tc.chat.ID})
				if err != nil || (len(pins) == 1) != on || (on && (pins[0].Seq != seq || !pins[0].Pinned)) {
					t.Fatalf("after Pin(%v): Pins = %+v, %v", on, pins, err)
				}
			}
		})
	}
}

// TestReactionsInHistory: counts, who reacted (not in channels), my own,
// the server's set, the per-person cap, and a deleted message's
// reactions and pin going with it.
func TestReactionsInHistory(t *testing.T) {
	n := everydayNode(t)
	e := setupEveryday(t, n)
	ctx := context.Background()
	g, seq := e.group.ID, e.msg[e.group.ID]
	for _, r := range []struct {
		who   service.Caller
		emoji string
		want  herald.Kind
	}{
		{e.owner, "👍", ""}, {e.admin, "👍", ""}, {e.admin, "🔥", ""}, {e.admin, "❤️", ""},
		{e.admin, "🎉", herald.Invalid},  // a fourth of one person's
		{e.member, "🦄", herald.Invalid}, // not in the server's set
		{e.member, strings.Repeat("x", 1000), herald.Invalid},
	} {
		_, err := n.svc.React(ctx, r.who, g, seq, r.emoji)
		if (r.want == "" && err != nil) || (r.want != "" && !herald.IsKind(err, r.want)) {
			t.Fatalf("React(%s, %.8q) = %v, want %q", r.who.Username, r.emoji, err, r.want)
		}
	}
	hist := func(c service.Caller, chat int64) herald.Message {
		t.Helper()
		ms, err := n.svc.History(ctx, c, service.Peer{ChatID: chat}, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Seq == e.msg[chat] {
				return m
			}
		}
		t.Fatalf("message %d not in history", e.msg[chat])
		return herald.Message{}
	}
	m := hist(e.owner, g)
	if len(m.Reactions) != 3 || m.Reactions[0].Emoji != "👍" || m.Reactions[0].Count != 2 || !m.Reactions[0].Mine ||
		len(m.Reactions[0].Users) != 2 || m.Reactions[1].Mine || m.Reactions[1].Count != 1 {
		t.Fatalf("owner's view: %+v", m.Reactions)
	}
	if d := e.direct.ID; !hist(e.member, d).MentionsMe || hist(e.owner, d).MentionsMe || hist(e.member, g).MentionsMe {
		t.Fatal("a message naming @member mentions the member, unless they sent it")
	}

	// A mention counts in the chat list until read, muted or not.
	if _, err := n.svc.Mute(ctx, e.member, service.Peer{ChatID: g}, true); err != nil {
		t.Fatal(err)
	}
	at, err := n.svc.Send(ctx, e.owner, service.SendParams{Peer: service.Peer{ChatID: g}, Text: "@member and @nobody_here, look"})
	if err != nil {
		t.Fatal(err)
	}
	mentions := func() int {
		ds, _, err := n.svc.Dialogs(ctx, e.member, herald.DialogCursor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Chat.ID == g {
				return d.UnreadMentions
			}
		}
		return -1
	}
	if got := mentions(); got != 1 {
		t.Fatalf("unread mentions = %d, want 1", got)
	}
	if _, err := n.svc.Read(ctx, e.member, service.Peer{ChatID: g}, at.Seq); err != nil {
		t.Fatal(err)
	}
	if got := mentions(); got != 0 {
		t.Fatalf("unread mentions after reading = %d, want 0", got)
	}

	// Channels count anonymously.
	ch := e.channel.ID
	if _, err := n.svc.React(ctx, e.member, ch, e.msg[ch], "🔥"); err != nil {
		t.Fatal(err)
	}
	if r := hist(e.owner, ch).Reactions; len(r) != 1 || r[0].Count != 1 || len(r[0].Users) != 0 || r[0].Mine {
		t.Fatalf("channel, owner's view: %+v", r)
	}
	if r := hist(e.member, ch).Reactions; len(r) != 1 || !r[0].Mine {
		t.Fatalf("channel, subscriber's view: %+v", r)
	}

	// Pinning posts a service message replying to the pinned one.
	if err := n.svc.Pin(ctx, e.admin, g, seq, true); err != nil {
		t.Fatal(err)
	}
	ms, _ := n.svc.History(ctx, e.member, service.Peer{ChatID: g}, 0, 50)
	last := ms[len(ms)-1]
	if !last.Service || last.ReplyTo != seq || !strings.Contains(last.Text, "@deputy pinned “hello @member”") {
		t.Fatalf("after pinning, the last message is %+v", last)
	}
	if _, err := n.svc.React(ctx, e.member, g, last.Seq, "👍"); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("reacting to a service message: %v", err)
	}

	// Deleted for everyone: its reactions and pin go with it.
	if err := n.svc.Delete(ctx, e.member, g, []int64{seq}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.React(ctx, e.owner, g, seq, "👍"); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("reacting to a deleted message: %v", err)
	}
	if err := n.svc.Pin(ctx, e.owner, g, seq, true); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("pinning a deleted message: %v", err)
	}
	if pins, err := n.svc.Pins(ctx, e.owner, service.Peer{ChatID: g}); err != nil || len(pins) != 0 {
		t.Fatalf("pins after the delete: %+v, %v", pins, err)
	}
}
