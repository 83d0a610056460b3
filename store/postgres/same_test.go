package postgres_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/internal/pgtest"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/postgres"
	"github.com/heraldim/herald/store/sqlite"
)

// TestSameAsSQLite runs one script of calls through every method of the
// Store and Moderation interfaces, channels and timers included (which
// storetest does not cover), on SQLite and on PostgreSQL, and requires the
// same answers from both: the same results, updates, pts, views and error
// kinds.
func TestSameAsSQLite(t *testing.T) {
	pg := open(t, pgtest.Schema(t), postgres.Options{})
	defer pg.Close()
	lite, err := sqlite.Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	want := script(t, lite)
	t.Logf("%d calls", len(want))
	got := script(t, pg)
	if len(got) != len(want) {
		t.Errorf("PostgreSQL made %d calls, SQLite %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("call %d differs:\npostgres: %s\nsqlite:   %s", i, got[i], want[i])
		}
	}
}

// script drives s through a fixed story and returns every answer,
// rendered. Calls that fail on purpose come last: PostgreSQL spends an
// identity value on a refused insert and SQLite does not, so ids would
// differ after one.
func script(t *testing.T, s store.Store) []string {
	ctx := t.Context()
	var out []string
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tick := func() time.Time { clock = clock.Add(time.Second); return clock }
	rec := func(name string, vals ...any) {
		var b strings.Builder
		b.WriteString(name)
		for _, v := range vals {
			b.WriteString(" ")
			if err, ok := v.(error); ok || v == nil {
				if err != nil {
					fmt.Fprintf(&b, "error(%s: %s)", herald.ErrorKind(err), herald.ErrorMessage(err))
				} else {
					b.WriteString("nil")
				}
				continue
			}
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b.Write(j)
		}
		out = append(out, b.String())
	}

	// Accounts.
	rec("CreateInvite", s.CreateInvite(ctx, "inv", tick()))
	var users []herald.User
	for i, name := range []string{"alice", "bobby", "carol", "david", "erinn", "frank"} {
		invite := ""
		if i == 1 {
			invite = "inv"
		}
		u, err := s.CreateUser(ctx, herald.User{Username: name, DisplayName: strings.ToUpper(name), CreatedAt: tick()}, []byte("hash "+name), invite)
		rec("CreateUser", u, err)
		users = append(users, u)
	}
	a, b, c, d, e, f := users[0].ID, users[1].ID, users[2].ID, users[3].ID, users[4].ID, users[5].ID
	u, hash, err := s.UserByName(ctx, "carol")
	rec("UserByName", u, hash, err)
	us, err := s.Users(ctx, []int64{a, c, 999})
	rec("Users", us, err)
	dev, err := s.CreateDevice(ctx, herald.Device{UserID: a, Name: "phone", CreatedAt: tick(), LastSeen: clock}, []byte{1, 2})
	rec("CreateDevice", dev, err)
	dev2, err := s.CreateDevice(ctx, herald.Device{UserID: a, Name: "laptop", CreatedAt: tick(), LastSeen: clock}, []byte{3, 4})
	rec("CreateDevice", dev2, err)
	rec("TouchDevice", s.TouchDevice(ctx, dev.ID, tick()))
	got, err := s.DeviceByToken(ctx, []byte{1, 2})
	rec("DeviceByToken", got, err)
	rec("DeleteDevice", s.DeleteDevice(ctx, a, dev2.ID))
	devs, err := s.Devices(ctx, a)
	rec("Devices", devs, err)

	// Direct chats, groups and their members.
	ab, ups, err := s.DirectChat(ctx, b, a, true, tick())
	rec("DirectChat", ab, ups, err)
	self, ups, err := s.DirectChat(ctx, c, c, true, tick())
	rec("DirectChat(self)", self, ups, err)
	g, ups, err := s.CreateGroup(ctx, herald.Chat{Title: "group", CreatedBy: a, CreatedAt: tick()}, []int64{b, c, b})
	rec("CreateGroup", g, ups, err)
	ups, err = s.AddMembers(ctx, g.ID, a, []int64{d, e, d, b}, herald.RoleMember, tick())
	rec("AddMembers", ups, err)
	ups, err = s.SetRole(ctx, g.ID, a, d, herald.RoleAdmin, tick())
	rec("SetRole", ups, err)
	ups, err = s.RemoveMembers(ctx, g.ID, a, []int64{e}, tick())
	rec("RemoveMember", ups, err)
	ms, err := s.Members(ctx, g.ID)
	rec("Members", ms, err)

	// Messages, with every field a message has.
	send := func(m herald.Message) herald.Message {
		m.SentAt = tick()
		got, ups, dup, err := s.AppendMessage(ctx, m)
		rec("AppendMessage", got, ups, dup, err)
		return got
	}
	send(herald.Message{ChatID: ab.ID, SenderID: a, RandomID: 11, Body: []byte("hi")})
	send(herald.Message{ChatID: ab.ID, SenderID: a, RandomID: 11, Body: []byte("retry")})
	send(herald.Message{ChatID: ab.ID, SenderID: b, Body: []byte{0, 0xff}, ReplyTo: 1, Fwd: &herald.Forward{UserID: c, ChatID: g.ID, Seq: 1}})
	for i := range 4 {
		send(herald.Message{ChatID: g.ID, SenderID: users[i%4].ID, Body: []byte(fmt.Sprint("g", i))})
	}
	m, ups, err := s.EditMessage(ctx, g.ID, 2, []byte("g1 edited"), tick())
	rec("EditMessage", m, ups, err)
	ups, err = s.DeleteMessages(ctx, c, g.ID, []int64{1, 3, 99}, false, tick())
	rec("DeleteMessages(me)", ups, err)
	ups, err = s.DeleteMessages(ctx, a, g.ID, []int64{4, 99}, true, tick())
	rec("DeleteMessages(everyone)", ups, err)
	ups, err = s.ReadHistory(ctx, b, g.ID, 100, tick())
	rec("ReadHistory", ups, err)
	ups, err = s.ReadHistory(ctx, b, g.ID, 2, tick())
	rec("ReadHistory(back)", ups, err)
	hist, err := s.History(ctx, c, g.ID, 0, 10)
	rec("History", hist, err)
	m, err = s.Message(ctx, c, g.ID, 2)
	rec("Message", m, err)

	// Channels: fan-out on read, names, views, invites.
	ch, ups, err := s.CreateChannel(ctx, herald.Chat{Title: "news", Username: "dailynews", Description: "d", Signatures: true, CreatedBy: a, CreatedAt: tick()})
	rec("CreateChannel", ch, ups, err)
	ch2, ups, err := s.CreateChannel(ctx, herald.Chat{Title: "private", CreatedBy: b, CreatedAt: tick()})
	rec("CreateChannel(no name)", ch2, ups, err)
	byName, err := s.ChatByName(ctx, "dailynews")
	rec("ChatByName", byName, err)
	_, err = s.ChatByName(ctx, "alice")
	rec("ChatByName(user)", err)
	ch.Title, ch.Description, ch.Signatures = "News", "daily", false
	rec("UpdateChat", s.UpdateChat(ctx, ch))
	ups, err = s.AddMembers(ctx, ch.ID, b, []int64{b, c, d}, herald.RoleMember, tick())
	rec("AddMembers(channel)", ups, err)
	rec("SetMuted", s.SetMuted(ctx, ch.ID, d, true))
	for _, id := range []int64{a, d} {
		bc, err := s.BroadcastChats(ctx, id)
		rec("BroadcastChats", bc, err)
	}
	for i := range 3 {
		send(herald.Message{ChatID: ch.ID, SenderID: a, Body: []byte(fmt.Sprint("post", i))})
	}
	rec("ViewPosts", s.ViewPosts(ctx, ch.ID, b, 2))
	rec("ViewPosts(again)", s.ViewPosts(ctx, ch.ID, b, 1))
	rec("ViewPosts", s.ViewPosts(ctx, ch.ID, c, 3))
	m, ups, err = s.EditMessage(ctx, ch.ID, 1, []byte("post0 edited"), tick())
	rec("EditMessage(channel)", m, ups, err)
	ups, err = s.DeleteMessages(ctx, a, ch.ID, []int64{3}, true, tick())
	rec("DeleteMessages(channel)", ups, err)
	ups, err = s.ReadHistory(ctx, c, ch.ID, 2, tick())
	rec("ReadHistory(channel)", ups, err)
	ups, err = s.SetRole(ctx, ch.ID, a, c, herald.RoleAdmin, tick())
	rec("SetRole(channel)", ups, err)
	ups, err = s.RemoveMembers(ctx, ch.ID, d, []int64{d}, tick())
	rec("RemoveMember(channel)", ups, err)
	cd, err := s.ChatDifference(ctx, ch.ID, 1, 10)
	rec("ChatDifference", cd, err)
	cd, err = s.ChatDifference(ctx, ch.ID, 0, 2)
	rec("ChatDifference(page)", cd, err)
	rec("CreateChatInvite", s.CreateChatInvite(ctx, "join", ch.ID, a, tick()))
	id, err := s.ChatInvite(ctx, "join")
	rec("ChatInvite", id, err)
	rec("RevokeChatInvite", s.RevokeChatInvite(ctx, ch.ID, "join"))
	_, err = s.ChatInvite(ctx, "join")
	rec("ChatInvite(revoked)", err)
	rec("RevokeChatInvite(again)", s.RevokeChatInvite(ctx, ch.ID, "join"))

	// A group turned broadcast.
	ups, err = s.MakeBroadcast(ctx, g.ID, tick())
	rec("MakeBroadcast", ups, err)
	ups, err = s.MakeBroadcast(ctx, g.ID, tick())
	rec("MakeBroadcast(again)", ups, err)
	send(herald.Message{ChatID: g.ID, SenderID: b, Body: []byte("after")})
	ups, err = s.AddMembers(ctx, g.ID, a, []int64{f}, herald.RoleMember, tick())
	rec("AddMembers(broadcast)", ups, err)

	// Timers: auto-delete, read-started timers, resealing, expiry.
	rec("SetChatTTL", s.SetChatTTL(ctx, ab.ID, time.Hour))
	gotChat, err := s.Chat(ctx, ab.ID)
	rec("Chat", gotChat, err)
	base := clock
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	for i, exp := range []int{30, 10, 20, 10} {
		send(herald.Message{ChatID: ab.ID, SenderID: a, Body: []byte(fmt.Sprint("ttl", i)), TTL: time.Minute, ExpiresAt: at(exp), SealedUntil: at(exp + 5)})
	}
	send(herald.Message{ChatID: g.ID, SenderID: a, Body: []byte("gttl"), TTL: time.Minute, ExpiresAt: at(10), SealedUntil: at(15)})
	waiting := []herald.Message{
		send(herald.Message{ChatID: ab.ID, SenderID: b, Body: []byte("w1"), TTL: time.Minute, ExpiresAt: at(7 * 86400), Waiting: true, SealedUntil: at(3600)}),
		send(herald.Message{ChatID: ab.ID, SenderID: b, Body: []byte("w2"), TTL: time.Minute, ExpiresAt: at(7 * 86400), Waiting: true, SealedUntil: at(1800)}),
	}
	send(herald.Message{ChatID: ab.ID, SenderID: a, Body: []byte("notice"), Service: true})
	wt, err := s.WaitingTimers(ctx, at(7200), 10)
	rec("WaitingTimers", wt, err)
	wt, err = s.WaitingTimers(ctx, at(2000), 10)
	rec("WaitingTimers(earlier)", wt, err)
	ut, err := s.UnreadTimers(ctx, ab.ID, a, 100)
	rec("UnreadTimers", ut, err)
	ut, err = s.UnreadTimers(ctx, ab.ID, b, 100)
	rec("UnreadTimers(sender)", ut, err)
	for i := range waiting {
		waiting[i].Body = []byte(fmt.Sprint("resealed", i))
		waiting[i].Waiting = false
		waiting[i].ExpiresAt = at(40 + i)
		waiting[i].SealedUntil = at(45)
	}
	ups, err = s.Reseal(ctx, waiting[:1], true, tick())
	rec("Reseal(announce)", ups, err)
	ups, err = s.Reseal(ctx, waiting[1:], false, tick())
	rec("Reseal", ups, err)
	ups, err = s.Reseal(ctx, []herald.Message{{ChatID: ch.ID, Seq: 3, Body: []byte("x")}}, true, tick())
	rec("Reseal(deleted)", ups, err)
	ups, n, err := s.ExpireMessages(ctx, at(25), 2)
	rec("ExpireMessages", ups, n, err)
	ups, n, err = s.ExpireMessages(ctx, at(25), 10)
	rec("ExpireMessages(rest)", ups, n, err)
	ups, n, err = s.ExpireMessages(ctx, at(25), 10)
	rec("ExpireMessages(none)", ups, n, err)
	ups, n, err = s.ExpireMessages(ctx, at(100), 10)
	rec("ExpireMessages(later)", ups, n, err)
	// A waiting timer already sealed until its own end cannot move.
	send(herald.Message{ChatID: ab.ID, SenderID: b, Body: []byte("w3"), TTL: time.Minute, ExpiresAt: at(9000), Waiting: true, SealedUntil: at(9000)})
	wt, err = s.WaitingTimers(ctx, at(100000), 10)
	rec("WaitingTimers(at its end)", wt, err)
	// A reseal of a timer no longer waiting changes nothing.
	ups, err = s.Reseal(ctx, []herald.Message{{ChatID: ab.ID, Seq: waiting[0].Seq, Body: []byte("late"), Waiting: true, ExpiresAt: at(99999)}}, true, tick())
	rec("Reseal(not waiting)", ups, err)
	rec("Checkpoint", s.Checkpoint(ctx))

	// Moderation.
	mod := s.(store.Moderation)
	rec("SetUserRole", mod.SetUserRole(ctx, f, herald.RoleModerator))
	rec("Suspend", mod.Suspend(ctx, a, at(5000), "spam", at(1)))
	devs, err = s.Devices(ctx, a)
	rec("Devices(suspended)", devs, err)
	rec("Suspend(other)", mod.Suspend(ctx, e, at(6000), "scam", at(2)))
	rec("Suspend(lift)", mod.Suspend(ctx, e, time.Time{}, "", at(3)))
	sus, err := mod.SuspendedSince(ctx, at(0))
	rec("SuspendedSince", sus, err)
	us, err = s.Users(ctx, []int64{a, e, f})
	rec("Users(moderated)", us, err)
	u, _, err = s.UserByName(ctx, "alice")
	rec("UserByName(suspended)", u, err)
	rec("SetTakedown", mod.SetTakedown(ctx, ch.ID, true, "illegal"))
	gotChat, err = s.Chat(ctx, ch.ID)
	rec("Chat(taken down)", gotChat, err)
	ds, err := s.Dialogs(ctx, c, herald.DialogCursor{}, 1000)
	rec("Dialogs(taken down)", ds, err)
	rec("SetTakedown(restore)", mod.SetTakedown(ctx, ch.ID, false, ""))
	rec("Block", mod.Block(ctx, b, c, true, tick()))
	rec("Block(again)", mod.Block(ctx, b, c, true, tick()))
	rec("Block(d)", mod.Block(ctx, b, d, true, tick()))
	rec("Block(off)", mod.Block(ctx, b, d, false, tick()))
	for _, p := range [][2]int64{{b, c}, {c, b}, {b, d}} {
		blocked, err := mod.Blocked(ctx, p[0], p[1])
		rec("Blocked", blocked, err)
	}
	for _, r := range []herald.Report{
		{ReporterID: b, Kind: herald.ReportMessage, TargetUser: a, TargetChat: g.ID, TargetSeq: 2, Reason: "spam", Note: "n", Evidence: []byte{0, 1}, CreatedAt: tick()},
		{ReporterID: c, Kind: herald.ReportMessage, TargetUser: a, TargetChat: g.ID, TargetSeq: 2, Reason: "scam", CreatedAt: tick()},
		{ReporterID: c, Kind: herald.ReportUser, TargetUser: d, Reason: "other", CreatedAt: tick()},
		{ReporterID: d, Kind: herald.ReportChat, TargetChat: ch.ID, Reason: "illegal", CreatedAt: tick()},
	} {
		got, err := mod.CreateReport(ctx, r)
		rec("CreateReport", got, err)
	}
	rec("ResolveReports", mod.ResolveReports(ctx, herald.ReportMessage, a, g.ID, 2, "resolved"))
	rec("ResolveReports(any seq)", mod.ResolveReports(ctx, herald.ReportChat, 0, ch.ID, 0, "dismissed"))
	for _, st := range []string{"", "open", "resolved"} {
		rs, err := mod.Reports(ctx, st, 10)
		rec("Reports", st, rs, err)
	}
	rs, err := mod.Reports(ctx, "", 2)
	rec("Reports(limit)", rs, err)
	r, err := mod.Report(ctx, 3)
	rec("Report", r, err)
	_, err = mod.Report(ctx, 99)
	rec("Report(missing)", err)
	for _, a := range []string{"takedown", "restore", "suspend"} {
		rec("AppendAudit", mod.AppendAudit(ctx, herald.AuditEntry{At: tick(), Operator: "console", Action: a, Target: "@x", Reason: "r"}))
	}
	audit, err := mod.Audit(ctx, 2)
	rec("Audit", audit, err)
	v, err := mod.Setting(ctx, "rules")
	rec("Setting(unset)", v, err)
	rec("SetSetting", mod.SetSetting(ctx, "rules", "be kind"))
	rec("SetSetting(again)", mod.SetSetting(ctx, "rules", "be kinder"))
	v, err = mod.Setting(ctx, "rules")
	rec("Setting", v, err)

	// What every user sees now.
	for _, u := range users {
		ds, err := s.Dialogs(ctx, u.ID, herald.DialogCursor{}, 1000)
		rec("Dialogs", ds, err)
		pts, err := s.Pts(ctx, u.ID)
		rec("Pts", pts, err)
		diff, err := s.Difference(ctx, u.ID, 0, 1000)
		rec("Difference", diff, err)
	}
	for _, chat := range []int64{ab.ID, g.ID, ch.ID} {
		hist, err := s.History(ctx, a, chat, 0, 100)
		rec("History", hist, err)
	}

	// Refusals, last (see above).
	_, err = s.CreateUser(ctx, herald.User{Username: "alice", CreatedAt: tick()}, []byte("h"), "")
	rec("CreateUser(taken)", err)
	_, err = s.CreateUser(ctx, herald.User{Username: "dailynews", CreatedAt: tick()}, []byte("h"), "")
	rec("CreateUser(channel's name)", err)
	_, err = s.CreateUser(ctx, herald.User{Username: "gregg", CreatedAt: tick()}, []byte("h"), "inv")
	rec("CreateUser(used invite)", err)
	_, _, err = s.CreateChannel(ctx, herald.Chat{Title: "x", Username: "bobby", CreatedBy: a, CreatedAt: tick()})
	rec("CreateChannel(user's name)", err)
	rec("CreateInvite(again)", s.CreateInvite(ctx, "inv", tick()))
	rec("CreateChatInvite(again)", s.CreateChatInvite(ctx, "join", ch.ID, a, tick()))
	_, err = s.CreateDevice(ctx, herald.Device{UserID: b, Name: "dup", CreatedAt: tick()}, []byte{1, 2})
	rec("CreateDevice(token taken)", err)
	_, _, _, err = s.AppendMessage(ctx, herald.Message{ChatID: 999, SenderID: a, Body: []byte("x"), SentAt: tick()})
	rec("AppendMessage(no chat)", err)
	_, _, err = s.EditMessage(ctx, ch.ID, 3, []byte("x"), tick())
	rec("EditMessage(deleted)", err)
	_, err = s.RemoveMembers(ctx, g.ID, a, []int64{e}, tick())
	rec("RemoveMember(not a member)", err)
	_, err = s.SetRole(ctx, g.ID, a, e, herald.RoleAdmin, tick())
	rec("SetRole(not a member)", err)
	rec("SetMuted(not a member)", s.SetMuted(ctx, g.ID, e, true))
	rec("ViewPosts(not a member)", s.ViewPosts(ctx, ch.ID, e, 1))
	rec("UpdateChat(no chat)", s.UpdateChat(ctx, herald.Chat{ID: 999}))
	rec("SetChatTTL(no chat)", s.SetChatTTL(ctx, 999, time.Hour))
	_, err = s.AddMembers(ctx, 999, a, []int64{b}, herald.RoleMember, tick())
	rec("AddMembers(no chat)", err)
	_, err = s.Chat(ctx, 999)
	rec("Chat(no chat)", err)
	_, err = s.Member(ctx, g.ID, e)
	rec("Member(not a member)", err)
	_, err = s.Pts(ctx, 999)
	rec("Pts(no user)", err)
	rec("DeleteDevice(not theirs)", s.DeleteDevice(ctx, b, dev2.ID))
	rec("SetUserRole(no user)", mod.SetUserRole(ctx, 999, ""))
	rec("Suspend(no user)", mod.Suspend(ctx, 999, at(1), "", at(1)))
	rec("SetTakedown(no chat)", mod.SetTakedown(ctx, 999, true, ""))
	return out
}
