package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

func createChannel(t *testing.T, d *device, name string, private bool) *pb.Chat {
	t.Helper()
	ch, err := d.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Username: name, Title: "News " + name, Private: private})
	if err != nil {
		t.Fatalf("create channel %s: %v", name, err)
	}
	return ch
}

// nextPost waits for the next channel post on d.
func nextPost(t *testing.T, d *device) *pb.Update {
	t.Helper()
	return next(t, d, func(u *pb.Update) bool { return u.GetNewMessage() != nil && u.ChatPts > 0 })
}

func TestChannelPostReachesEveryConnectedSubscriberOnce(t *testing.T) {
	n := startNode(t, "")
	owner := signup(t, n, "owner")
	ch := createChannel(t, owner, fmt.Sprintf("bigcast%d", userSeq.Add(1)), false)

	const subscribers = 200
	subs := make([]*device, subscribers)
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for i := range subs {
		subs[i] = signup(t, n, "subscriber")
	}
	for _, d := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Join(ctxT(t), ch.Username, ""); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	info, err := owner.GetChat(ctxT(t), &pb.Peer{ChatId: ch.Id})
	if err != nil || info.MemberCount != subscribers+1 {
		t.Fatalf("subscriber count %v, %v", info.GetMemberCount(), err)
	}
	// Each subscriber's device has taken in its join before the post.
	for _, d := range subs {
		next(t, d, func(u *pb.Update) bool { return u.GetChatJoined().GetChatId() == ch.Id })
	}

	const posts = 3
	for i := range posts {
		send(t, owner, &pb.Peer{ChatId: ch.Id}, fmt.Sprintf("edition %d", i))
	}
	for _, d := range subs {
		for i := range posts {
			u := nextPost(t, d)
			m := u.GetNewMessage()
			if m.Text != fmt.Sprintf("edition %d", i) || m.From != ch.Username || m.FromId != 0 || u.ChatPts != int64(i+1) {
				t.Fatalf("%s got %v (chat_pts %d)", d.user.name, m, u.ChatPts)
			}
		}
	}
	// Exactly once: nothing else arrives for anyone after a marker post.
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "marker")
	for _, d := range subs {
		if m := nextPost(t, d).GetNewMessage(); m.Text != "marker" {
			t.Fatalf("%s got %q after the posts, want the marker", d.user.name, m.Text)
		}
	}
}

func TestOfflineSubscriberCatchesUpPerChannel(t *testing.T) {
	n := startNode(t, "")
	owner, reader := signup(t, n, "owner"), signup(t, n, "reader")
	ch := createChannel(t, owner, fmt.Sprintf("daily%d", userSeq.Add(1)), false)
	if _, err := reader.Join(ctxT(t), ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "seen live")
	nextPost(t, reader)
	pts, chans := reader.Pts(), reader.ChannelPts()
	if chans[ch.Id] != 1 {
		t.Fatalf("reader's channel position %v", chans)
	}
	reader.Close()

	for i := range 30 {
		send(t, owner, &pb.Peer{ChatId: ch.Id}, fmt.Sprintf("missed %d", i))
	}
	// An edit and a delete while away arrive too, in log order.
	if _, err := owner.Edit(ctxT(t), ch.Id, 2, "missed 0, corrected"); err != nil {
		t.Fatal(err)
	}
	if err := owner.Delete(ctxT(t), ch.Id, []int64{3}, true); err != nil {
		t.Fatal(err)
	}

	back := &device{Client: newClientWith(t, n.URL(), reader.token, pts, chans), user: reader.user}
	for i := range 30 {
		m := nextPost(t, back).GetNewMessage()
		want := fmt.Sprintf("missed %d", i)
		if i == 0 {
			want = "missed 0, corrected" // the log gives the message as it is now
		}
		if i == 1 {
			if !m.Deleted {
				t.Fatalf("post 3 was deleted but arrives as %v", m)
			}
			continue
		}
		if m.Text != want {
			t.Fatalf("post %d: got %q, want %q", i, m.Text, want)
		}
	}
	if u := next(t, back, func(u *pb.Update) bool { return u.ChatPts > 0 }); u.GetEditMessage() == nil {
		t.Fatalf("after the posts: %v, want the edit", u)
	}
	if u := next(t, back, func(u *pb.Update) bool { return u.ChatPts > 0 }); u.GetDeleteMessages() == nil {
		t.Fatalf("after the edit: %v, want the delete", u)
	}
}

func TestChannelRules(t *testing.T) {
	n := startNode(t, "")
	owner, fan, stranger := signup(t, n, "owner"), signup(t, n, "fanof"), signup(t, n, "stranger")
	pub := createChannel(t, owner, fmt.Sprintf("public%d", userSeq.Add(1)), false)
	priv := createChannel(t, owner, "Inner circle", true)
	send(t, owner, &pb.Peer{ChatId: pub.Id}, "open post")
	send(t, owner, &pb.Peer{ChatId: priv.Id}, "closed post")

	// Preview a public channel without joining; never a private one.
	hist, err := stranger.History(ctxT(t), &pb.HistoryRequest{Peer: to(pub.Username)})
	if err != nil || len(hist) != 1 || hist[0].Text != "open post" {
		t.Fatalf("preview: %v, %v", hist, err)
	}
	if info, err := stranger.GetChat(ctxT(t), to(pub.Username)); err != nil || info.Role != "none" || info.MemberCount != 1 {
		t.Fatalf("preview info: %v, %v", info, err)
	}
	if _, err := stranger.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: priv.Id}}); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("private preview: %v", err)
	}

	// Posting as a non-admin, member or not, is refused.
	if _, err := fan.Join(ctxT(t), pub.Username, ""); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{fan, stranger} {
		if _, err := d.Send(ctxT(t), &pb.SendRequest{Peer: to(pub.Username), Text: "me too"}); !herald.IsKind(err, herald.PermissionDenied) {
			t.Fatalf("%s posting: %v", d.user.name, err)
		}
	}
	// A forwarded post is the channel's; the admin who wrote it stays unnamed.
	fw, err := fan.Forward(ctxT(t), pub.Id, []int64{1}, to(stranger.user.name))
	if err != nil || len(fw) != 1 || fw[0].Fwd.GetFromId() != 0 || fw[0].Fwd.GetFrom() != pub.Username {
		t.Fatalf("forwarded post %v, %v", fw, err)
	}
	// Subscribers do not see each other.
	if info, err := fan.GetChat(ctxT(t), &pb.Peer{ChatId: pub.Id}); err != nil || len(info.Members) != 0 || info.MemberCount != 2 {
		t.Fatalf("subscriber's view: %v, %v", info, err)
	}
	// Names are one namespace with users.
	if _, err := owner.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Username: stranger.user.name, Title: "x"}); !herald.IsKind(err, herald.AlreadyExists) {
		t.Fatalf("channel named like a user: %v", err)
	}
	if _, err := owner.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Username: pub.Username, Title: "x"}); !herald.IsKind(err, herald.AlreadyExists) {
		t.Fatalf("taken channel name: %v", err)
	}
	anon := newClient(t, n.URL(), "", false, -1)
	if _, err := anon.Signup(ctxT(t), &pb.SignupRequest{Username: pub.Username, Password: password}); !herald.IsKind(err, herald.AlreadyExists) {
		t.Fatalf("user named like a channel: %v", err)
	}

	// Invites: join by code; a revoked code is NOT_FOUND.
	code, err := owner.Invite(ctxT(t), priv.Id, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fan.Invite(ctxT(t), priv.Id, ""); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("non-member making an invite: %v", err)
	}
	if _, err := stranger.Join(ctxT(t), "", code); err != nil {
		t.Fatal(err)
	}
	if h, err := stranger.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: priv.Id}}); err != nil || len(h) != 1 {
		t.Fatalf("after joining by invite: %v, %v", h, err)
	}
	if _, err := owner.Invite(ctxT(t), priv.Id, code); err != nil {
		t.Fatal(err)
	}
	if _, err := fan.Join(ctxT(t), "", code); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("revoked invite: %v", err)
	}

	// An admin may post; signatures name the author when on.
	if err := owner.SetRole(ctxT(t), pub.Id, fan.user.name, true); err != nil {
		t.Fatal(err)
	}
	on := true
	if _, err := owner.SetChat(ctxT(t), &pb.SetChatRequest{ChatId: pub.Id, Signatures: &on}); err != nil {
		t.Fatal(err)
	}
	if m := send(t, fan, to(pub.Username), "by an admin"); m.Author != fan.user.name || m.From != pub.Username || m.FromId != 0 {
		t.Fatalf("signed post: %v", m)
	}
}

func TestChannelViewsCountDistinctViewers(t *testing.T) {
	n := startNode(t, "")
	owner, a, b := signup(t, n, "owner"), signup(t, n, "viewa"), signup(t, n, "viewb")
	ch := createChannel(t, owner, fmt.Sprintf("views%d", userSeq.Add(1)), false)
	for _, d := range []*device{a, b} {
		if _, err := d.Join(ctxT(t), ch.Username, ""); err != nil {
			t.Fatal(err)
		}
	}
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "watch this")
	// a looks three times, from two devices; b once: two viewers.
	a2 := login(t, n, a.user)
	for _, d := range []*device{a, a, a2, b} {
		if _, err := d.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: ch.Id}}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := owner.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: ch.Id}})
	if err != nil || len(h) != 1 {
		t.Fatal(h, err)
	}
	// The owner looked too, which makes three distinct viewers.
	if h[0].Views != 3 {
		t.Fatalf("views %d, want 3 (owner, a, b)", h[0].Views)
	}
	// Leaving and coming back does not make b a new viewer.
	if err := b.Leave(ctxT(t), ch.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctxT(t), ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: ch.Id}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := owner.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: ch.Id}}); h[len(h)-1].Views != 3 {
		t.Fatalf("after b left and rejoined: %d views, want still 3", h[len(h)-1].Views)
	}
}

func TestLeftOrMutedSubscriberGetsNoPushes(t *testing.T) {
	n := startNode(t, "")
	owner, leaver, muter, stayer := signup(t, n, "owner"), signup(t, n, "leaver"), signup(t, n, "muter"), signup(t, n, "stayer")
	ch := createChannel(t, owner, fmt.Sprintf("leaving%d", userSeq.Add(1)), false)
	for _, d := range []*device{leaver, muter, stayer} {
		if _, err := d.Join(ctxT(t), ch.Username, ""); err != nil {
			t.Fatal(err)
		}
	}
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "first")
	for _, d := range []*device{leaver, muter, stayer} {
		nextPost(t, d)
	}
	if err := leaver.Leave(ctxT(t), ch.Id); err != nil {
		t.Fatal(err)
	}
	if err := muter.Mute(ctxT(t), &pb.Peer{ChatId: ch.Id}, true); err != nil {
		t.Fatal(err)
	}
	next(t, leaver, func(u *pb.Update) bool { return u.GetChatLeft() != nil })
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "second")
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "third")
	if m := nextPost(t, stayer).GetNewMessage(); m.Text != "second" {
		t.Fatalf("stayer got %q", m.Text)
	}
	nextPost(t, stayer)
	// The stayer has both; the others got nothing pushed in the meantime.
	for _, d := range []*device{leaver, muter} {
		select {
		case ev := <-d.Events():
			if ev.Update != nil && ev.Update.ChatPts > 0 {
				t.Fatalf("%s got a post after leaving or muting: %v", d.user.name, ev.Update)
			}
		case <-time.After(300 * time.Millisecond):
		}
	}
	// Muted is still readable and still counts unread.
	ds, err := muter.Chats(ctxT(t))
	if err != nil || len(ds) != 1 || !ds[0].Chat.Muted || ds[0].Unread != 3 {
		t.Fatalf("muted dialog: %v, %v", ds, err)
	}
}

func TestLargeGroupSwitchesToFanOutOnRead(t *testing.T) {
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax, LargeGroup: 4,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })

	owner := signup(t, n, "owner")
	members := []*device{signup(t, n, "member"), signup(t, n, "member"), signup(t, n, "member"), signup(t, n, "member")}
	g, err := owner.CreateGroup(ctxT(t), "crowd", []string{members[0].user.name, members[1].user.name})
	if err != nil {
		t.Fatal(err)
	}
	if g.Broadcast {
		t.Fatal("a small group started out broadcast")
	}
	// Two more members take the group past the threshold of four.
	if err := owner.AddMembers(ctxT(t), g.Id, []string{members[2].user.name, members[3].user.name}); err != nil {
		t.Fatal(err)
	}
	info, err := owner.GetChat(ctxT(t), &pb.Peer{ChatId: g.Id})
	if err != nil || !info.Broadcast || info.MemberCount != 5 {
		t.Fatalf("after growing: %v, %v", info, err)
	}
	ptsBefore, _ := members[0].State(ctxT(t))
	m := send(t, members[1], &pb.Peer{ChatId: g.Id}, "to the crowd")
	if m.From != members[1].user.name || m.FromId != members[1].user.id {
		t.Fatalf("group messages stay signed by their sender: %v", m)
	}
	for _, d := range append(members, owner) {
		got := nextPost(t, d).GetNewMessage()
		if got.Service { // "@owner added …": group life is in the history
			got = nextPost(t, d).GetNewMessage()
		}
		if got.Text != "to the crowd" {
			t.Fatalf("%s got %q", d.user.name, got.Text)
		}
	}
	if pts, _ := members[0].State(ctxT(t)); pts != ptsBefore {
		t.Fatalf("a message to a large group wrote to a member's own log (pts %d → %d)", ptsBefore, pts)
	}
}

// A post is signed or not when it is made, as on Telegram: turning author
// signatures on does not reveal who wrote the earlier unsigned posts, and
// turning them off does not hide the author of a signed one.
func TestChannelSignatureIsFixedWhenPosted(t *testing.T) {
	n := startNode(t, "")
	owner, fan := signup(t, n, "sigowner"), signup(t, n, "sigfan")
	ch := createChannel(t, owner, fmt.Sprintf("signed%d", userSeq.Add(1)), false)
	if _, err := fan.Join(ctxT(t), ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	set := func(on bool) {
		t.Helper()
		if _, err := owner.SetChat(ctxT(t), &pb.SetChatRequest{ChatId: ch.Id, Signatures: &on}); err != nil {
			t.Fatal(err)
		}
	}
	anon := send(t, owner, &pb.Peer{ChatId: ch.Id}, "anonymous")
	set(true)
	signed := send(t, owner, &pb.Peer{ChatId: ch.Id}, "signed")
	if anon.Author != "" || signed.Author != owner.user.name {
		t.Fatalf("as sent: anonymous by %q, signed by %q", anon.Author, signed.Author)
	}
	check := func(when string) {
		t.Helper()
		h, err := fan.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: ch.Id}})
		if err != nil || len(h) != 2 {
			t.Fatalf("%s: history %v, %v", when, h, err)
		}
		if h[0].Text != "anonymous" || h[0].Author != "" {
			t.Errorf("%s: the unsigned post shows author %q", when, h[0].Author)
		}
		if h[1].Text != "signed" || h[1].Author != owner.user.name {
			t.Errorf("%s: the signed post shows author %q, want %q", when, h[1].Author, owner.user.name)
		}
	}
	check("signatures on")
	set(false)
	check("signatures off again")
}

// A forwarded channel post carries the channel's title for display
// beside its @name: people know a channel by its title.
func TestForwardedPostCarriesChannelTitle(t *testing.T) {
	n := startNode(t, "")
	owner, fan := signup(t, n, "fwdowner"), signup(t, n, "fwdfan")
	name := fmt.Sprintf("titled%d", userSeq.Add(1))
	ch, err := owner.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Username: name, Title: "Daily News"})
	if err != nil {
		t.Fatal(err)
	}
	post := send(t, owner, &pb.Peer{ChatId: ch.Id}, "Edition 1")
	ms, err := owner.Forward(ctxT(t), ch.Id, []int64{post.Id}, to(fan.user.name))
	if err != nil || len(ms) != 1 {
		t.Fatalf("forward: %v, %v", ms, err)
	}
	h, err := fan.History(ctxT(t), &pb.HistoryRequest{Peer: to(owner.user.name)})
	if err != nil || len(h) != 1 || h[0].Fwd == nil {
		t.Fatalf("fan's history: %v, %v", h, err)
	}
	if f := h[0].Fwd; f.Title != "Daily News" || f.From != name || f.FromId != 0 {
		t.Errorf("forwarded from %+v, want title Daily News and from %s", f, name)
	}
}
