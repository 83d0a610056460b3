package server_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/push/pushtest"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// startPushNode starts a node whose push endpoints may be on loopback
// (heraldd -push-allow-private), as the test push service is.
func startPushNode(t *testing.T, adjust func(*server.Config)) *server.Node {
	t.Helper()
	cfg := server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax, PushAllowPrivate: true,
		SweepEvery: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	n, err := server.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// payload is what a device decrypts (service.Payload).
type payload = service.Payload

func subscribe(t *testing.T, d *device, ps *pushtest.Service, name string) *pushtest.Sub {
	t.Helper()
	sub := ps.Subscribe(name)
	if err := d.PushSubscribe(ctxT(t), sub.Endpoint, sub.P256dh, sub.Auth); err != nil {
		t.Fatalf("%s subscribes: %v", d.user.name, err)
	}
	return sub
}

// pushes decodes the pushes to endpoint.
func pushes(t *testing.T, ps *pushtest.Service, endpoint string) []payload {
	t.Helper()
	var out []payload
	for _, p := range ps.GotFor(endpoint) {
		var pl payload
		if err := p.Decode(&pl); err != nil {
			t.Fatalf("payload %q: %v", p.Payload, err)
		}
		out = append(out, pl)
	}
	return out
}

// waitPush waits for a push to endpoint that matches keep.
func waitPush(t *testing.T, ps *pushtest.Service, endpoint, what string, keep func(payload) bool) payload {
	t.Helper()
	var got payload
	ok := ps.Wait(20*time.Second, func([]pushtest.Push) bool {
		for _, pl := range pushes(t, ps, endpoint) {
			if keep(pl) {
				got = pl
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("%s: no such push within 20s; got %+v (refused as malformed: %v)", what, pushes(t, ps, endpoint), ps.Bad())
	}
	return got
}

func messagePush(chatID, seq int64) func(payload) bool {
	return func(p payload) bool { return p.Kind == "message" && p.ChatID == chatID && p.Seq == seq }
}

// noPush checks that nothing matching drop reached endpoint, once a
// later message (marker) has: one endpoint's pushes go out in order.
func noPush(t *testing.T, ps *pushtest.Service, endpoint, what string, marker *pb.Message, drop func(payload) bool) {
	t.Helper()
	waitPush(t, ps, endpoint, what+" (marker)", messagePush(marker.ChatId, marker.Id))
	for _, pl := range pushes(t, ps, endpoint) {
		if drop(pl) {
			t.Errorf("%s: got %+v", what, pl)
		}
	}
}

// TestPushMessages: a subscribed device that is not open gets an
// encrypted, VAPID-signed push for a direct message, a group message and
// a channel post, naming the chat and the sender; a muted group notifies
// only mentions and replies; the privacy switches hide text and sender;
// a focused device is not notified twice.
func TestPushMessages(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	n := startPushNode(t, nil)
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	sub := subscribe(t, bobby, ps, "bobby")
	ctx := ctxT(t)

	cfg, err := bobby.PushConfig(ctx)
	if err != nil || !cfg.Enabled || cfg.VapidPublicKey == "" {
		t.Fatalf("push.config = %v, %v", cfg, err)
	}

	// Direct.
	dm := send(t, alice, to(bobby.user.name), "lunch at noon?")
	got := waitPush(t, ps, sub.Endpoint, "direct", messagePush(dm.ChatId, dm.Id))
	if got.Title != alice.user.name || got.Body != "lunch at noon?" || got.Chat != "direct" {
		t.Errorf("direct push = %+v", got)
	}
	for _, p := range ps.GotFor(sub.Endpoint) {
		if p.VAPIDKey != cfg.VapidPublicKey || p.Urgency != "high" || p.Topic == "" || p.TTL == "" {
			t.Errorf("push headers: key %s (server's %s), urgency %q, topic %q, TTL %q", p.VAPIDKey, cfg.VapidPublicKey, p.Urgency, p.Topic, p.TTL)
		}
	}
	// The sender's own devices are not notified of what it sent.
	aliceSub := subscribe(t, alice, ps, "alice")

	// Group.
	g, err := alice.CreateGroup(ctx, "Climbing", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	gm := send(t, alice, &pb.Peer{ChatId: g.Id}, "Saturday at the crag")
	got = waitPush(t, ps, sub.Endpoint, "group", messagePush(g.Id, gm.Id))
	if got.Title != "Climbing" || got.Sender != alice.user.name || got.Body != "Saturday at the crag" || got.Chat != "group" {
		t.Errorf("group push = %+v", got)
	}

	// Channel: the post names the channel, not its (unsigned) author.
	ch := createChannel(t, alice, "pushnews", false)
	if _, err := bobby.Join(ctx, ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	post := send(t, alice, &pb.Peer{ChatId: ch.Id}, "release 1.0 is out")
	got = waitPush(t, ps, sub.Endpoint, "channel", messagePush(ch.Id, post.Id))
	if got.Title != ch.Title || got.Sender != "" || got.Body != "release 1.0 is out" {
		t.Errorf("channel push = %+v", got)
	}

	// Muted group: a plain message notifies nobody; a mention and a reply do.
	if _, err := bobby.SetChatNotify(ctx, g.Id, "all", -1); err != nil {
		t.Fatal(err)
	}
	quiet := send(t, alice, &pb.Peer{ChatId: g.Id}, "just chatting")
	mention := send(t, alice, &pb.Peer{ChatId: g.Id}, "@"+bobby.user.name+" bring the rope")
	waitPush(t, ps, sub.Endpoint, "mention in a muted group", messagePush(g.Id, mention.Id))
	mine := send(t, bobby, &pb.Peer{ChatId: g.Id}, "sure")
	reply, err := alice.Send(ctx, &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "thanks", ReplyTo: mine.Id})
	if err != nil {
		t.Fatal(err)
	}
	waitPush(t, ps, sub.Endpoint, "reply in a muted group", messagePush(g.Id, reply.Id))
	marker := send(t, alice, to(bobby.user.name), "marker 1")
	noPush(t, ps, sub.Endpoint, "a plain message in a muted group", marker, messagePush(g.Id, quiet.Id))

	// Off: not even a mention. Muted channel: nothing.
	if _, err := bobby.SetChatNotify(ctx, g.Id, "off", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := bobby.SetChatNotify(ctx, ch.Id, "all", int64(time.Hour/time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	off := send(t, alice, &pb.Peer{ChatId: g.Id}, "@"+bobby.user.name+" still there?")
	post2 := send(t, alice, &pb.Peer{ChatId: ch.Id}, "release 1.1")
	marker = send(t, alice, to(bobby.user.name), "marker 2")
	noPush(t, ps, sub.Endpoint, "a mention in a chat set to off, a post in a muted channel", marker, func(p payload) bool {
		return messagePush(g.Id, off.Id)(p) || messagePush(ch.Id, post2.Id)(p)
	})

	// Privacy switches.
	if err := bobby.SetPushPrefs(ctx, &pb.PushPrefs{HideText: true, HideSender: true}); err != nil {
		t.Fatal(err)
	}
	secret := send(t, alice, to(bobby.user.name), "the door code is 4711")
	got = waitPush(t, ps, sub.Endpoint, "hidden text", messagePush(secret.ChatId, secret.Id))
	if strings.Contains(got.Body, "4711") || got.Title == alice.user.name || got.Sender != "" {
		t.Errorf("with text and sender hidden: %+v", got)
	}
	if err := bobby.SetPushPrefs(ctx, &pb.PushPrefs{}); err != nil {
		t.Fatal(err)
	}

	// A focused device is not notified; once unfocused it is again.
	if err := bobby.Call(ctx, "push.focus", &pb.PushFocusRequest{Focused: true}, nil); err != nil {
		t.Fatal(err)
	}
	seen := send(t, alice, to(bobby.user.name), "you are looking at this")
	if err := bobby.Call(ctx, "push.focus", &pb.PushFocusRequest{Focused: false}, nil); err != nil {
		t.Fatal(err)
	}
	marker = send(t, alice, to(bobby.user.name), "marker 3")
	noPush(t, ps, sub.Endpoint, "a message to a focused device", marker, messagePush(seen.ChatId, seen.Id))

	// Alice's device heard of bobby's "sure" only, never of her own messages.
	for _, p := range pushes(t, ps, aliceSub.Endpoint) {
		if p.Kind == "message" && !(p.ChatID == g.Id && p.Seq == mine.Id) {
			t.Errorf("alice's device got a push for %+v", p)
		}
	}
	if bad := ps.Bad(); len(bad) > 0 {
		t.Errorf("pushes the push service refused: %v", bad)
	}
}

// TestPushWithdrawAndSecret: deleting a message for everyone and a timer
// running out withdraw its notification; a secret message pushes only a
// wake-up, with no content.
func TestPushWithdrawAndSecret(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	n := startPushNode(t, nil)
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	sub := subscribe(t, bobby, ps, "bobby")
	ctx := ctxT(t)

	m := send(t, alice, to(bobby.user.name), "oops, wrong chat")
	waitPush(t, ps, sub.Endpoint, "the message", messagePush(m.ChatId, m.Id))
	if err := alice.Delete(ctx, m.ChatId, []int64{m.Id}, true); err != nil {
		t.Fatal(err)
	}
	w := waitPush(t, ps, sub.Endpoint, "withdrawal after delete", func(p payload) bool { return p.Kind == "withdraw" && p.ChatID == m.ChatId })
	if !slices.Equal(w.Seqs, []int64{m.Id}) || w.Body != "" || w.Title != "" {
		t.Errorf("withdrawal = %+v", w)
	}

	g, err := alice.CreateGroup(ctx, "Ephemeral", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	timed, err := alice.Send(ctx, &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "gone in a second", TtlMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	waitPush(t, ps, sub.Endpoint, "the timed message", messagePush(g.Id, timed.Id))
	waitPush(t, ps, sub.Endpoint, "withdrawal after the timer", func(p payload) bool {
		return p.Kind == "withdraw" && p.ChatID == g.Id && slices.Contains(p.Seqs, timed.Id)
	})

	// Secret chat: the push carries no chat, sender or text.
	sa := secretOn(t, alice, nil, nil, false)
	secretOn(t, bobby, nil, nil, false)
	if _, err := sa.s.Start(ctx, bobby.user.name); err != nil {
		t.Fatal(err)
	}
	before := len(ps.GotFor(sub.Endpoint))
	secretSend(t, sa, bobby.user.name, "meet me at the old mill", client.SecretSendOptions{})
	wake := waitPush(t, ps, sub.Endpoint, "secret wake-up", func(p payload) bool { return p.Kind == "wake" })
	if !wake.Secret || wake.ChatID != 0 || wake.Body != "" || wake.Title != "" || wake.Sender != "" {
		t.Errorf("secret wake-up = %+v", wake)
	}
	for _, p := range ps.GotFor(sub.Endpoint)[before:] {
		if strings.Contains(string(p.Payload), "old mill") || strings.Contains(string(p.Payload), alice.user.name) {
			t.Errorf("a secret message's push shows %s", p.Payload)
		}
	}
}

// TestPushSubscriptionLifecycle: revoking a device deletes its
// subscription; 410 from the push service deletes it; 429 is retried
// after Retry-After; the cap per account holds; without
// -push-allow-private loopback endpoints are refused.
func TestPushSubscriptionLifecycle(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	n := startPushNode(t, nil)
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	bobby2 := login(t, n, bobby.user)
	ctx := ctxT(t)
	sub := subscribe(t, bobby, ps, "bobby")
	sub2 := subscribe(t, bobby2, ps, "bobby2")
	list := func() []string {
		subs, err := bobby.PushSubscriptions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range subs {
			out = append(out, s.Endpoint)
		}
		slices.Sort(out)
		return out
	}
	if got := list(); !slices.Equal(got, []string{sub.Endpoint, sub2.Endpoint}) {
		t.Fatalf("push.list = %v", got)
	}
	if err := bobby.RevokeDevice(ctx, func() int64 { _, id := bobby2.Self(); return id }()); err != nil {
		t.Fatal(err)
	}
	if got := list(); !slices.Equal(got, []string{sub.Endpoint}) {
		t.Fatalf("after revoking the second device: %v", got)
	}

	// 429 with Retry-After: 1, then accepted.
	ps.Reply(sub.Endpoint, "1", 429)
	start := time.Now()
	m := send(t, alice, to(bobby.user.name), "after a pause")
	waitPush(t, ps, sub.Endpoint, "the push retried after 429", messagePush(m.ChatId, m.Id))
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("retried after %v, before the push service's Retry-After of 1s", waited)
	}

	// 410: the subscription is gone.
	ps.Reply(sub.Endpoint, "", 410)
	send(t, alice, to(bobby.user.name), "to a gone endpoint")
	waitUntil(t, "the gone subscription is deleted", func() bool { return len(list()) == 0 })

	// The cap per account.
	var capErr error
	for i := range herald.MaxPushSubscriptions + 1 {
		s := ps.Subscribe("cap" + string(rune('a'+i)))
		if capErr = bobby.PushSubscribe(ctx, s.Endpoint, s.P256dh, s.Auth); capErr != nil {
			break
		}
	}
	if !herald.IsKind(capErr, herald.RateLimited) || len(list()) != herald.MaxPushSubscriptions {
		t.Errorf("subscribing past the cap: %v with %d stored", capErr, len(list()))
	}

	// Bad input is refused with a reason.
	for _, tc := range []struct{ endpoint, p256dh, auth string }{
		{"ftp://push.example/x", sub.P256dh, sub.Auth},
		{ps.URL() + "/push/x", "not-a-key", sub.Auth},
		{ps.URL() + "/push/x", sub.P256dh, "c2hvcnQ"},
		{"https://push.example/" + strings.Repeat("x", 2000), sub.P256dh, sub.Auth},
	} {
		err := alice.PushSubscribe(ctx, tc.endpoint, tc.p256dh, tc.auth)
		if !herald.IsKind(err, herald.Invalid) && !herald.IsKind(err, herald.TooLarge) {
			t.Errorf("subscribe %.40s: %v, want INVALID_ARGUMENT or TOO_LARGE", tc.endpoint, err)
		}
	}

	// Without -push-allow-private: no loopback, no plain http.
	strict := startNode(t, "")
	carol := signup(t, strict, "carol")
	s := ps.Subscribe("carol")
	if err := carol.PushSubscribe(ctx, s.Endpoint, s.P256dh, s.Auth); !herald.IsKind(err, herald.Invalid) {
		t.Errorf("a loopback endpoint on a strict server: %v, want INVALID_ARGUMENT", err)
	}
	if err := carol.PushSubscribe(ctx, "https://127.0.0.1/push/x", s.P256dh, s.Auth); !herald.IsKind(err, herald.Invalid) {
		t.Errorf("an https loopback endpoint on a strict server: %v, want INVALID_ARGUMENT", err)
	}
}

// TestPushOncePerMessageAcrossNodes: two nodes on one database each run
// a dispatcher; each message is pushed once, by the node it was sent on,
// and both sign with the one VAPID key made on first start.
func TestPushOncePerMessageAcrossNodes(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) { c.PushAllowPrivate = true })
	a, b := node(), node()
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")
	sub := subscribe(t, bobby, ps, "bobby")
	carol := signup(t, b, "carol")
	ctx := ctxT(t)
	g, err := alice.CreateGroup(ctx, "Nodes", []string{bobby.user.name, carol.user.name})
	if err != nil {
		t.Fatal(err)
	}
	var sent []*pb.Message
	for i := range 6 {
		from := alice
		if i%2 == 1 {
			from = carol
		}
		sent = append(sent, send(t, from, &pb.Peer{ChatId: g.Id}, "hello across nodes"))
	}
	last := sent[len(sent)-1]
	waitPush(t, ps, sub.Endpoint, "the last message", messagePush(g.Id, last.Id))
	time.Sleep(500 * time.Millisecond) // a duplicate from the other node would have come by now
	count := map[int64]int{}
	for _, p := range pushes(t, ps, sub.Endpoint) {
		count[p.Seq]++
	}
	for _, m := range sent {
		if count[m.Id] != 1 {
			t.Errorf("message %d pushed %d times, want once", m.Id, count[m.Id])
		}
	}
	keys := map[string]bool{}
	for _, p := range ps.GotFor(sub.Endpoint) {
		keys[p.VAPIDKey] = true
	}
	if len(keys) != 1 {
		t.Errorf("the nodes signed with %d VAPID keys, want one", len(keys))
	}
}

// TestPushMissedCall: a call nobody answered notifies the callee's
// subscribed device with the call's record; an answered one does not.
func TestPushMissedCall(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	n := startPushNode(t, func(c *server.Config) { c.AbuseLimits.CallRing = time.Second })
	ctx := ctxT(t)
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	sub := subscribe(t, bobby, ps, "bobby")
	info, err := alice.StartCall(ctx, to(bobby.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	missed := nextCallRecord(t, bobby)
	got := waitPush(t, ps, sub.Endpoint, "missed call", messagePush(info.ChatId, missed.Id))
	if !strings.Contains(got.Body, "Missed call from @"+alice.user.name) {
		t.Errorf("missed call push %+v", got)
	}
	// Answered and hung up: the record notifies nobody.
	info, err = alice.StartCall(ctx, to(bobby.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bobby.AnswerCall(ctx, info.CallId, answer); err != nil {
		t.Fatal(err)
	}
	if err := alice.HangUp(ctx, info.CallId); err != nil {
		t.Fatal(err)
	}
	ended := nextCallRecord(t, bobby)
	marker := send(t, alice, to(bobby.user.name), "after the call")
	noPush(t, ps, sub.Endpoint, "an answered call", marker, messagePush(info.ChatId, ended.Id))
}
