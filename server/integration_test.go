package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

func TestTwoUsersChatBothWays(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")

	sent := send(t, alice, to(bobby.user.name), "hello bobby")
	got := nextMessage(t, bobby)
	if got.Text != "hello bobby" || got.From != alice.user.name || got.Id != sent.Id || got.ChatId != sent.ChatId {
		t.Fatalf("bobby got %v, alice sent %v", got, sent)
	}
	reply := send(t, bobby, to(alice.user.name), "hi alice")
	if reply.ChatId != sent.ChatId || reply.Id != sent.Id+1 {
		t.Fatalf("reply %d/%d, want chat %d id %d: one direct chat per pair, gap-free ids", reply.ChatId, reply.Id, sent.ChatId, sent.Id+1)
	}
	// alice's own device sees her message too, then bobby's reply.
	if m := nextMessage(t, alice); m.Text != "hello bobby" {
		t.Fatalf("alice's first update is %q", m.Text)
	}
	if m := nextMessage(t, alice); m.Text != "hi alice" || m.From != bobby.user.name {
		t.Fatalf("alice got %v", m)
	}
	hist, err := alice.History(ctxT(t), &pb.HistoryRequest{Peer: to(bobby.user.name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Text != "hello bobby" || hist[1].Text != "hi alice" {
		t.Fatalf("history oldest first: %v", hist)
	}
}

func TestOutsiderCannotReadOrPost(t *testing.T) {
	n := startNode(t, "")
	alice, bobby, eve := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "eveil")
	direct := send(t, alice, to(bobby.user.name), "private words")
	group, err := alice.CreateGroup(ctxT(t), "secret plans", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	send(t, alice, &pb.Peer{ChatId: group.Id}, "group words")

	for _, chat := range []int64{direct.ChatId, group.Id, 999999} {
		t.Run(fmt.Sprint(chat), func(t *testing.T) {
			p := &pb.Peer{ChatId: chat}
			calls := map[string]func() (any, error){
				"history": func() (any, error) { return eve.History(ctxT(t), &pb.HistoryRequest{Peer: p}) },
				"send":    func() (any, error) { return eve.Send(ctxT(t), &pb.SendRequest{Peer: p, Text: "let me in"}) },
				"get":     func() (any, error) { return eve.GetChat(ctxT(t), p) },
				"read":    func() (any, error) { return eve.Read(ctxT(t), p, 0) },
				"edit":    func() (any, error) { return eve.Edit(ctxT(t), chat, 1, "x") },
				"delete":  func() (any, error) { return nil, eve.Delete(ctxT(t), chat, []int64{1}, true) },
				"forward": func() (any, error) { return eve.Forward(ctxT(t), chat, []int64{1}, to(eve.user.name)) },
				"add":     func() (any, error) { return nil, eve.AddMembers(ctxT(t), chat, []string{eve.user.name}) },
				"typing":  func() (any, error) { return nil, eve.Typing(ctxT(t), chat) },
			}
			for name, call := range calls {
				res, err := call()
				k := herald.ErrorKind(err)
				if err == nil || (k != herald.NotFound && k != herald.PermissionDenied) {
					t.Errorf("%s: got %v, %v; want NOT_FOUND or PERMISSION_DENIED", name, res, err)
				}
				if strings.Contains(fmt.Sprint(res, err), "words") {
					t.Errorf("%s leaked content: %v %v", name, res, err)
				}
			}
		})
	}
	// Nothing eve tried reached the chat.
	hist, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: group.Id}})
	if err != nil || len(hist) != 1 {
		t.Fatalf("group history %v, %v", hist, err)
	}
	// And eve's chat list shows neither chat.
	ds, err := eve.Chats(ctxT(t))
	if err != nil || len(ds) != 0 {
		t.Fatalf("eve's chats: %v, %v", ds, err)
	}
}

func TestOfflineDeviceCatchesUpExactlyOnce(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	send(t, alice, to(bobby.user.name), "before")
	nextMessage(t, bobby)
	pts := bobby.Pts()
	bobby.Close()

	const missed = 120
	for i := range missed {
		send(t, alice, to(bobby.user.name), fmt.Sprintf("missed %d", i))
	}
	// bobby comes back with his saved position.
	back := &device{Client: newClient(t, n.URL(), bobby.token, true, pts), user: bobby.user}
	for i := range missed {
		m := nextMessage(t, back)
		if want := fmt.Sprintf("missed %d", i); m.Text != want {
			t.Fatalf("message %d: got %q, want %q", i, m.Text, want)
		}
	}
	// Nothing more, and no duplicate arrives with the next live message.
	send(t, alice, to(bobby.user.name), "live")
	if m := nextMessage(t, back); m.Text != "live" {
		t.Fatalf("after catching up got %q, want the live message", m.Text)
	}
}

func TestAllDevicesSeeEverything(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	alice2, bobby2 := login(t, n, alice.user), login(t, n, bobby.user)
	devices := []*device{alice, alice2, bobby, bobby2}

	m1 := send(t, alice, to(bobby.user.name), "from alice's phone")
	m2 := send(t, alice2, to(bobby.user.name), "from alice's laptop")
	for _, d := range devices {
		for _, want := range []*pb.Message{m1, m2} {
			if got := nextMessage(t, d); got.Id != want.Id || got.Text != want.Text {
				t.Fatalf("%s device got %d %q, want %d %q", d.user.name, got.Id, got.Text, want.Id, want.Text)
			}
		}
	}

	// An edit reaches every device.
	if _, err := alice.Edit(ctxT(t), m1.ChatId, m1.Id, "edited"); err != nil {
		t.Fatal(err)
	}
	for _, d := range devices {
		u := next(t, d, func(u *pb.Update) bool { return u.GetEditMessage() != nil })
		if e := u.GetEditMessage(); e.Text != "edited" || e.EditedAt == 0 || e.Id != m1.Id {
			t.Fatalf("%s: edit update %v", d.user.name, e)
		}
	}
	// bobby reads on one device: his other device learns it (inbox), alice's
	// devices see the read receipt (outbox).
	if _, err := bobby2.Read(ctxT(t), to(alice.user.name), 0); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bobby, bobby2} {
		u := next(t, d, func(u *pb.Update) bool { return u.GetReadInbox() != nil })
		if u.GetReadInbox().MaxId != m2.Id {
			t.Fatalf("read inbox %v", u)
		}
	}
	for _, d := range []*device{alice, alice2} {
		u := next(t, d, func(u *pb.Update) bool { return u.GetReadOutbox() != nil })
		if r := u.GetReadOutbox(); r.MaxId != m2.Id || r.UserId != bobby.user.id {
			t.Fatalf("read outbox %v", r)
		}
	}
	// A delete for everyone reaches every device, and history forgets it.
	if err := alice2.Delete(ctxT(t), m1.ChatId, []int64{m1.Id}, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range devices {
		u := next(t, d, func(u *pb.Update) bool { return u.GetDeleteMessages() != nil })
		if ids := u.GetDeleteMessages().Ids; len(ids) != 1 || ids[0] != m1.Id {
			t.Fatalf("delete update %v", u)
		}
	}
	hist, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name)})
	if err != nil || len(hist) != 1 || hist[0].Id != m2.Id {
		t.Fatalf("history after delete: %v, %v", hist, err)
	}
	// Bobby may not delete alice's message for everyone, only for himself.
	if err := bobby.Delete(ctxT(t), m2.ChatId, []int64{m2.Id}, true); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("bobby deleting alice's message for everyone: %v", err)
	}
	if err := bobby.Delete(ctxT(t), m2.ChatId, []int64{m2.Id}, false); err != nil {
		t.Fatal(err)
	}
	if h, _ := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name)}); len(h) != 0 {
		t.Fatalf("bobby still sees a message he deleted for himself: %v", h)
	}
	if h, _ := alice.History(ctxT(t), &pb.HistoryRequest{Peer: to(bobby.user.name)}); len(h) != 1 {
		t.Fatalf("alice lost a message bobby deleted only for himself: %v", h)
	}
}

func TestRetriedSendIsStoredOnce(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	req := &pb.SendRequest{Peer: to(bobby.user.name), Text: "once", RandomId: 424242}
	a, err := alice.Send(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := alice.Send(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Id != b.Id {
		t.Fatalf("retry stored a second message: %d and %d", a.Id, b.Id)
	}
	hist, _ := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name)})
	if len(hist) != 1 {
		t.Fatalf("history has %d messages", len(hist))
	}
}

func TestGroupRoles(t *testing.T) {
	n := startNode(t, "")
	owner, member, carol := signup(t, n, "owner"), signup(t, n, "member"), signup(t, n, "carol")
	g, err := owner.CreateGroup(ctxT(t), "Team", []string{member.user.name})
	if err != nil {
		t.Fatal(err)
	}
	if g.MemberCount != 2 || g.Role != "owner" {
		t.Fatalf("created %v", g)
	}
	if err := member.AddMembers(ctxT(t), g.Id, []string{carol.user.name}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("member adding: %v", err)
	}
	if err := owner.Call(ctxT(t), "groups.set_role", &pb.SetRoleRequest{ChatId: g.Id, Username: member.user.name, Admin: true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := member.AddMembers(ctxT(t), g.Id, []string{carol.user.name}); err != nil {
		t.Fatalf("admin adding: %v", err)
	}
	next(t, carol, func(u *pb.Update) bool { return u.GetChatJoined().GetChatId() == g.Id })
	m := send(t, carol, &pb.Peer{ChatId: g.Id}, "hi team")
	// An admin deletes a member's message for everyone.
	if err := member.Delete(ctxT(t), g.Id, []int64{m.Id}, true); err != nil {
		t.Fatalf("admin deleting for everyone: %v", err)
	}
	if err := member.RemoveMembers(ctxT(t), g.Id, []string{owner.user.name}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("admin removing the owner: %v", err)
	}
	if err := owner.RemoveMembers(ctxT(t), g.Id, []string{carol.user.name}); err != nil {
		t.Fatal(err)
	}
	next(t, carol, func(u *pb.Update) bool { return u.GetChatLeft().GetChatId() == g.Id })
	if _, err := carol.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "still here?"}); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("removed member sending: %v", err)
	}
	if err := member.Leave(ctxT(t), g.Id); err != nil {
		t.Fatal(err)
	}
	info, err := owner.GetChat(ctxT(t), &pb.Peer{ChatId: g.Id})
	if err != nil || info.MemberCount != 1 || len(info.Members) != 1 {
		t.Fatalf("after leave: %v, %v", info, err)
	}
}

func TestChatListUnreadCounts(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	send(t, alice, to(bobby.user.name), "one")
	send(t, alice, to(bobby.user.name), "two")
	ds, err := bobby.Chats(ctxT(t))
	if err != nil || len(ds) != 1 {
		t.Fatalf("chats %v, %v", ds, err)
	}
	if ds[0].Unread != 2 || ds[0].Last.GetText() != "two" || ds[0].Chat.Peer.GetUsername() != alice.user.name {
		t.Fatalf("dialog %v", ds[0])
	}
	if ds, _ := alice.Chats(ctxT(t)); ds[0].Unread != 0 {
		t.Fatalf("alice's own messages count as unread: %v", ds[0])
	}
	bobby.Read(ctxT(t), to(alice.user.name), 0)
	if ds, _ := bobby.Chats(ctxT(t)); ds[0].Unread != 0 {
		t.Fatalf("after read: %v", ds[0])
	}
	if ds, _ := alice.Chats(ctxT(t)); ds[0].PeerReadId != 2 {
		t.Fatalf("alice does not see bobby read her messages: %v", ds[0])
	}
}

func TestTypingIsPushedNotStored(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	m := send(t, alice, to(bobby.user.name), "hi")
	nextMessage(t, bobby)
	ptsBefore, _ := bobby.State(ctxT(t))
	if err := alice.Typing(ctxT(t), m.ChatId); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-bobby.Events():
			if ev.Typing == nil {
				continue
			}
			if ev.Typing.ChatId != m.ChatId || ev.Typing.Username != alice.user.name {
				t.Fatalf("typing %v", ev.Typing)
			}
			if pts, _ := bobby.State(ctxT(t)); pts != ptsBefore {
				t.Fatalf("typing wrote to the update log: pts %d → %d", ptsBefore, pts)
			}
			return
		case <-timeout:
			t.Fatal("no typing notice")
		}
	}
}

func TestDeviceRevocation(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	laptop := login(t, n, alice.user)
	devs, err := alice.Devices(ctxT(t))
	if err != nil || len(devs) != 2 {
		t.Fatalf("devices %v, %v", devs, err)
	}
	var laptopID int64
	for _, d := range devs {
		if !d.Current {
			laptopID = d.Id
		}
	}
	if err := alice.RevokeDevice(ctxT(t), laptopID); err != nil {
		t.Fatal(err)
	}
	// The laptop's live connection closes at once and it cannot come back.
	select {
	case _, ok := <-laptop.Events():
		for ok {
			_, ok = <-laptop.Events()
		}
	case <-time.After(20 * time.Second):
		t.Fatal("revoked device still connected")
	}
	if !herald.IsKind(laptop.Err(), herald.Unauthenticated) {
		t.Fatalf("revoked client's error: %v", laptop.Err())
	}
	c, _ := client.New(client.Options{Server: n.URL(), Token: laptop.token})
	if err := c.Connect(ctxT(t)); !herald.IsKind(err, herald.Unauthenticated) {
		t.Fatalf("revoked token reconnecting: %v", err)
	}
	if err := alice.RevokeDevice(ctxT(t), 424242); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("revoking someone else's device: %v", err)
	}
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	send(t, alice, to(bobby.user.name), "before restart")
	nextMessage(t, bobby)
	url := n.URL()
	addr := n.Addr()
	n.Shutdown(context.Background())

	n2 := startNodeAt(t, dir, addr)
	if n2.URL() != url {
		t.Fatalf("restarted on %s, want %s", n2.URL(), url)
	}
	// alice's client reconnects by itself; her send is retried until then.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := alice.Send(ctx, &pb.SendRequest{Peer: to(bobby.user.name), Text: "after restart"}); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, bobby); m.Text != "after restart" {
		t.Fatalf("bobby got %q", m.Text)
	}
}

func TestBadRequestsGetErrors(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	anon := newClient(t, n.URL(), "", false, -1)
	tests := []struct {
		name string
		call func() error
		kind herald.Kind
	}{
		{"empty text", func() error {
			_, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: "  "})
			return err
		}, herald.Invalid},
		{"too long", func() error {
			_, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: strings.Repeat("é", herald.MaxTextRunes+1)})
			return err
		}, herald.TooLarge},
		{"unknown user", func() error {
			_, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to("nobody12"), Text: "x"})
			return err
		}, herald.NotFound},
		{"no peer", func() error { _, err := alice.Send(ctxT(t), &pb.SendRequest{Text: "x"}); return err }, herald.Invalid},
		{"reply to missing", func() error {
			_, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: "x", ReplyTo: 99})
			return err
		}, herald.NotFound},
		{"unknown method", func() error { return alice.Call(ctxT(t), "messages.teleport", &pb.Empty{}, nil) }, herald.NotFound},
		{"taken username", func() error {
			_, err := anon.Signup(ctxT(t), &pb.SignupRequest{Username: bobby.user.name, Password: password})
			return err
		}, herald.AlreadyExists},
		{"bad username", func() error {
			_, err := anon.Signup(ctxT(t), &pb.SignupRequest{Username: "a__b", Password: password})
			return err
		}, herald.Invalid},
		{"short password", func() error {
			_, err := anon.Signup(ctxT(t), &pb.SignupRequest{Username: "shorty", Password: "x"})
			return err
		}, herald.Invalid},
		{"wrong password", func() error {
			_, err := anon.Login(ctxT(t), &pb.LoginRequest{Username: bobby.user.name, Password: "wrong password"})
			return err
		}, herald.Unauthenticated},
		{"negative pts", func() error { return alice.Call(ctxT(t), "updates.difference", &pb.DifferenceRequest{Pts: -1}, nil) }, herald.Invalid},
		{"empty group title", func() error { _, err := alice.CreateGroup(ctxT(t), " ", nil); return err }, herald.Invalid},
		{"edit missing message", func() error { _, err := alice.Edit(ctxT(t), 1, 99, "x"); return err }, herald.NotFound},
		{"second login on one connection", func() error {
			_, err := alice.Login(ctxT(t), &pb.LoginRequest{Username: alice.user.name, Password: password})
			return err
		}, herald.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !herald.IsKind(err, tt.kind) {
				t.Fatalf("got %v, want %s", err, tt.kind)
			}
			if herald.ErrorMessage(err) == "" || herald.ErrorMessage(err) == "internal error" {
				t.Fatalf("no sentence for a person: %v", err)
			}
		})
	}
	// The connection that made all these mistakes still works.
	send(t, alice, to(bobby.user.name), "still fine")
}

func TestLoginThrottling(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	anon := newClient(t, n.URL(), "", false, -1)
	var err error
	for range 10 {
		_, err = anon.Login(ctxT(t), &pb.LoginRequest{Username: alice.user.name, Password: "not the password"})
		if herald.IsKind(err, herald.RateLimited) {
			break
		}
	}
	var he *herald.Error
	if !herald.IsKind(err, herald.RateLimited) || !errorsAs(err, &he) || he.RetryAfter <= 0 {
		t.Fatalf("after repeated failures: %v", err)
	}
	// Even the right password is refused while throttled.
	if _, err := anon.Login(ctxT(t), &pb.LoginRequest{Username: alice.user.name, Password: password}); !herald.IsKind(err, herald.RateLimited) {
		t.Fatalf("right password while throttled: %v", err)
	}
}
