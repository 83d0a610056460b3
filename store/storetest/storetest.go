// Package storetest is the conformance suite for store.Store. Every
// implementation runs it unchanged, so it speaks only through the interface
// and checks only what the interface documents.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

// Run runs the conformance suite. open must return a new, empty store each
// time it is called; Run closes every store it opened when the subtest that
// opened it ends. The subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"CreateUser", testCreateUser},
		{"Invites", testInvites},
		{"Users", testUsers},
		{"Devices", testDevices},
		{"DirectChat", testDirectChat},
		{"DirectChatConcurrent", testDirectChatConcurrent},
		{"CreateGroup", testCreateGroup},
		{"AddMembers", testAddMembers},
		{"OwnedChats", testOwnedChats},
		{"RemoveMember", testRemoveMember},
		{"RemoveMembers", testRemoveMembers},
		{"AppendMessageSeq", testAppendSeq},
		{"AppendMessageUpdates", testAppendUpdates},
		{"AppendMessageDedup", testAppendDedup},
		{"AppendMessageReadPosition", testAppendReadPosition},
		{"AppendMessageConcurrent", testAppendConcurrent},
		{"AppendMessageDedupConcurrent", testAppendDedupConcurrent},
		{"History", testHistory},
		{"Message", testMessage},
		{"EditMessage", testEditMessage},
		{"DeleteForMe", testDeleteForMe},
		{"DeleteForEveryone", testDeleteForEveryone},
		{"ReadHistory", testReadHistory},
		{"Difference", testDifference},
		{"DifferencePaging", testDifferencePaging},
		{"Dialogs", testDialogs},
		{"DialogsPaging", testDialogsPaging},
		{"Bodies", testBodies},
		{"Bots", testBots},
		{"Files", testFiles},
		{"UploadReservations", testUploadReservations},
		{"Secret", testSecret},
		{"Calls", testCalls},
		{"Push", testPush},
		{"Annotations", testAnnotations},
		{"SecretGroups", testSecretGroups},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, newFixture(t, s))
		})
	}
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		testClosed(t, open(t))
	})
}

// t0 is the suite's clock origin. Times are whole seconds so that every
// store's time precision keeps them exactly.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture builds test data through the Store interface, failing the test
// on any unexpected error. It is used by one goroutine only.
type fixture struct {
	t     *testing.T
	s     store.Store
	ctx   context.Context
	now   time.Time
	users int
}

func newFixture(t *testing.T, s store.Store) *fixture {
	return &fixture{t: t, s: s, ctx: t.Context(), now: t0}
}

// tick advances the clock by a second and returns the new time.
func (f *fixture) tick() time.Time {
	f.now = f.now.Add(time.Second)
	return f.now
}

// user creates an account with a generated username.
func (f *fixture) user() herald.User {
	f.t.Helper()
	f.users++
	return f.named(fmt.Sprintf("user%03d", f.users))
}

func (f *fixture) named(name string) herald.User {
	f.t.Helper()
	u, err := f.s.CreateUser(f.ctx, herald.User{Username: name, DisplayName: "Display " + name, CreatedAt: f.tick()}, []byte("hash-"+name), "")
	if err != nil {
		f.t.Fatalf("CreateUser(%q): %v", name, err)
	}
	if u.ID == 0 {
		f.t.Fatalf("CreateUser(%q) returned ID 0", name)
	}
	return u
}

func (f *fixture) direct(a, b int64) herald.Chat {
	f.t.Helper()
	c, _, err := f.s.DirectChat(f.ctx, a, b, true, f.tick())
	if err != nil {
		f.t.Fatalf("DirectChat(%d, %d): %v", a, b, err)
	}
	return c
}

func (f *fixture) group(owner int64, members ...int64) herald.Chat {
	f.t.Helper()
	c, _, err := f.s.CreateGroup(f.ctx, herald.Chat{Title: "group", CreatedBy: owner, CreatedAt: f.tick()}, members)
	if err != nil {
		f.t.Fatalf("CreateGroup: %v", err)
	}
	return c
}

func (f *fixture) send(chatID, sender int64, body string) herald.Message {
	f.t.Helper()
	m, _, _ := f.sendUps(chatID, sender, body)
	return m
}

func (f *fixture) sendUps(chatID, sender int64, body string) (herald.Message, []herald.Update, bool) {
	f.t.Helper()
	m, ups, dup, err := f.s.AppendMessage(f.ctx, herald.Message{ChatID: chatID, SenderID: sender, Body: []byte(body), SentAt: f.tick()})
	if err != nil {
		f.t.Fatalf("AppendMessage(chat %d, sender %d): %v", chatID, sender, err)
	}
	return m, ups, dup
}

func (f *fixture) pts(userID int64) int64 {
	f.t.Helper()
	p, err := f.s.Pts(f.ctx, userID)
	if err != nil {
		f.t.Fatalf("Pts(%d): %v", userID, err)
	}
	return p
}

// ptsOf returns the current pts of each user.
func (f *fixture) ptsOf(ids ...int64) map[int64]int64 {
	f.t.Helper()
	out := make(map[int64]int64, len(ids))
	for _, id := range ids {
		out[id] = f.pts(id)
	}
	return out
}

// diff returns every update in userID's log after pts, reading page by page.
func (f *fixture) diff(userID, pts int64) []herald.Update {
	f.t.Helper()
	var out []herald.Update
	for range 1000 {
		d, err := f.s.Difference(f.ctx, userID, pts, herald.MaxDifferencePage)
		if err != nil {
			f.t.Fatalf("Difference(%d, %d): %v", userID, pts, err)
		}
		out = append(out, d.Updates...)
		if !d.More {
			return out
		}
		if d.Pts <= pts {
			f.t.Fatalf("Difference(%d, %d) has More but did not advance Pts", userID, pts)
		}
		pts = d.Pts
	}
	f.t.Fatalf("Difference(%d) did not end", userID)
	return nil
}

func (f *fixture) member(chatID, userID int64) herald.Member {
	f.t.Helper()
	m, err := f.s.Member(f.ctx, chatID, userID)
	if err != nil {
		f.t.Fatalf("Member(%d, %d): %v", chatID, userID, err)
	}
	return m
}

func (f *fixture) chat(chatID int64) herald.Chat {
	f.t.Helper()
	c, err := f.s.Chat(f.ctx, chatID)
	if err != nil {
		f.t.Fatalf("Chat(%d): %v", chatID, err)
	}
	return c
}

func (f *fixture) history(userID, chatID int64) []herald.Message {
	f.t.Helper()
	ms, err := f.s.History(f.ctx, userID, chatID, 0, herald.MaxHistoryPage)
	if err != nil {
		f.t.Fatalf("History(%d, %d): %v", userID, chatID, err)
	}
	return ms
}

// wantLogged checks that ups is exactly what the write logged: for every
// user in before, the updates addressed to them carry the pts that follow
// before[user] with no gap, their log now ends there, and no update is
// addressed to anyone else.
func (f *fixture) wantLogged(what string, ups []herald.Update, before map[int64]int64) {
	f.t.Helper()
	got := map[int64][]int64{}
	for _, u := range ups {
		if _, ok := before[u.UserID]; !ok {
			f.t.Errorf("%s: update %s is addressed to an unexpected user", what, show(u))
			continue
		}
		got[u.UserID] = append(got[u.UserID], u.Pts)
	}
	for id, p := range before {
		pts := got[id]
		for i, v := range pts {
			if v != p+int64(i)+1 {
				f.t.Errorf("%s: user %d got pts %v after %d, want consecutive from %d", what, id, pts, p, p+1)
				break
			}
		}
		if now := f.pts(id); now != p+int64(len(pts)) {
			f.t.Errorf("%s: Pts(%d) = %d, want %d (was %d, %d updates returned)", what, id, now, p+int64(len(pts)), p, len(pts))
		}
	}
}

// wantKind reports an error unless err has kind k.
func wantKind(t *testing.T, what string, err error, k herald.Kind) {
	t.Helper()
	if !herald.IsKind(err, k) {
		t.Errorf("%s: err = %v, want kind %s", what, err, k)
	}
}

var kindNames = map[herald.UpdateKind]string{
	herald.UpdNewMessage:  "new",
	herald.UpdEditMessage: "edit",
	herald.UpdDelete:      "delete",
	herald.UpdReadInbox:   "readInbox",
	herald.UpdReadOutbox:  "readOutbox",
	herald.UpdChatJoined:  "joined",
	herald.UpdChatLeft:    "left",
	herald.UpdMembers:     "members",
}

// show renders the fields of an update that the log stores, for
// comparison and messages.
func show(u herald.Update) string {
	k, ok := kindNames[u.Kind]
	if !ok {
		k = fmt.Sprintf("kind%d", int(u.Kind))
	}
	return fmt.Sprintf("{user %d pts %d %s chat %d seq %d seqs %v actor %d at %s}",
		u.UserID, u.Pts, k, u.ChatID, u.Seq, u.Seqs, u.ActorID, u.At.UTC().Format(time.RFC3339))
}

func showAll(ups []herald.Update) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = show(u)
	}
	return out
}

// forUser returns the updates addressed to userID, in pts order.
func forUser(ups []herald.Update, userID int64) []herald.Update {
	var out []herald.Update
	for _, u := range ups {
		if u.UserID == userID {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pts < out[j].Pts })
	return out
}

func seqsOf(ms []herald.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func sameUser(a, b herald.User) bool {
	return a.ID == b.ID && a.Username == b.Username && a.DisplayName == b.DisplayName && a.CreatedAt.Equal(b.CreatedAt)
}

func sameDevice(a, b herald.Device) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Name == b.Name && a.CreatedAt.Equal(b.CreatedAt) && a.LastSeen.Equal(b.LastSeen)
}

func testCreateUser(t *testing.T, f *fixture) {
	ctx := f.ctx
	hash := []byte{0, 1, 2, 0xff, 'h', 0}
	in := herald.User{Username: "alice", DisplayName: "Alice Liddell", CreatedAt: f.tick()}
	alice, err := f.s.CreateUser(ctx, in, hash, "")
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if alice.ID == 0 || alice.Username != in.Username || alice.DisplayName != in.DisplayName || !alice.CreatedAt.Equal(in.CreatedAt) {
		t.Errorf("CreateUser = %+v, want %+v with an ID", alice, in)
	}
	got, gotHash, err := f.s.UserByName(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	if !sameUser(got, alice) {
		t.Errorf("UserByName = %+v, want %+v", got, alice)
	}
	if !bytes.Equal(gotHash, hash) {
		t.Errorf("UserByName hash = %x, want %x", gotHash, hash)
	}
	bob := f.named("bobby")
	if bob.ID == alice.ID {
		t.Errorf("two users share ID %d", bob.ID)
	}

	_, err = f.s.CreateUser(ctx, herald.User{Username: "alice", DisplayName: "Impostor", CreatedAt: f.tick()}, []byte("other"), "")
	wantKind(t, "CreateUser with a taken username", err, herald.AlreadyExists)
	got, gotHash, err = f.s.UserByName(ctx, "alice")
	if err != nil || got.DisplayName != "Alice Liddell" || !bytes.Equal(gotHash, hash) {
		t.Errorf("after a refused duplicate, UserByName = %+v, %x, %v; want the original", got, gotHash, err)
	}

	_, _, err = f.s.UserByName(ctx, "nobody")
	wantKind(t, "UserByName of an unknown user", err, herald.NotFound)

	if p := f.pts(alice.ID); p != 0 {
		t.Errorf("Pts of a new user = %d, want 0", p)
	}
}

func testInvites(t *testing.T, f *fixture) {
	for _, code := range []string{"inv-1", "inv-2"} {
		if err := f.s.CreateInvite(f.ctx, code, f.tick()); err != nil {
			t.Fatalf("CreateInvite(%q): %v", code, err)
		}
	}
	wantKind(t, "CreateInvite of an existing code", f.s.CreateInvite(f.ctx, "inv-1", f.tick()), herald.AlreadyExists)

	// The steps run in order on one store: each depends on the ones before.
	steps := []struct {
		name     string
		username string
		invite   string
		want     herald.Kind // "" for success
	}{
		{"without invite", "alice", "", ""},
		{"unknown invite", "bobby", "no-such-code", herald.NotFound},
		{"valid invite", "bobby", "inv-1", ""},
		{"used invite", "carol", "inv-1", herald.NotFound},
		{"taken username leaves the invite unused", "alice", "inv-2", herald.AlreadyExists},
		{"invite still valid after a refused signup", "carol", "inv-2", ""},
		{"second invite used up", "dave_", "inv-2", herald.NotFound},
	}
	for _, st := range steps {
		_, _, errBefore := f.s.UserByName(f.ctx, st.username)
		u, err := f.s.CreateUser(f.ctx, herald.User{Username: st.username, DisplayName: st.name, CreatedAt: f.tick()}, []byte("h"), st.invite)
		if st.want == "" {
			if err != nil {
				t.Errorf("%s: CreateUser: %v", st.name, err)
				continue
			}
			got, _, err := f.s.UserByName(f.ctx, st.username)
			if err != nil || got.ID != u.ID {
				t.Errorf("%s: UserByName = %+v, %v; want user %d", st.name, got, err, u.ID)
			}
			continue
		}
		wantKind(t, st.name, err, st.want)
		_, _, err = f.s.UserByName(f.ctx, st.username)
		if herald.IsKind(errBefore, herald.NotFound) {
			wantKind(t, st.name+": UserByName after refused signup", err, herald.NotFound)
		}
	}
}

func testUsers(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	missing := a.ID + b.ID + c.ID + 1000
	got, err := f.s.Users(f.ctx, []int64{a.ID, c.ID, missing})
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	if len(got) != 2 || !sameUser(got[a.ID], a) || !sameUser(got[c.ID], c) {
		t.Errorf("Users(%d, %d, missing) = %+v, want exactly %+v and %+v", a.ID, c.ID, got, a, c)
	}
	got, err = f.s.Users(f.ctx, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Users(nil) = %v, %v; want an empty map", got, err)
	}
}

func testDevices(t *testing.T, f *fixture) {
	ctx := f.ctx
	alice, bob := f.user(), f.user()
	mk := func(u herald.User, name string, token []byte) herald.Device {
		t.Helper()
		at := f.tick()
		d, err := f.s.CreateDevice(ctx, herald.Device{UserID: u.ID, Name: name, CreatedAt: at, LastSeen: at}, token)
		if err != nil {
			t.Fatalf("CreateDevice(%s): %v", name, err)
		}
		if d.ID == 0 || d.UserID != u.ID || d.Name != name || !d.CreatedAt.Equal(at) {
			t.Errorf("CreateDevice = %+v, want %s of user %d created %v", d, name, u.ID, at)
		}
		return d
	}
	tokA1, tokA2, tokB := []byte{1, 0, 0xfe}, []byte{2, 0, 0xfe}, []byte{3, 0, 0xfe}
	a1 := mk(alice, "laptop", tokA1)
	a2 := mk(alice, "phone", tokA2)
	b1 := mk(bob, "tablet", tokB)
	if a1.ID == a2.ID || a1.ID == b1.ID || a2.ID == b1.ID {
		t.Errorf("device IDs not distinct: %d %d %d", a1.ID, a2.ID, b1.ID)
	}

	for _, tc := range []struct {
		token []byte
		want  herald.Device
	}{{tokA1, a1}, {tokA2, a2}, {tokB, b1}} {
		got, err := f.s.DeviceByToken(ctx, tc.token)
		if err != nil || !sameDevice(got, tc.want) {
			t.Errorf("DeviceByToken(%x) = %+v, %v; want %+v", tc.token, got, err, tc.want)
		}
	}
	_, err := f.s.DeviceByToken(ctx, []byte{9, 9, 9})
	wantKind(t, "DeviceByToken of an unknown token", err, herald.NotFound)

	wantDevices := func(what string, u herald.User, want ...herald.Device) {
		t.Helper()
		got, err := f.s.Devices(ctx, u.ID)
		if err != nil {
			t.Fatalf("%s: Devices: %v", what, err)
		}
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			ok = sameDevice(got[i], want[i])
		}
		if !ok {
			t.Errorf("%s: Devices(%d) = %+v, want %+v", what, u.ID, got, want)
		}
	}
	wantDevices("initially", alice, a1, a2)
	wantDevices("initially", bob, b1)

	wantKind(t, "DeleteDevice of another user's device", f.s.DeleteDevice(ctx, bob.ID, a1.ID), herald.NotFound)
	wantDevices("after refused delete", alice, a1, a2)
	if err := f.s.DeleteDevice(ctx, alice.ID, a1.ID); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	wantDevices("after delete", alice, a2)
	_, err = f.s.DeviceByToken(ctx, tokA1)
	wantKind(t, "DeviceByToken of a deleted device", err, herald.NotFound)
	wantKind(t, "DeleteDevice twice", f.s.DeleteDevice(ctx, alice.ID, a1.ID), herald.NotFound)

	seen := f.tick().Add(time.Hour)
	if err := f.s.TouchDevice(ctx, a2.ID, seen); err != nil {
		t.Fatalf("TouchDevice: %v", err)
	}
	a2.LastSeen = seen
	wantDevices("after touch", alice, a2)
	if got, err := f.s.DeviceByToken(ctx, tokA2); err != nil || !got.LastSeen.Equal(seen) {
		t.Errorf("DeviceByToken after touch = %+v, %v; want LastSeen %v", got, err, seen)
	}
	wantDevices("other user's device untouched", bob, b1)
}

func testDirectChat(t *testing.T, f *fixture) {
	ctx := f.ctx
	a, b, c := f.user(), f.user(), f.user()

	_, ups, err := f.s.DirectChat(ctx, a.ID, b.ID, false, f.tick())
	wantKind(t, "DirectChat(create=false) before it exists", err, herald.NotFound)
	if len(ups) != 0 {
		t.Errorf("DirectChat(create=false) returned updates %v", showAll(ups))
	}

	before := f.ptsOf(a.ID, b.ID, c.ID)
	at := f.tick()
	chat, ups, err := f.s.DirectChat(ctx, b.ID, a.ID, true, at)
	if err != nil {
		t.Fatalf("DirectChat(create): %v", err)
	}
	if chat.ID == 0 || chat.Kind != herald.Direct || chat.MemberCount != 2 || chat.LastSeq != 0 {
		t.Errorf("DirectChat = %+v, want a direct chat with 2 members and no messages", chat)
	}
	f.wantLogged("DirectChat", ups, before)
	for _, u := range []herald.User{a, b} {
		got := forUser(ups, u.ID)
		if len(got) != 1 || got[0].Kind != herald.UpdChatJoined || got[0].ChatID != chat.ID || !got[0].At.Equal(at) {
			t.Errorf("updates for user %d = %v, want one UpdChatJoined for chat %d at %v", u.ID, showAll(got), chat.ID, at)
		}
	}
	ms, err := f.s.Members(ctx, chat.ID)
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	var memberIDs []int64
	for _, m := range ms {
		memberIDs = append(memberIDs, m.UserID)
		if m.ChatID != chat.ID || m.Role != herald.RoleMember {
			t.Errorf("member %+v, want RoleMember of chat %d", m, chat.ID)
		}
	}
	slices.Sort(memberIDs)
	if want := []int64{min(a.ID, b.ID), max(a.ID, b.ID)}; !slices.Equal(memberIDs, want) {
		t.Errorf("members = %v, want %v", memberIDs, want)
	}

	before = f.ptsOf(a.ID, b.ID)
	for _, call := range []struct {
		x, y   int64
		create bool
	}{{a.ID, b.ID, false}, {b.ID, a.ID, false}, {a.ID, b.ID, true}, {b.ID, a.ID, true}} {
		got, ups, err := f.s.DirectChat(ctx, call.x, call.y, call.create, f.tick())
		if err != nil || got.ID != chat.ID || len(ups) != 0 {
			t.Errorf("DirectChat(%d, %d, %v) = chat %d, %d updates, %v; want chat %d, no updates",
				call.x, call.y, call.create, got.ID, len(ups), err, chat.ID)
		}
	}
	f.wantLogged("repeated DirectChat", nil, before)

	if got := f.chat(chat.ID); got.ID != chat.ID || got.Kind != herald.Direct || got.MemberCount != 2 || !got.CreatedAt.Equal(at) {
		t.Errorf("Chat = %+v, want %+v", got, chat)
	}
	other := f.direct(a.ID, c.ID)
	if other.ID == chat.ID {
		t.Errorf("chats with different people share ID %d", chat.ID)
	}
	_, err = f.s.Member(ctx, chat.ID, c.ID)
	wantKind(t, "Member of a non-member", err, herald.NotFound)
	_, err = f.s.Chat(ctx, chat.ID+other.ID+1000)
	wantKind(t, "Chat of an unknown chat", err, herald.NotFound)
}

func testDirectChatConcurrent(t *testing.T, f *fixture) {
	a, b := f.user(), f.user()
	const n = 10
	chats := make([]int64, n)
	var mu sync.Mutex
	var all []herald.Update
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			x, y := a.ID, b.ID
			if i%2 == 1 {
				x, y = y, x
			}
			c, ups, err := f.s.DirectChat(f.ctx, x, y, true, t0)
			if err != nil {
				t.Errorf("DirectChat: %v", err)
				return
			}
			chats[i] = c.ID
			mu.Lock()
			all = append(all, ups...)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, id := range chats {
		if id != chats[0] {
			t.Errorf("concurrent DirectChat %d returned chat %d, call 0 returned %d", i, id, chats[0])
		}
	}
	if len(all) != 2 {
		t.Errorf("concurrent DirectChat logged %v, want one UpdChatJoined per user", showAll(all))
	}
	for _, u := range []herald.User{a, b} {
		if p := f.pts(u.ID); p != 1 {
			t.Errorf("Pts(%d) = %d, want 1", u.ID, p)
		}
	}
}

// OwnedChats counts the groups and channels a user owns: not direct
// chats, not chats they only belong to, and ownership handed to them.
func testOwnedChats(t *testing.T, f *fixture) {
	a, b := f.user(), f.user()
	owned := func(u herald.User, want int) {
		t.Helper()
		if n, err := f.s.OwnedChats(f.ctx, u.ID); err != nil || n != want {
			t.Errorf("OwnedChats(%d) = %d, %v; want %d", u.ID, n, err, want)
		}
	}
	owned(a, 0)
	f.direct(a.ID, b.ID)
	f.group(a.ID, b.ID)
	f.group(a.ID)
	g := f.group(b.ID, a.ID)
	if _, _, err := f.s.CreateChannel(f.ctx, herald.Chat{Kind: herald.Channel, Title: "news", CreatedBy: a.ID, CreatedAt: f.tick()}); err != nil {
		t.Fatal(err)
	}
	owned(a, 3)
	owned(b, 1)
	if _, err := f.s.SetRole(f.ctx, g.ID, b.ID, a.ID, herald.RoleOwner, f.tick()); err != nil {
		t.Fatal(err)
	}
	owned(a, 4)
}

func testCreateGroup(t *testing.T, f *fixture) {
	owner, m1, m2, outsider := f.user(), f.user(), f.user(), f.user()
	before := f.ptsOf(owner.ID, m1.ID, m2.ID, outsider.ID)
	at := f.tick()
	c, ups, err := f.s.CreateGroup(f.ctx, herald.Chat{Title: "Book club 📚", CreatedBy: owner.ID, CreatedAt: at}, []int64{m1.ID, m2.ID})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if c.ID == 0 || c.Kind != herald.Group || c.Title != "Book club 📚" || c.CreatedBy != owner.ID || c.MemberCount != 3 || c.LastSeq != 0 {
		t.Errorf("CreateGroup = %+v, want a group of 3 titled and owned as given", c)
	}
	if got := f.chat(c.ID); got.Kind != herald.Group || got.Title != c.Title || got.MemberCount != 3 || got.CreatedBy != owner.ID || !got.CreatedAt.Equal(at) {
		t.Errorf("Chat = %+v, want %+v", got, c)
	}
	f.wantLogged("CreateGroup", ups, before)
	for _, u := range []herald.User{owner, m1, m2} {
		got := forUser(ups, u.ID)
		if len(got) != 1 || got[0].Kind != herald.UpdChatJoined || got[0].ChatID != c.ID || got[0].ActorID != owner.ID {
			t.Errorf("updates for %d = %v, want one UpdChatJoined by %d", u.ID, showAll(got), owner.ID)
		}
	}
	roles := map[int64]herald.Role{owner.ID: herald.RoleOwner, m1.ID: herald.RoleMember, m2.ID: herald.RoleMember}
	for id, role := range roles {
		if m := f.member(c.ID, id); m.Role != role || m.ChatID != c.ID || m.UserID != id {
			t.Errorf("Member(%d) = %+v, want role %v", id, m, role)
		}
	}
	ms, err := f.s.Members(f.ctx, c.ID)
	if err != nil || len(ms) != 3 {
		t.Errorf("Members = %+v, %v; want 3", ms, err)
	}
	_, err = f.s.Member(f.ctx, c.ID, outsider.ID)
	wantKind(t, "Member of an outsider", err, herald.NotFound)
}

func testAddMembers(t *testing.T, f *fixture) {
	owner, old, n1, n2, adm := f.user(), f.user(), f.user(), f.user(), f.user()
	c := f.group(owner.ID, old.ID)
	f.send(c.ID, owner.ID, "before they joined")

	before := f.ptsOf(owner.ID, old.ID, n1.ID, n2.ID, adm.ID)
	ups, err := f.s.AddMembers(f.ctx, c.ID, owner.ID, []int64{n1.ID, old.ID, n2.ID}, herald.RoleMember, f.tick())
	if err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	f.wantLogged("AddMembers", ups, before)
	if got := forUser(ups, adm.ID); len(got) != 0 {
		t.Errorf("a user not added got updates: %v", showAll(got))
	}
	added := []int64{n1.ID, n2.ID}
	for _, id := range added {
		var joined int
		for _, u := range forUser(ups, id) {
			if u.Kind == herald.UpdChatJoined {
				joined++
				if u.ChatID != c.ID || u.ActorID != owner.ID {
					t.Errorf("UpdChatJoined for %d = %s, want chat %d by %d", id, show(u), c.ID, owner.ID)
				}
			}
		}
		if joined != 1 {
			t.Errorf("new member %d got %d UpdChatJoined, want 1", id, joined)
		}
		if m := f.member(c.ID, id); m.Role != herald.RoleMember {
			t.Errorf("Member(%d).Role = %v, want member", id, m.Role)
		}
	}
	// Each member from before hears of the call once, with everyone it
	// added; newcomers get only their UpdChatJoined.
	for _, id := range []int64{owner.ID, old.ID} {
		got := forUser(ups, id)
		if len(got) != 1 || got[0].Kind != herald.UpdMembers || got[0].Seq != 1 || got[0].ChatID != c.ID ||
			got[0].ActorID != n1.ID || !slices.Equal(got[0].Seqs, added) {
			t.Errorf("existing member %d got %v, want one UpdMembers with Seq 1, ActorID %d and Seqs %v", id, showAll(got), n1.ID, added)
		}
	}
	for _, id := range added {
		if got := forUser(ups, id); len(got) != 1 {
			t.Errorf("new member %d got %v, want only UpdChatJoined", id, showAll(got))
		}
	}
	if len(ups) != 4 {
		t.Errorf("AddMembers of 2 to a group of 2 logged %d updates, want 4", len(ups))
	}
	if got := f.chat(c.ID); got.MemberCount != 4 {
		t.Errorf("MemberCount = %d, want 4", got.MemberCount)
	}

	before = f.ptsOf(owner.ID, old.ID, n1.ID, n2.ID, adm.ID)
	ups, err = f.s.AddMembers(f.ctx, c.ID, owner.ID, []int64{old.ID, n1.ID}, herald.RoleMember, f.tick())
	if err != nil {
		t.Fatalf("AddMembers of members: %v", err)
	}
	f.wantLogged("AddMembers of existing members", ups, before)
	if len(ups) != 0 {
		t.Errorf("AddMembers of existing members logged %v", showAll(ups))
	}

	if _, err := f.s.AddMembers(f.ctx, c.ID, owner.ID, []int64{adm.ID}, herald.RoleAdmin, f.tick()); err != nil {
		t.Fatalf("AddMembers(admin): %v", err)
	}
	if m := f.member(c.ID, adm.ID); m.Role != herald.RoleAdmin {
		t.Errorf("Member(admin).Role = %v, want admin", m.Role)
	}
	if got := f.chat(c.ID); got.MemberCount != 5 {
		t.Errorf("MemberCount = %d, want 5", got.MemberCount)
	}

	_, err = f.s.AddMembers(f.ctx, c.ID+1000, owner.ID, []int64{adm.ID}, herald.RoleMember, f.tick())
	wantKind(t, "AddMembers to an unknown chat", err, herald.NotFound)
}

func testRemoveMember(t *testing.T, f *fixture) {
	owner, a, b := f.user(), f.user(), f.user()
	c := f.group(owner.ID, a.ID, b.ID)

	before := f.ptsOf(owner.ID, a.ID, b.ID)
	ups, err := f.s.RemoveMembers(f.ctx, c.ID, owner.ID, []int64{b.ID}, f.tick())
	if err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	f.wantLogged("RemoveMember", ups, before)
	if got := forUser(ups, b.ID); len(got) != 1 || got[0].Kind != herald.UpdChatLeft || got[0].ChatID != c.ID || got[0].ActorID != owner.ID {
		t.Errorf("removed member got %v, want one UpdChatLeft by %d", showAll(got), owner.ID)
	}
	for _, id := range []int64{owner.ID, a.ID} {
		got := forUser(ups, id)
		if len(got) != 1 || got[0].Kind != herald.UpdMembers || got[0].Seq != 0 || got[0].ActorID != b.ID || got[0].ChatID != c.ID {
			t.Errorf("member %d got %v, want one UpdMembers with Seq 0 naming %d", id, showAll(got), b.ID)
		}
	}
	if got := f.chat(c.ID); got.MemberCount != 2 {
		t.Errorf("MemberCount = %d, want 2", got.MemberCount)
	}
	_, err = f.s.Member(f.ctx, c.ID, b.ID)
	wantKind(t, "Member after removal", err, herald.NotFound)
	ms, err := f.s.Members(f.ctx, c.ID)
	if err != nil || len(ms) != 2 {
		t.Errorf("Members after removal = %+v, %v; want 2", ms, err)
	}
	_, err = f.s.RemoveMembers(f.ctx, c.ID, owner.ID, []int64{b.ID}, f.tick())
	wantKind(t, "RemoveMember of a non-member", err, herald.NotFound)

	// A removed member no longer receives the chat's messages.
	ptsB := f.pts(b.ID)
	_, ups, _ = f.sendUps(c.ID, owner.ID, "after b left")
	if got := forUser(ups, b.ID); len(got) != 0 || f.pts(b.ID) != ptsB {
		t.Errorf("a removed member got updates %v", showAll(got))
	}
	ds, err := f.s.Dialogs(f.ctx, b.ID, herald.DialogCursor{}, 1000)
	if err != nil || len(ds) != 0 {
		t.Errorf("Dialogs of a removed member = %d dialogs, %v; want none", len(ds), err)
	}

	// Leaving: the actor is the member.
	ups, err = f.s.RemoveMembers(f.ctx, c.ID, a.ID, []int64{a.ID}, f.tick())
	if err != nil {
		t.Fatalf("RemoveMember(self): %v", err)
	}
	if got := forUser(ups, a.ID); len(got) != 1 || got[0].Kind != herald.UpdChatLeft || got[0].ActorID != a.ID {
		t.Errorf("leaving member got %v, want one UpdChatLeft by themself", showAll(got))
	}
	if got := f.chat(c.ID); got.MemberCount != 1 {
		t.Errorf("MemberCount = %d, want 1", got.MemberCount)
	}
}

// Removing several members at once tells each member who stays once,
// naming them all; one that is no member takes the whole call back.
func testRemoveMembers(t *testing.T, f *fixture) {
	owner, m1, m2, m3, m4, outsider := f.user(), f.user(), f.user(), f.user(), f.user(), f.user()
	c := f.group(owner.ID, m1.ID, m2.ID, m3.ID, m4.ID)

	before := f.ptsOf(owner.ID, m1.ID, m2.ID, m3.ID, m4.ID)
	ups, err := f.s.RemoveMembers(f.ctx, c.ID, owner.ID, []int64{m2.ID, m1.ID, m2.ID}, f.tick())
	if err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	f.wantLogged("RemoveMembers", ups, before)
	gone := []int64{m2.ID, m1.ID}
	for _, id := range gone {
		if got := forUser(ups, id); len(got) != 1 || got[0].Kind != herald.UpdChatLeft || got[0].ActorID != owner.ID {
			t.Errorf("removed member %d got %v, want one UpdChatLeft by %d", id, showAll(got), owner.ID)
		}
	}
	for _, id := range []int64{owner.ID, m3.ID, m4.ID} {
		got := forUser(ups, id)
		if len(got) != 1 || got[0].Kind != herald.UpdMembers || got[0].Seq != 0 || got[0].ActorID != m2.ID || !slices.Equal(got[0].Seqs, gone) {
			t.Errorf("member %d got %v, want one UpdMembers with Seq 0 naming %v", id, showAll(got), gone)
		}
	}
	if len(ups) != 5 {
		t.Errorf("removing 2 of 5 logged %d updates, want 5", len(ups))
	}
	if got := f.chat(c.ID); got.MemberCount != 3 {
		t.Errorf("MemberCount = %d, want 3", got.MemberCount)
	}

	before = f.ptsOf(owner.ID, m3.ID, m4.ID, outsider.ID)
	_, err = f.s.RemoveMembers(f.ctx, c.ID, owner.ID, []int64{m3.ID, outsider.ID}, f.tick())
	wantKind(t, "RemoveMembers with a non-member", err, herald.NotFound)
	f.member(c.ID, m3.ID)
	if got := f.chat(c.ID); got.MemberCount != 3 {
		t.Errorf("MemberCount after a refused removal = %d, want 3", got.MemberCount)
	}
	for id, p := range before {
		if f.pts(id) != p {
			t.Errorf("a refused removal logged for user %d", id)
		}
	}
}

func testAppendSeq(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	ab, ac := f.direct(a.ID, b.ID), f.direct(a.ID, c.ID)
	steps := []struct {
		chat    herald.Chat
		sender  herald.User
		wantSeq int64
	}{
		{ab, a, 1}, {ab, b, 2}, {ac, c, 1}, {ab, a, 3}, {ac, a, 2},
	}
	for i, st := range steps {
		at := f.tick()
		in := herald.Message{ChatID: st.chat.ID, SenderID: st.sender.ID, Body: []byte(fmt.Sprint("m", i)), SentAt: at, ReplyTo: int64(i)}
		if i == 3 {
			in.Fwd = &herald.Forward{UserID: c.ID, ChatID: ac.ID, Seq: 1}
		}
		m, _, dup, err := f.s.AppendMessage(f.ctx, in)
		if err != nil {
			t.Fatalf("step %d: AppendMessage: %v", i, err)
		}
		if dup || m.Seq != st.wantSeq || m.ChatID != in.ChatID || m.SenderID != in.SenderID || !bytes.Equal(m.Body, in.Body) || !m.SentAt.Equal(at) {
			t.Errorf("step %d: AppendMessage = %+v, dup %v; want seq %d of %+v", i, m, dup, st.wantSeq, in)
		}
		got, err := f.s.Message(f.ctx, st.sender.ID, st.chat.ID, st.wantSeq)
		if err != nil {
			t.Fatalf("step %d: Message: %v", i, err)
		}
		if got.Seq != st.wantSeq || got.SenderID != in.SenderID || got.ReplyTo != in.ReplyTo || !bytes.Equal(got.Body, in.Body) ||
			!got.SentAt.Equal(at) || !got.EditedAt.IsZero() || got.Deleted || !sameFwd(got.Fwd, in.Fwd) {
			t.Errorf("step %d: Message = %+v, want %+v with seq %d", i, got, in, st.wantSeq)
		}
	}
	if got := f.chat(ab.ID).LastSeq; got != 3 {
		t.Errorf("LastSeq of first chat = %d, want 3", got)
	}
	if got := f.chat(ac.ID).LastSeq; got != 2 {
		t.Errorf("LastSeq of second chat = %d, want 2", got)
	}
	_, _, _, err := f.s.AppendMessage(f.ctx, herald.Message{ChatID: ab.ID + ac.ID + 1000, SenderID: a.ID, Body: []byte("x"), SentAt: f.tick()})
	wantKind(t, "AppendMessage to an unknown chat", err, herald.NotFound)
}

func sameFwd(a, b *herald.Forward) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func testAppendUpdates(t *testing.T, f *fixture) {
	a, b, c, outsider := f.user(), f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	for i, sender := range []herald.User{a, b, c, a} {
		before := f.ptsOf(a.ID, b.ID, c.ID, outsider.ID)
		m, ups, _ := f.sendUps(g.ID, sender.ID, fmt.Sprint("hello ", i))
		f.wantLogged(fmt.Sprint("message ", i), ups, before)
		for _, id := range []int64{a.ID, b.ID, c.ID} {
			got := forUser(ups, id)
			if len(got) != 1 {
				t.Errorf("message %d: member %d got %d updates, want 1", i, id, len(got))
				continue
			}
			u := got[0]
			if u.Kind != herald.UpdNewMessage || u.ChatID != g.ID || u.Seq != m.Seq || u.ActorID != sender.ID ||
				u.Message == nil || u.Message.Seq != m.Seq || !bytes.Equal(u.Message.Body, m.Body) {
				t.Errorf("message %d: member %d got %s (message %+v), want UpdNewMessage seq %d by %d", i, id, show(u), u.Message, m.Seq, sender.ID)
			}
		}
	}
}

func testAppendDedup(t *testing.T, f *fixture) {
	a, b := f.user(), f.user()
	ab, ba2 := f.direct(a.ID, b.ID), f.group(a.ID, b.ID)
	send := func(chatID, sender, rid int64, body string) (herald.Message, []herald.Update, bool) {
		t.Helper()
		m, ups, dup, err := f.s.AppendMessage(f.ctx, herald.Message{ChatID: chatID, SenderID: sender, RandomID: rid, Body: []byte(body), SentAt: f.tick()})
		if err != nil {
			t.Fatalf("AppendMessage: %v", err)
		}
		return m, ups, dup
	}
	first, ups, dup := send(ab.ID, a.ID, 42, "original")
	if dup || len(ups) != 2 {
		t.Fatalf("first send: dup %v, %d updates; want new with 2 updates", dup, len(ups))
	}
	before := f.ptsOf(a.ID, b.ID)
	again, ups, dup := send(ab.ID, a.ID, 42, "retry")
	if !dup || again.Seq != first.Seq || len(ups) != 0 || !bytes.Equal(again.Body, []byte("original")) || again.RandomID != 42 {
		t.Errorf("retry = %+v, dup %v, %d updates; want seq %d, dup, no updates, the stored body", again, dup, len(ups), first.Seq)
	}
	f.wantLogged("deduplicated send", nil, before)
	if got := f.chat(ab.ID).LastSeq; got != 1 {
		t.Errorf("LastSeq after a retry = %d, want 1", got)
	}

	// The key is the sender's and the chat's: other senders and other chats
	// do not collide, and zero is no key at all.
	cases := []struct {
		name   string
		chat   int64
		sender int64
		rid    int64
	}{
		{"same key, other sender", ab.ID, b.ID, 42},
		{"same key, other chat", ba2.ID, a.ID, 42},
		{"zero key", ab.ID, a.ID, 0},
		{"zero key again", ab.ID, a.ID, 0},
		{"other key", ab.ID, a.ID, 43},
	}
	for _, tc := range cases {
		m, ups, dup := send(tc.chat, tc.sender, tc.rid, tc.name)
		if dup || len(ups) == 0 || m.Seq == 0 {
			t.Errorf("%s: seq %d, dup %v, %d updates; want a new message", tc.name, m.Seq, dup, len(ups))
		}
	}
	if got := f.chat(ab.ID).LastSeq; got != 5 {
		t.Errorf("LastSeq = %d, want 5", got)
	}
}

func testAppendReadPosition(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	steps := []struct {
		sender herald.User
		want   map[int64]int64 // read positions after the send
	}{
		{a, map[int64]int64{a.ID: 1, b.ID: 0, c.ID: 0}},
		{b, map[int64]int64{a.ID: 1, b.ID: 2, c.ID: 0}},
		{b, map[int64]int64{a.ID: 1, b.ID: 3, c.ID: 0}},
		{a, map[int64]int64{a.ID: 4, b.ID: 3, c.ID: 0}},
	}
	for i, st := range steps {
		f.send(g.ID, st.sender.ID, "m")
		for id, want := range st.want {
			if got := f.member(g.ID, id).ReadSeq; got != want {
				t.Errorf("after send %d: ReadSeq of %d = %d, want %d", i, id, got, want)
			}
		}
	}
}

func testAppendConcurrent(t *testing.T, f *fixture) {
	a, b, c, d := f.user(), f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	ad := f.direct(a.ID, d.ID)
	before := f.ptsOf(a.ID, b.ID, c.ID, d.ID)
	const n, m = 50, 25 // sends to the group, sends to the direct chat
	senders := []int64{a.ID, b.ID, c.ID}
	seqs := make([]int64, n)
	var mu sync.Mutex
	var returned []herald.Update
	var wg sync.WaitGroup
	for i := range n + m {
		wg.Go(func() {
			msg := herald.Message{ChatID: g.ID, SenderID: senders[i%3], Body: []byte(fmt.Sprint("body ", i)), SentAt: t0}
			if i >= n {
				msg.ChatID, msg.SenderID = ad.ID, d.ID
			}
			got, ups, dup, err := f.s.AppendMessage(f.ctx, msg)
			if err != nil || dup {
				t.Errorf("AppendMessage %d: dup %v, %v", i, dup, err)
				return
			}
			if i < n {
				seqs[i] = got.Seq
			}
			mu.Lock()
			returned = append(returned, ups...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	sorted := slices.Sorted(slices.Values(seqs))
	for i, s := range sorted {
		if s != int64(i+1) {
			t.Fatalf("concurrent sends got seqs %v, want 1..%d each once", sorted, n)
		}
	}
	if got := f.chat(g.ID).LastSeq; got != n {
		t.Errorf("LastSeq = %d, want %d", got, n)
	}
	for i, s := range seqs {
		msg, err := f.s.Message(f.ctx, a.ID, g.ID, s)
		if err != nil || string(msg.Body) != fmt.Sprint("body ", i) || msg.SenderID != senders[i%3] {
			t.Errorf("Message seq %d = %q from %d, %v; want %q from %d", s, msg.Body, msg.SenderID, err, fmt.Sprint("body ", i), senders[i%3])
		}
	}

	wantNew := map[int64]map[int64]int{ // user -> chat -> messages
		a.ID: {g.ID: n, ad.ID: m}, b.ID: {g.ID: n}, c.ID: {g.ID: n}, d.ID: {ad.ID: m},
	}
	for id, chats := range wantNew {
		log := f.diff(id, before[id])
		for i, u := range log {
			if u.Pts != before[id]+int64(i)+1 {
				t.Errorf("user %d: update %d has pts %d, want %d (no gaps)", id, i, u.Pts, before[id]+int64(i)+1)
				break
			}
		}
		if got, want := showAll(log), showAll(forUser(returned, id)); !slices.Equal(got, want) {
			t.Errorf("user %d: the log differs from the updates AppendMessage returned:\nlog:      %v\nreturned: %v", id, got, want)
		}
		seen := map[int64]map[int64]bool{}
		for _, u := range log {
			if u.Kind != herald.UpdNewMessage {
				t.Errorf("user %d: unexpected update %s", id, show(u))
				continue
			}
			if seen[u.ChatID] == nil {
				seen[u.ChatID] = map[int64]bool{}
			}
			if seen[u.ChatID][u.Seq] {
				t.Errorf("user %d: seq %d of chat %d logged twice", id, u.Seq, u.ChatID)
			}
			seen[u.ChatID][u.Seq] = true
		}
		for chat, want := range chats {
			for s := int64(1); s <= int64(want); s++ {
				if !seen[chat][s] {
					t.Errorf("user %d: no UpdNewMessage for seq %d of chat %d", id, s, chat)
				}
			}
			if len(seen[chat]) != want {
				t.Errorf("user %d: %d messages of chat %d logged, want %d", id, len(seen[chat]), chat, want)
			}
		}
	}
}

func testAppendDedupConcurrent(t *testing.T, f *fixture) {
	a, b := f.user(), f.user()
	c := f.direct(a.ID, b.ID)
	const n = 10
	seqs := make([]int64, n)
	dups := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, _, dup, err := f.s.AppendMessage(f.ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, RandomID: 777, Body: []byte("once"), SentAt: t0})
			if err != nil {
				t.Errorf("AppendMessage: %v", err)
			}
			seqs[i], dups[i] = m.Seq, dup
		})
	}
	wg.Wait()
	var fresh int
	for i := range n {
		if !dups[i] {
			fresh++
		}
		if seqs[i] != 1 {
			t.Errorf("retry %d got seq %d, want 1", i, seqs[i])
		}
	}
	if fresh != 1 {
		t.Errorf("%d of %d concurrent retries were stored as new, want 1", fresh, n)
	}
	if got := f.chat(c.ID).LastSeq; got != 1 {
		t.Errorf("LastSeq = %d, want 1", got)
	}
	if got := f.pts(b.ID); got != 2 { // joined, one message
		t.Errorf("Pts of the recipient = %d, want 2", got)
	}
}

// deletions sets up a direct chat of a and b with ten messages, seq 3
// deleted for everyone and seq 5 deleted for a only.
func (f *fixture) deletions() (a, b herald.User, c herald.Chat) {
	f.t.Helper()
	a, b = f.user(), f.user()
	c = f.direct(a.ID, b.ID)
	for i := 1; i <= 10; i++ {
		sender := a.ID
		if i%2 == 0 {
			sender = b.ID
		}
		f.send(c.ID, sender, fmt.Sprint("message ", i))
	}
	if _, err := f.s.DeleteMessages(f.ctx, b.ID, c.ID, []int64{3}, true, f.tick()); err != nil {
		f.t.Fatalf("DeleteMessages(for everyone): %v", err)
	}
	if _, err := f.s.DeleteMessages(f.ctx, a.ID, c.ID, []int64{5}, false, f.tick()); err != nil {
		f.t.Fatalf("DeleteMessages(for me): %v", err)
	}
	return a, b, c
}

func testHistory(t *testing.T, f *fixture) {
	a, b, c := f.deletions()
	pages := []struct {
		user   int64
		before int64
		limit  int
		want   []int64
	}{
		{a.ID, 0, 100, []int64{10, 9, 8, 7, 6, 4, 2, 1}},
		{b.ID, 0, 100, []int64{10, 9, 8, 7, 6, 5, 4, 2, 1}},
		{a.ID, 0, 3, []int64{10, 9, 8}},
		{a.ID, 8, 3, []int64{7, 6, 4}},
		{a.ID, 4, 3, []int64{2, 1}},
		{a.ID, 1, 3, nil},
		{b.ID, 7, 2, []int64{6, 5}},
		{b.ID, 11, 1, []int64{10}},
		{b.ID, 100, 2, []int64{10, 9}},
	}
	for _, p := range pages {
		ms, err := f.s.History(f.ctx, p.user, c.ID, p.before, p.limit)
		if err != nil {
			t.Fatalf("History(%d, before %d, limit %d): %v", p.user, p.before, p.limit, err)
		}
		if got := seqsOf(ms); !slices.Equal(got, p.want) {
			t.Errorf("History(user %d, before %d, limit %d) = %v, want %v", p.user, p.before, p.limit, got, p.want)
		}
		for _, m := range ms {
			if m.ChatID != c.ID || string(m.Body) != fmt.Sprint("message ", m.Seq) || m.Deleted {
				t.Errorf("History message %+v, want body %q", m, fmt.Sprint("message ", m.Seq))
			}
		}
	}
	other := f.direct(a.ID, f.user().ID)
	if ms := f.history(a.ID, other.ID); len(ms) != 0 {
		t.Errorf("History of an empty chat = %v", seqsOf(ms))
	}
}

func testMessage(t *testing.T, f *fixture) {
	a, b, c := f.deletions()
	_, err := f.s.Message(f.ctx, a.ID, c.ID, 5)
	wantKind(t, "Message hidden for the user", err, herald.NotFound)
	if m, err := f.s.Message(f.ctx, b.ID, c.ID, 5); err != nil || string(m.Body) != "message 5" {
		t.Errorf("Message hidden for someone else = %+v, %v; want it whole", m, err)
	}
	for _, u := range []herald.User{a, b} {
		m, err := f.s.Message(f.ctx, u.ID, c.ID, 3)
		if err != nil || !m.Deleted || len(m.Body) != 0 || m.Seq != 3 {
			t.Errorf("Message deleted for everyone, seen by %d = %+v, %v; want Deleted with no body", u.ID, m, err)
		}
	}
	_, err = f.s.Message(f.ctx, a.ID, c.ID, 11)
	wantKind(t, "Message beyond the last seq", err, herald.NotFound)
	_, err = f.s.Message(f.ctx, a.ID, c.ID+1000, 1)
	wantKind(t, "Message in an unknown chat", err, herald.NotFound)
}

func testEditMessage(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	orig := f.send(g.ID, b.ID, "tpyo")
	f.send(g.ID, a.ID, "second")

	before := f.ptsOf(a.ID, b.ID, c.ID)
	at := f.tick()
	m, ups, err := f.s.EditMessage(f.ctx, g.ID, orig.Seq, []byte("typo"), at)
	if err != nil {
		t.Fatalf("EditMessage: %v", err)
	}
	if m.Seq != orig.Seq || m.SenderID != b.ID || string(m.Body) != "typo" || !m.EditedAt.Equal(at) || !m.SentAt.Equal(orig.SentAt) {
		t.Errorf("EditMessage = %+v, want seq %d by %d, body %q, edited at %v", m, orig.Seq, b.ID, "typo", at)
	}
	f.wantLogged("EditMessage", ups, before)
	for _, id := range []int64{a.ID, b.ID, c.ID} {
		got := forUser(ups, id)
		if len(got) != 1 || got[0].Kind != herald.UpdEditMessage || got[0].ChatID != g.ID || got[0].Seq != orig.Seq ||
			got[0].Message == nil || string(got[0].Message.Body) != "typo" {
			t.Errorf("member %d got %v, want one UpdEditMessage carrying the new body", id, showAll(got))
		}
	}
	for _, id := range []int64{a.ID, c.ID} {
		got, err := f.s.Message(f.ctx, id, g.ID, orig.Seq)
		if err != nil || string(got.Body) != "typo" || !got.EditedAt.Equal(at) {
			t.Errorf("Message after edit = %+v, %v; want the new body edited at %v", got, err, at)
		}
	}
	if hist := f.history(c.ID, g.ID); len(hist) != 2 || string(hist[1].Body) != "typo" {
		t.Errorf("History after edit = %+v", hist)
	}
	if _, err := f.s.DeleteMessages(f.ctx, a.ID, g.ID, []int64{2}, true, f.tick()); err != nil {
		t.Fatalf("DeleteMessages: %v", err)
	}

	before = f.ptsOf(a.ID, b.ID, c.ID)
	for _, tc := range []struct {
		name string
		chat int64
		seq  int64
	}{
		{"missing seq", g.ID, 3},
		{"deleted for everyone", g.ID, 2},
		{"unknown chat", g.ID + 1000, 1},
	} {
		_, ups, err := f.s.EditMessage(f.ctx, tc.chat, tc.seq, []byte("nope"), f.tick())
		wantKind(t, "EditMessage of a "+tc.name, err, herald.NotFound)
		if len(ups) != 0 {
			t.Errorf("EditMessage of a %s returned updates %v", tc.name, showAll(ups))
		}
	}
	f.wantLogged("refused edits", nil, before)
	if m, err := f.s.Message(f.ctx, a.ID, g.ID, 2); err != nil || !m.Deleted || len(m.Body) != 0 {
		t.Errorf("a refused edit changed a deleted message: %+v, %v", m, err)
	}
}

func testDeleteForMe(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	for i := range 3 {
		f.send(g.ID, b.ID, fmt.Sprint("m", i+1))
	}
	before := f.ptsOf(a.ID, b.ID, c.ID)
	at := f.tick()
	ups, err := f.s.DeleteMessages(f.ctx, a.ID, g.ID, []int64{1, 2}, false, at)
	if err != nil {
		t.Fatalf("DeleteMessages: %v", err)
	}
	f.wantLogged("DeleteMessages for me", ups, before)
	if len(ups) != 1 || ups[0].UserID != a.ID || ups[0].Kind != herald.UpdDelete || ups[0].ChatID != g.ID ||
		!slices.Equal(ups[0].Seqs, []int64{1, 2}) || !ups[0].At.Equal(at) {
		t.Errorf("DeleteMessages for me logged %v, want one UpdDelete of [1 2] for %d only", showAll(ups), a.ID)
	}
	if got := seqsOf(f.history(a.ID, g.ID)); !slices.Equal(got, []int64{3}) {
		t.Errorf("History of the deleter = %v, want [3]", got)
	}
	for _, id := range []int64{b.ID, c.ID} {
		if got := seqsOf(f.history(id, g.ID)); !slices.Equal(got, []int64{3, 2, 1}) {
			t.Errorf("History of another member = %v, want [3 2 1]", got)
		}
		if m, err := f.s.Message(f.ctx, id, g.ID, 1); err != nil || string(m.Body) != "m1" || m.Deleted {
			t.Errorf("Message for another member = %+v, %v; want it whole", m, err)
		}
	}
}

func testDeleteForEveryone(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	start := f.ptsOf(a.ID, b.ID, c.ID)
	for i := range 3 {
		f.send(g.ID, a.ID, fmt.Sprint("secret ", i+1))
	}
	before := f.ptsOf(a.ID, b.ID, c.ID)
	at := f.tick()
	ups, err := f.s.DeleteMessages(f.ctx, a.ID, g.ID, []int64{2, 3}, true, at)
	if err != nil {
		t.Fatalf("DeleteMessages: %v", err)
	}
	f.wantLogged("DeleteMessages for everyone", ups, before)
	for _, id := range []int64{a.ID, b.ID, c.ID} {
		got := forUser(ups, id)
		if len(got) != 1 || got[0].Kind != herald.UpdDelete || got[0].ChatID != g.ID || got[0].ActorID != a.ID ||
			!slices.Equal(got[0].Seqs, []int64{2, 3}) {
			t.Errorf("member %d got %v, want one UpdDelete of [2 3] by %d", id, showAll(got), a.ID)
		}
		if hist := seqsOf(f.history(id, g.ID)); !slices.Equal(hist, []int64{1}) {
			t.Errorf("History for %d = %v, want [1]", id, hist)
		}
		for _, seq := range []int64{2, 3} {
			m, err := f.s.Message(f.ctx, id, g.ID, seq)
			if err != nil || !m.Deleted || len(m.Body) != 0 {
				t.Errorf("Message %d for %d = %+v, %v; want Deleted without body", seq, id, m, err)
			}
		}
		// The log still holds the new-message updates; the messages they
		// carry are in their current state.
		for _, u := range f.diff(id, start[id]) {
			if u.Kind != herald.UpdNewMessage {
				continue
			}
			if u.Message == nil {
				t.Errorf("Difference for %d: %s has no message", id, show(u))
				continue
			}
			deleted := u.Seq == 2 || u.Seq == 3
			if u.Message.Deleted != deleted || (deleted && len(u.Message.Body) != 0) || (!deleted && string(u.Message.Body) != "secret 1") {
				t.Errorf("Difference for %d: seq %d carries %+v, deleted should be %v", id, u.Seq, u.Message, deleted)
			}
		}
	}
	// A deleted message keeps its number.
	if m := f.send(g.ID, b.ID, "next"); m.Seq != 4 {
		t.Errorf("seq after deletions = %d, want 4", m.Seq)
	}
}

func testReadHistory(t *testing.T, f *fixture) {
	a, b, c := f.user(), f.user(), f.user()
	g := f.group(a.ID, b.ID, c.ID)
	for range 3 {
		f.send(g.ID, a.ID, "m")
	}
	// The steps run in order; each starts where the one before left off.
	steps := []struct {
		name     string
		reader   herald.User
		seq      int64
		wantRead int64
		moved    bool
	}{
		{"forward", b, 2, 2, true},
		{"backward", b, 1, 2, false},
		{"same place", b, 2, 2, false},
		{"past the end is capped", b, 100, 3, true},
		{"past the end again", b, 100, 3, false},
		{"sender already read their own", a, 3, 3, false},
		{"sender past the end", a, 10, 3, false},
		{"other member", c, 1, 1, true},
	}
	for _, st := range steps {
		before := f.ptsOf(a.ID, b.ID, c.ID)
		at := f.tick()
		ups, err := f.s.ReadHistory(f.ctx, st.reader.ID, g.ID, st.seq, at)
		if err != nil {
			t.Fatalf("%s: ReadHistory: %v", st.name, err)
		}
		f.wantLogged(st.name, ups, before)
		if got := f.member(g.ID, st.reader.ID).ReadSeq; got != st.wantRead {
			t.Errorf("%s: ReadSeq = %d, want %d", st.name, got, st.wantRead)
		}
		if !st.moved {
			if len(ups) != 0 {
				t.Errorf("%s: the position did not move but ReadHistory logged %v", st.name, showAll(ups))
			}
			continue
		}
		for _, id := range []int64{a.ID, b.ID, c.ID} {
			want := herald.UpdReadOutbox
			if id == st.reader.ID {
				want = herald.UpdReadInbox
			}
			got := forUser(ups, id)
			if len(got) != 1 || got[0].Kind != want || got[0].ChatID != g.ID || got[0].Seq != st.wantRead || got[0].ActorID != st.reader.ID {
				t.Errorf("%s: member %d got %v, want one %s at seq %d by %d", st.name, id, showAll(got), kindNames[want], st.wantRead, st.reader.ID)
			}
		}
	}
}

// difference builds a known log for a and returns it as the write methods
// reported it.
func (f *fixture) difference() (a, b herald.User, c herald.Chat, want []herald.Update) {
	f.t.Helper()
	a, b = f.user(), f.user()
	keep := func(ups []herald.Update, err error) {
		f.t.Helper()
		if err != nil {
			f.t.Fatal(err)
		}
		want = append(want, forUser(ups, a.ID)...)
	}
	var ups []herald.Update
	var err error
	// The comments give each update's pts in a's log.
	c, ups, err = f.s.DirectChat(f.ctx, a.ID, b.ID, true, f.tick()) // 1 joined
	keep(ups, err)
	_, ups, _ = f.sendUps(c.ID, a.ID, "first") // 2 new seq 1
	keep(ups, nil)
	// 3 read outbox, seq 1
	keep(f.s.ReadHistory(f.ctx, b.ID, c.ID, 1, f.tick()))
	_, ups, _ = f.sendUps(c.ID, b.ID, "second") // 4 new seq 2
	keep(ups, nil)
	// 5 read inbox, seq 2
	keep(f.s.ReadHistory(f.ctx, a.ID, c.ID, 2, f.tick()))
	// 6 edit seq 1
	_, ups, err = f.s.EditMessage(f.ctx, c.ID, 1, []byte("first, edited"), f.tick())
	keep(ups, err)
	// 7 delete seq 2
	keep(f.s.DeleteMessages(f.ctx, b.ID, c.ID, []int64{2}, true, f.tick()))
	// 8 joined a group
	_, ups, err = f.s.CreateGroup(f.ctx, herald.Chat{Title: "g", CreatedBy: b.ID, CreatedAt: f.tick()}, []int64{a.ID})
	keep(ups, err)
	return a, b, c, want
}

func testDifference(t *testing.T, f *fixture) {
	a, b, c, want := f.difference()
	kinds := []herald.UpdateKind{
		herald.UpdChatJoined, herald.UpdNewMessage, herald.UpdReadOutbox, herald.UpdNewMessage,
		herald.UpdReadInbox, herald.UpdEditMessage, herald.UpdDelete, herald.UpdChatJoined,
	}
	if p := f.pts(a.ID); p != int64(len(kinds)) {
		t.Fatalf("Pts = %d, want %d", p, len(kinds))
	}
	d, err := f.s.Difference(f.ctx, a.ID, 0, herald.MaxDifferencePage)
	if err != nil {
		t.Fatalf("Difference: %v", err)
	}
	if d.More || d.Pts != int64(len(kinds)) {
		t.Errorf("Difference: More %v, Pts %d; want false, %d", d.More, d.Pts, len(kinds))
	}
	if got, w := showAll(d.Updates), showAll(want); !slices.Equal(got, w) {
		t.Fatalf("Difference differs from what the writes returned:\ngot:  %v\nwant: %v", got, w)
	}
	for i, u := range d.Updates {
		if u.Pts != int64(i+1) || u.Kind != kinds[i] {
			t.Errorf("update %d = %s, want pts %d kind %s", i, show(u), i+1, kindNames[kinds[i]])
		}
	}
	// Messages come in their current state.
	wantMsg := map[int64]func(*herald.Message) bool{ // by pts
		2: func(m *herald.Message) bool {
			return string(m.Body) == "first, edited" && !m.EditedAt.IsZero() && m.SenderID == a.ID
		},
		4: func(m *herald.Message) bool { return m.Deleted && len(m.Body) == 0 && m.SenderID == b.ID },
		6: func(m *herald.Message) bool { return string(m.Body) == "first, edited" && !m.EditedAt.IsZero() },
	}
	for pts, ok := range wantMsg {
		u := d.Updates[pts-1]
		if u.Message == nil || u.Message.ChatID != c.ID || u.Message.Seq != u.Seq || !ok(u.Message) {
			t.Errorf("update %s carries message %+v, not the message in its current state", show(u), u.Message)
		}
	}
	if u := d.Updates[6]; !slices.Equal(u.Seqs, []int64{2}) || u.ActorID != b.ID {
		t.Errorf("delete update = %s, want Seqs [2] by %d", show(u), b.ID)
	}

	for after := int64(0); after <= int64(len(kinds)); after++ {
		d, err := f.s.Difference(f.ctx, a.ID, after, herald.MaxDifferencePage)
		if err != nil {
			t.Fatalf("Difference(after %d): %v", after, err)
		}
		if got, w := showAll(d.Updates), showAll(want[after:]); !slices.Equal(got, w) {
			t.Errorf("Difference(after %d) = %v, want %v", after, got, w)
		}
		if d.Pts != int64(len(kinds)) || d.More {
			t.Errorf("Difference(after %d): Pts %d, More %v; want %d, false", after, d.Pts, d.More, len(kinds))
		}
	}
}

func testDifferencePaging(t *testing.T, f *fixture) {
	a, _, _, want := f.difference()
	last := int64(len(want))
	for limit := 1; limit <= len(want)+1; limit++ {
		var got []herald.Update
		pts := int64(0)
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			d, err := f.s.Difference(f.ctx, a.ID, pts, limit)
			if err != nil {
				t.Fatalf("limit %d: Difference(%d): %v", limit, pts, err)
			}
			if len(d.Updates) > limit {
				t.Errorf("limit %d: page has %d updates", limit, len(d.Updates))
			}
			wantPts := pts
			if n := len(d.Updates); n > 0 {
				wantPts = d.Updates[n-1].Pts
			}
			if d.Pts != wantPts {
				t.Errorf("limit %d: page after %d ends at Pts %d, its last update has %d", limit, pts, d.Pts, wantPts)
			}
			if d.More != (d.Pts < last) {
				t.Errorf("limit %d: page after %d ending at %d has More %v, the log ends at %d", limit, pts, d.Pts, d.More, last)
			}
			got = append(got, d.Updates...)
			if !d.More || d.Pts <= pts {
				break
			}
			pts = d.Pts
		}
		if g, w := showAll(got), showAll(want); !slices.Equal(g, w) {
			t.Errorf("limit %d: pages joined = %v, want %v", limit, g, w)
		}
	}
}

func testDialogs(t *testing.T, f *fixture) {
	a, b, c := f.named("alice"), f.named("bobby"), f.named("carol")
	if ds, err := f.s.Dialogs(f.ctx, a.ID, herald.DialogCursor{}, 1000); err != nil || len(ds) != 0 {
		t.Errorf("Dialogs with no chats = %d dialogs, %v; want none", len(ds), err)
	}
	ab := f.direct(a.ID, b.ID)
	g := f.group(a.ID, b.ID, c.ID)
	ac := f.direct(c.ID, a.ID)
	f.send(ab.ID, a.ID, "ab 1")
	f.send(ab.ID, b.ID, "ab 2")
	f.send(ab.ID, b.ID, "ab 3")
	f.send(g.ID, b.ID, "g 1")
	f.send(g.ID, c.ID, "g 2")
	f.send(g.ID, a.ID, "g 3")
	f.send(g.ID, c.ID, "g 4")

	dialogs := func(u herald.User) map[int64]herald.Dialog {
		t.Helper()
		ds, err := f.s.Dialogs(f.ctx, u.ID, herald.DialogCursor{}, 1000)
		if err != nil {
			t.Fatalf("Dialogs(%d): %v", u.ID, err)
		}
		out := map[int64]herald.Dialog{}
		for _, d := range ds {
			if _, ok := out[d.Chat.ID]; ok {
				t.Errorf("Dialogs(%d) lists chat %d twice", u.ID, d.Chat.ID)
			}
			out[d.Chat.ID] = d
		}
		return out
	}
	type want struct {
		chat     int64
		peer     int64 // 0: none
		last     int64 // seq of Last, 0: none
		lastBody string
		unread   int
		read     int64
		peerRead int64
		role     herald.Role
	}
	check := func(what string, u herald.User, ws ...want) {
		t.Helper()
		got := dialogs(u)
		if len(got) != len(ws) {
			t.Errorf("%s: user %d has %d dialogs, want %d", what, u.ID, len(got), len(ws))
		}
		for _, w := range ws {
			d, ok := got[w.chat]
			if !ok {
				t.Errorf("%s: user %d has no dialog for chat %d", what, u.ID, w.chat)
				continue
			}
			var peer, last int64
			var body string
			if d.Peer != nil {
				peer = d.Peer.ID
			}
			if d.Last != nil {
				last, body = d.Last.Seq, string(d.Last.Body)
			}
			if peer != w.peer || last != w.last || body != w.lastBody || d.Unread != w.unread || d.ReadSeq != w.read || d.PeerReadSeq != w.peerRead || d.Role != w.role {
				t.Errorf("%s: user %d, chat %d: peer %d, last %d %q, unread %d, read %d, peer read %d, role %v;\nwant peer %d, last %d %q, unread %d, read %d, peer read %d, role %v",
					what, u.ID, w.chat, peer, last, body, d.Unread, d.ReadSeq, d.PeerReadSeq, d.Role,
					w.peer, w.last, w.lastBody, w.unread, w.read, w.peerRead, w.role)
			}
		}
	}

	check("start", a,
		want{chat: ab.ID, peer: b.ID, last: 3, lastBody: "ab 3", unread: 2, read: 1, peerRead: 3, role: herald.RoleMember},
		want{chat: g.ID, last: 4, lastBody: "g 4", unread: 1, read: 3, peerRead: 4, role: herald.RoleOwner},
		want{chat: ac.ID, peer: c.ID, role: herald.RoleMember},
	)
	check("start", b,
		want{chat: ab.ID, peer: a.ID, last: 3, lastBody: "ab 3", unread: 0, read: 3, peerRead: 1, role: herald.RoleMember},
		want{chat: g.ID, last: 4, lastBody: "g 4", unread: 3, read: 1, peerRead: 4, role: herald.RoleMember},
	)

	// Peer names and chat fields come along; the newest activity is first.
	ds, err := f.s.Dialogs(f.ctx, a.ID, herald.DialogCursor{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	for _, d := range ds {
		order = append(order, d.Chat.ID)
		if d.Peer != nil && d.Peer.Username == "" {
			t.Errorf("dialog %d: peer %+v has no username", d.Chat.ID, d.Peer)
		}
		if d.Chat.ID == ab.ID && (d.Peer == nil || d.Peer.Username != "bobby" || d.Chat.Kind != herald.Direct || d.Chat.LastSeq != 3) {
			t.Errorf("dialog with bobby = %+v, peer %+v", d.Chat, d.Peer)
		}
		if d.Chat.ID == g.ID && (d.Chat.Kind != herald.Group || d.Chat.MemberCount != 3 || d.Chat.LastSeq != 4) {
			t.Errorf("group dialog chat = %+v", d.Chat)
		}
	}
	if want := []int64{g.ID, ab.ID, ac.ID}; !slices.Equal(order, want) {
		t.Errorf("dialog order = %v, want %v (newest activity first)", order, want)
	}

	// Deleted and hidden messages are neither Last nor unread.
	if _, err := f.s.DeleteMessages(f.ctx, b.ID, ab.ID, []int64{3}, true, f.tick()); err != nil {
		t.Fatal(err)
	}
	check("after delete for everyone", a,
		want{chat: ab.ID, peer: b.ID, last: 2, lastBody: "ab 2", unread: 1, read: 1, peerRead: 3, role: herald.RoleMember},
		want{chat: g.ID, last: 4, lastBody: "g 4", unread: 1, read: 3, peerRead: 4, role: herald.RoleOwner},
		want{chat: ac.ID, peer: c.ID, role: herald.RoleMember},
	)
	if _, err := f.s.DeleteMessages(f.ctx, a.ID, ab.ID, []int64{2}, false, f.tick()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ReadHistory(f.ctx, a.ID, g.ID, 4, f.tick()); err != nil {
		t.Fatal(err)
	}
	check("after delete for me and reading", a,
		want{chat: ab.ID, peer: b.ID, last: 1, lastBody: "ab 1", unread: 0, read: 1, peerRead: 3, role: herald.RoleMember},
		want{chat: g.ID, last: 4, lastBody: "g 4", unread: 0, read: 4, peerRead: 4, role: herald.RoleOwner},
		want{chat: ac.ID, peer: c.ID, role: herald.RoleMember},
	)
	check("others unaffected by a's deletion for themself", b,
		want{chat: ab.ID, peer: a.ID, last: 2, lastBody: "ab 2", unread: 0, read: 3, peerRead: 1, role: herald.RoleMember},
		want{chat: g.ID, last: 4, lastBody: "g 4", unread: 3, read: 1, peerRead: 4, role: herald.RoleMember},
	)
	if _, err := f.s.ReadHistory(f.ctx, a.ID, ab.ID, 3, f.tick()); err != nil {
		t.Fatal(err)
	}
	check("after a read everything", b,
		want{chat: ab.ID, peer: a.ID, last: 2, lastBody: "ab 2", unread: 0, read: 3, peerRead: 3, role: herald.RoleMember},
		want{chat: g.ID, last: 4, lastBody: "g 4", unread: 3, read: 1, peerRead: 4, role: herald.RoleMember},
	)
}

// The chat list comes in pages that, read one after another from each
// page's last line, list every chat once, newest activity first, chats
// equally recent by id, downward.
func testDialogsPaging(t *testing.T, f *fixture) {
	a := f.user()
	var chats []herald.Chat
	for range 4 {
		chats = append(chats, f.direct(a.ID, f.user().ID))
	}
	// Three groups made at one instant: the cursor must break the tie.
	at := f.tick()
	for range 3 {
		g, _, err := f.s.CreateGroup(f.ctx, herald.Chat{Title: "tie", CreatedBy: a.ID, CreatedAt: at}, nil)
		if err != nil {
			t.Fatal(err)
		}
		chats = append(chats, g)
	}
	f.send(chats[1].ID, a.ID, "moves chat 1 to the top")
	f.send(chats[5].ID, a.ID, "and chat 5 above it")

	all, err := f.s.Dialogs(f.ctx, a.ID, herald.DialogCursor{}, 1000)
	if err != nil || len(all) != len(chats) {
		t.Fatalf("Dialogs: %d lines, %v; want %d", len(all), err, len(chats))
	}
	for i := 1; i < len(all); i++ {
		p, d := all[i-1], all[i]
		if d.Active.After(p.Active) || (d.Active.Equal(p.Active) && d.Chat.ID > p.Chat.ID) {
			t.Errorf("line %d (chat %d, active %v) comes after chat %d, active %v", i, d.Chat.ID, d.Active, p.Chat.ID, p.Active)
		}
	}
	if all[0].Chat.ID != chats[5].ID || all[1].Chat.ID != chats[1].ID {
		t.Errorf("top of the list: chats %d, %d; want %d, %d", all[0].Chat.ID, all[1].Chat.ID, chats[5].ID, chats[1].ID)
	}
	for _, size := range []int{1, 2, 3, 7} {
		var got []int64
		var after herald.DialogCursor
		for range 100 {
			page, err := f.s.Dialogs(f.ctx, a.ID, after, size)
			if err != nil {
				t.Fatalf("page of %d after %+v: %v", size, after, err)
			}
			if len(page) > size {
				t.Fatalf("page of %d has %d lines", size, len(page))
			}
			for _, d := range page {
				got = append(got, d.Chat.ID)
			}
			if len(page) < size {
				break
			}
			last := page[len(page)-1]
			after = herald.DialogCursor{At: last.Active, ChatID: last.Chat.ID}
		}
		want := make([]int64, len(all))
		for i, d := range all {
			want[i] = d.Chat.ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %v; want %v", size, got, want)
		}
	}
}

func testBodies(t *testing.T, f *fixture) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	bodies := []struct {
		name string
		body []byte
	}{
		{"one zero byte", []byte{0}},
		{"every byte value", all},
		{"invalid UTF-8", []byte("\xff\xfe\xc3\x28 \xed\xa0\x80")},
		{"SQL-looking", []byte("'); DROP TABLE messages; -- \\x00 %_")},
		{"trailing zeros", []byte{1, 0, 0, 0}},
		{"64 KiB random", big},
	}
	a, b := f.user(), f.user()
	c := f.direct(a.ID, b.ID)
	start := f.pts(b.ID)
	for i, tc := range bodies {
		in := bytes.Clone(tc.body)
		m, ups, dup, err := f.s.AppendMessage(f.ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, Body: in, SentAt: f.tick()})
		if err != nil || dup {
			t.Fatalf("%s: AppendMessage: dup %v, %v", tc.name, dup, err)
		}
		if m.Seq != int64(i+1) || !bytes.Equal(m.Body, tc.body) {
			t.Errorf("%s: AppendMessage returned seq %d with a different body", tc.name, m.Seq)
		}
		for _, u := range ups {
			if u.Message == nil || !bytes.Equal(u.Message.Body, tc.body) {
				t.Errorf("%s: update %s carries a different body", tc.name, show(u))
			}
		}
		// The store keeps its own copy: the caller may reuse its buffer.
		for j := range in {
			in[j] ^= 0xff
		}
		got, err := f.s.Message(f.ctx, b.ID, c.ID, m.Seq)
		if err != nil || !bytes.Equal(got.Body, tc.body) {
			t.Errorf("%s: Message body differs (len %d, want %d), %v", tc.name, len(got.Body), len(tc.body), err)
		}
	}
	hist := f.history(b.ID, c.ID)
	if len(hist) != len(bodies) {
		t.Fatalf("History has %d messages, want %d", len(hist), len(bodies))
	}
	for _, m := range hist {
		if tc := bodies[m.Seq-1]; !bytes.Equal(m.Body, tc.body) {
			t.Errorf("%s: History body differs", tc.name)
		}
	}
	var news int
	for _, u := range f.diff(b.ID, start) {
		if u.Kind != herald.UpdNewMessage {
			continue
		}
		news++
		if tc := bodies[u.Seq-1]; u.Message == nil || !bytes.Equal(u.Message.Body, tc.body) {
			t.Errorf("%s: Difference body differs", tc.name)
		}
	}
	if news != len(bodies) {
		t.Errorf("Difference has %d new messages, want %d", news, len(bodies))
	}

	rev := slices.Clone(big)
	slices.Reverse(rev)
	if _, _, err := f.s.EditMessage(f.ctx, c.ID, 1, rev, f.tick()); err != nil {
		t.Fatalf("EditMessage: %v", err)
	}
	if got, err := f.s.Message(f.ctx, a.ID, c.ID, 1); err != nil || !bytes.Equal(got.Body, rev) {
		t.Errorf("edited body differs (len %d), %v", len(got.Body), err)
	}
}

func testClosed(t *testing.T, s store.Store) {
	closed := false
	t.Cleanup(func() {
		if !closed { // the test stopped early
			s.Close()
		}
	})
	f := newFixture(t, s)
	a, b := f.user(), f.user()
	c := f.direct(a.ID, b.ID)
	f.send(c.ID, a.ID, "durable")
	closed = true
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	_, err := s.CreateUser(ctx, herald.User{Username: "latecomer", CreatedAt: t0}, []byte("h"), "")
	wantKind(t, "CreateUser after Close", err, herald.Unavailable)
	_, _, _, err = s.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, Body: []byte("late"), SentAt: t0})
	wantKind(t, "AppendMessage after Close", err, herald.Unavailable)
	_, err = s.ReadHistory(ctx, b.ID, c.ID, 1, t0)
	wantKind(t, "ReadHistory after Close", err, herald.Unavailable)
	_, _, err = s.UserByName(ctx, a.Username)
	wantKind(t, "UserByName after Close", err, herald.Unavailable)
	_, err = s.History(ctx, a.ID, c.ID, 0, 10)
	wantKind(t, "History after Close", err, herald.Unavailable)
	_, err = s.Difference(ctx, a.ID, 0, 10)
	wantKind(t, "Difference after Close", err, herald.Unavailable)
}
