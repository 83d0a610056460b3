package server_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// startLimited starts a node whose abuse limits are lax except where
// set overrides them.
func startLimited(t *testing.T, set func(*service.Limits)) *server.Node {
	t.Helper()
	l := lax
	set(&l)
	n, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: l,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// rateLimited fails the test unless err is RATE_LIMITED with a wait.
func rateLimited(t *testing.T, what string, err error) {
	t.Helper()
	var he *herald.Error
	if !errorsAs(err, &he) || he.Kind != herald.RateLimited || he.RetryAfter <= 0 {
		t.Fatalf("%s: %v; want RATE_LIMITED with a retry-after", what, err)
	}
}

// Issue 22, item 11: a forward of many messages paid one send token, so
// 30 forwards stored 3,000 messages against a limit of 10 a second. Each
// forwarded message now costs a token, spent before any is stored, and a
// refused batch stores nothing.
func TestForwardPaysPerMessage(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.GroupPerSecond = 1 }) // a burst of 2
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	var ids []int64
	for range 20 {
		ids = append(ids, send(t, alice, to(bobby.user.name), "to be forwarded").Id)
	}
	from := nextMessage(t, bobby).ChatId
	g, err := alice.CreateGroup(ctxT(t), "forwards", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	// One batch larger than the burst goes through from a full bucket…
	got, err := alice.Forward(ctxT(t), from, ids, &pb.Peer{ChatId: g.Id})
	if err != nil || len(got) != len(ids) {
		t.Fatalf("first forward: %d messages, %v", len(got), err)
	}
	// …and leaves the sender owing for it: the next batch is refused whole.
	_, err = alice.Forward(ctxT(t), from, ids, &pb.Peer{ChatId: g.Id})
	rateLimited(t, "second forward", err)
	_, err = alice.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "and a send"})
	rateLimited(t, "send after a forward of 20", err)
	h, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: g.Id}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(ids) {
		t.Fatalf("the group holds %d messages; want the first batch's %d only", len(h), len(ids))
	}
}

// A delete for everyone writes into every member's log per message, as a
// send does: it pays per message too.
func TestDeleteForEveryonePaysPerMessage(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.DirectPerSecond = 1 }) // a burst of 2
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	m1 := send(t, alice, to(bobby.user.name), "one")
	m2 := send(t, alice, to(bobby.user.name), "two") // the burst is spent
	err := alice.Delete(ctxT(t), m1.ChatId, []int64{m1.Id, m2.Id}, true)
	rateLimited(t, "delete for everyone after spending the burst", err)
	// Deleting for oneself touches only one's own log and stays free.
	if err := alice.Delete(ctxT(t), m1.ChatId, []int64{m1.Id}, false); err != nil {
		t.Fatalf("delete for me: %v", err)
	}
	var he *herald.Error
	errorsAs(err, &he)
	time.Sleep(he.RetryAfter)
	if err := alice.Delete(ctxT(t), m2.ChatId, []int64{m2.Id}, true); err != nil {
		t.Fatalf("delete for everyone after the wait: %v", err)
	}
}

// Issue 22, item 15: typing was not throttled, so 57 requests a second
// into a group of 1,000 made 57,000 frames a second. Now one notice per
// user and chat goes out every few seconds; the rest succeed quietly and
// reach no one.
func TestTypingIsThrottledQuietly(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	chat := send(t, alice, to(bobby.user.name), "hi").ChatId
	nextMessage(t, bobby)
	for i := range 50 {
		if err := alice.Typing(ctxT(t), chat); err != nil {
			t.Fatalf("typing %d: %v", i, err)
		}
	}
	// Bobby's events come in order on one topic: every typing notice that
	// went out is before this message.
	send(t, alice, to(bobby.user.name), "done typing")
	typing := 0
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-bobby.Events():
			if ev.Typing != nil {
				typing++
			}
			if ev.Update.GetNewMessage() == nil {
				continue
			}
			if typing != 1 {
				t.Fatalf("bobby saw %d typing notices for 50 requests; want 1", typing)
			}
			return
		case <-timeout:
			t.Fatal("no message after typing")
		}
	}
}

// Issue 22, item 14: one user created 2,500 groups a second. Creating
// groups, channels, invite links and bots now spends a creation token
// first, and refuses with the time to wait once they run out.
func TestCreationIsRateLimited(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.CreatesPerHour = 3 })
	alice := signup(t, n, "alice")
	for i := range 2 {
		if _, err := alice.CreateGroup(ctxT(t), fmt.Sprint("group ", i), nil); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
	}
	ch, err := alice.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Title: "news", Private: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CreateGroup(ctxT(t), "one too many", nil)
	rateLimited(t, "fourth creation", err)
	_, err = alice.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Title: "news 2", Private: true})
	rateLimited(t, "channel after the burst", err)
	err = alice.Call(ctxT(t), "channels.invite", &pb.InviteRequest{ChatId: ch.Id}, &pb.Invite{})
	rateLimited(t, "invite link after the burst", err)
	// Another user has their own allowance.
	bobby := signup(t, n, "bobby")
	if _, err := bobby.CreateGroup(ctxT(t), "bobby's", nil); err != nil {
		t.Fatal(err)
	}
}

// …and one user owns at most so many groups and channels, whatever the
// rate: the cap holds when creation is spread over months.
func TestOwnedChatsAreCapped(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.MaxOwnedChats = 3 })
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	var first *pb.Chat
	for i := range 2 {
		g, err := alice.CreateGroup(ctxT(t), fmt.Sprint("group ", i), []string{bobby.user.name})
		if err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
		first = cmp.Or(first, g)
	}
	if _, err := alice.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Title: "news", Private: true}); err != nil {
		t.Fatal(err)
	}
	_, err := alice.CreateGroup(ctxT(t), "fourth", nil)
	if !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("fourth owned chat: %v; want PERMISSION_DENIED", err)
	}
	_, err = alice.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Title: "news 2", Private: true})
	if !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("fourth owned chat, a channel: %v; want PERMISSION_DENIED", err)
	}
	// Direct chats do not count, and handing a group over frees a place.
	send(t, alice, to(bobby.user.name), "hi")
	if err := alice.Leave(ctxT(t), first.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateGroup(ctxT(t), "fourth, now third", nil); err != nil {
		t.Fatalf("after leaving one: %v", err)
	}
}

// A report is a stored row of up to 16 KiB and a moderator's time: one
// user may file only so many an hour.
func TestReportsAreRateLimited(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.ReportsPerHour = 2 })
	alice, pest := signup(t, n, "alice"), signup(t, n, "pest")
	report := func() error {
		return alice.Call(ctxT(t), "reports.create", &pb.ReportRequest{Username: pest.user.name, Reason: "spam", Evidence: strings.Repeat("x", 16<<10-1)}, &pb.Report{})
	}
	for i := range 2 {
		if err := report(); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	rateLimited(t, "third report", report())
}

// Issue 22, item 12: a member from before hears of one groups.add once,
// with everyone it added, instead of once per newcomer; and adding,
// removing and promoting members is rate-limited per user.
func TestMembershipChangesAreBatchedAndLimited(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.MemberChangesPerMinute = 2 })
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	g, err := alice.CreateGroup(ctxT(t), "crowd", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var want []int64
	for range 5 {
		u := signup(t, n, "newbie")
		names, want = append(names, u.user.name), append(want, u.user.id)
	}
	if err := alice.AddMembers(ctxT(t), g.Id, names); err != nil {
		t.Fatal(err)
	}
	// Bobby's log after the add: exactly one members_changed, naming all.
	send(t, alice, &pb.Peer{ChatId: g.Id}, "welcome")
	var changes []*pb.ChatMembership
	for {
		u := next(t, bobby, func(u *pb.Update) bool { return u.GetMembersChanged() != nil || isNew(u) })
		if u.GetNewMessage() != nil {
			break
		}
		changes = append(changes, u.GetMembersChanged())
	}
	if len(changes) != 1 || changes[0].Change != "joined" || fmt.Sprint(changes[0].UserIds) != fmt.Sprint(want) || changes[0].UserId != want[0] {
		t.Fatalf("bobby was told %v; want one joined naming %v", changes, want)
	}

	if err := alice.RemoveMembers(ctxT(t), g.Id, names[:2]); err != nil {
		t.Fatal(err)
	}
	rateLimited(t, "a third membership change in a minute", alice.AddMembers(ctxT(t), g.Id, names[:2]))
}

// Setting a chat's auto-delete timer posts a service message to every
// member: it costs a send, like any other message.
func TestAutoDeleteNoticesPayASend(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.GroupPerSecond = 1 }) // a burst of 2
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	g, err := alice.CreateGroup(ctxT(t), "timers", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	setTTL := func(h int64) error {
		return alice.Call(ctxT(t), "chats.set_ttl", &pb.SetTTLRequest{Peer: &pb.Peer{ChatId: g.Id}, TtlMs: h * 3600_000}, nil)
	}
	for h := range int64(2) {
		if err := setTTL(h + 1); err != nil {
			t.Fatal(err)
		}
	}
	rateLimited(t, "a third timer change at once", setTTL(3))
}

// A first message to a user created the direct chat, both memberships
// and their updates before the send rate was checked, so a sender over
// its rate still made a chat per stranger. The token is now spent first:
// a refused first send, or a refused timer on a new chat, creates nothing.
func TestRefusedFirstSendCreatesNoChat(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.DirectPerSecond = 1 }) // a burst of 2
	alice, bobby, carol, dave := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "carol"), signup(t, n, "dave")
	m := send(t, alice, to(bobby.user.name), "one")
	send(t, alice, to(bobby.user.name), "two") // the burst is spent
	_, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(carol.user.name), Text: "hi stranger"})
	rateLimited(t, "a first send over the rate", err)
	_, err = alice.Forward(ctxT(t), m.ChatId, []int64{m.Id}, to(carol.user.name))
	rateLimited(t, "a first forward over the rate", err)
	err = alice.Call(ctxT(t), "chats.set_ttl", &pb.SetTTLRequest{Peer: to(dave.user.name), TtlMs: 3600_000}, nil)
	rateLimited(t, "a timer on a new chat over the rate", err)
	for _, d := range []*device{carol, dave} {
		chats, err := d.Chats(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(chats) != 0 {
			t.Fatalf("%s has %d chats after refused writes; want none", d.user.name, len(chats))
		}
	}
	chats, err := alice.Chats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(chats) != 1 {
		t.Fatalf("alice has %d chats; want only the one with bobby", len(chats))
	}
}

// Clearing a direct chat for both sides writes into both logs as a
// delete for everyone does: it pays a send token, spent before anything
// is deleted. Clearing for oneself stays free.
func TestClearForEveryonePaysASend(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.DirectPerSecond = 1 }) // a burst of 2
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	send(t, alice, to(bobby.user.name), "one")
	send(t, alice, to(bobby.user.name), "two") // the burst is spent
	clear := func(everyone bool) error {
		var r pb.ClearResult
		return alice.Call(ctxT(t), "messages.clear", &pb.ClearRequest{Peer: to(bobby.user.name), ForEveryone: everyone}, &r)
	}
	rateLimited(t, "clear for everyone after spending the burst", clear(true))
	h, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("bobby sees %d messages after a refused clear; want 2", len(h))
	}
	if err := clear(false); err != nil {
		t.Fatalf("clear for me: %v", err)
	}
}

// A login added a device row with no limit, so one password could make
// rows without end. An account has at most MaxDevices; a login past it
// is refused with a sentence saying to revoke one, and revoking frees a
// place.
func TestDevicesPerAccountAreCapped(t *testing.T) {
	n := startLimited(t, func(l *service.Limits) { l.MaxDevices = 3 })
	alice := signup(t, n, "alice")
	login(t, n, alice.user)
	extra := login(t, n, alice.user)
	c := newClient(t, n.URL(), "", false, -1)
	_, err := c.Login(ctxT(t), &pb.LoginRequest{Username: alice.user.name, Password: password, DeviceName: "fourth"})
	if !herald.IsKind(err, herald.PermissionDenied) || !strings.Contains(err.Error(), "revoke") {
		t.Fatalf("a fourth device: %v; want PERMISSION_DENIED saying to revoke one", err)
	}
	devs, err := alice.Devices(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 {
		t.Fatalf("alice has %d devices; want 3", len(devs))
	}
	if err := extra.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	login(t, n, alice.user)
}
