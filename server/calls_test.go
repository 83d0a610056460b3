package server_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/pion/turn/v4"
)

// startCallNode is a node whose calls ring for ring only.
func startCallNode(t *testing.T, ring time.Duration) *server.Node {
	t.Helper()
	return startPushNode(t, func(c *server.Config) { c.AbuseLimits.CallRing = ring })
}

const offer, answer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=offer\r\n", "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=answer\r\n"

// nextCall waits for d's next call signal of call id.
func nextCall(t *testing.T, d *device, id string) *pb.CallEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-d.Events():
			if !ok {
				t.Fatalf("%s: events closed", d.user.name)
			}
			if ev.Call != nil && (id == "" || ev.Call.CallId == id) {
				return ev.Call
			}
		case <-timeout:
			t.Fatalf("%s: no call signal within 20s", d.user.name)
		}
	}
}

// nextCallRecord waits for the service message a call leaves in the chat.
func nextCallRecord(t *testing.T, d *device) *pb.Message {
	t.Helper()
	return next(t, d, func(u *pb.Update) bool { return u.GetNewMessage().GetCall() != nil }).GetNewMessage()
}

func wantCallKind(t *testing.T, what string, err error, kind herald.Kind, sentence string) {
	t.Helper()
	var e *herald.Error
	if !errorsAs(err, &e) || e.Kind != kind || !strings.Contains(e.Msg, sentence) {
		t.Errorf("%s: %v, want %s containing %q", what, err, kind, sentence)
	}
}

// A call rings every device of the callee; the first answer wins and the
// other device stops ringing; candidates reach only the answering
// device; a hang-up ends it everywhere and leaves one record in the chat.
func TestCallAnsweredOnOneDevice(t *testing.T) {
	n := startCallNode(t, time.Minute)
	ctx := ctxT(t)
	alice, bob := signup(t, n, "alice"), signup(t, n, "bobby")
	bob2 := login(t, n, bob.user)
	send(t, alice, to(bob.user.name), "hi") // so the chat exists for everyone's list

	info, err := alice.StartCall(ctx, to(bob.user.name), true, offer)
	if err != nil {
		t.Fatalf("StartCall: %v", err)
	}
	if len(info.CallId) != 32 || info.PeerId != bob.user.id || !info.Video {
		t.Fatalf("StartCall = %+v", info)
	}
	for _, d := range []*device{bob, bob2} {
		in := nextCall(t, d, info.CallId)
		if in.Kind != "incoming" || in.Sdp != offer || in.From != alice.user.name || !in.Video || in.ChatId != info.ChatId {
			t.Fatalf("%s rings with %+v", d.token[:6], in)
		}
	}

	// bob2 answers; bob's first device is too late.
	if _, err := bob2.AnswerCall(ctx, info.CallId, answer); err != nil {
		t.Fatalf("AnswerCall: %v", err)
	}
	_, err = bob.AnswerCall(ctx, info.CallId, answer)
	wantCallKind(t, "a second device answers", err, herald.NotFound, "no longer ringing")
	got := nextCall(t, alice, info.CallId)
	if got.Kind != "answer" || got.Sdp != answer || got.From != bob.user.name {
		t.Fatalf("alice gets %+v, want the answer", got)
	}
	acc := nextCall(t, bob, info.CallId)
	if acc.Kind != "accepted" || acc.FromDevice == 0 {
		t.Fatalf("bob's other device gets %+v, want accepted", acc)
	}
	// The answering device learns too, and can tell it was itself.
	if own := nextCall(t, bob2, info.CallId); own.Kind != "accepted" || own.FromDevice != acc.FromDevice {
		t.Fatalf("bob2 gets %+v", own)
	}

	// ICE both ways, only between the two devices in the call.
	if err := alice.CallCandidate(ctx, info.CallId, `{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}`); err != nil {
		t.Fatalf("alice's candidate: %v", err)
	}
	if c := nextCall(t, bob2, info.CallId); c.Kind != "ice" || !strings.Contains(c.Candidate, "5000") {
		t.Fatalf("bob2 gets %+v, want alice's candidate", c)
	}
	err = bob.CallCandidate(ctx, info.CallId, `{"candidate":"x"}`)
	wantCallKind(t, "a candidate from the device not in the call", err, herald.PermissionDenied, "not in the call")
	if err := bob2.CallCandidate(ctx, info.CallId, `{"candidate":"candidate:2 1 udp 1 127.0.0.1 6000 typ host"}`); err != nil {
		t.Fatalf("bob2's candidate: %v", err)
	}
	if c := nextCall(t, alice, info.CallId); c.Kind != "ice" || !strings.Contains(c.Candidate, "6000") {
		t.Fatalf("alice gets %+v, want bob2's candidate", c)
	}

	err = bob.HangUp(ctx, info.CallId)
	wantCallKind(t, "hanging up from the device not in the call", err, herald.PermissionDenied, "another of your devices")
	time.Sleep(1100 * time.Millisecond) // so the call lasts a second
	if err := bob2.HangUp(ctx, info.CallId); err != nil {
		t.Fatalf("HangUp: %v", err)
	}
	// Every device hears the end; bob's first device never saw the
	// candidate meant for bob2 (it would have come before the end).
	for _, d := range []*device{alice, bob, bob2} {
		end := nextCall(t, d, info.CallId)
		if end.Kind != "ended" || end.Outcome != "ended" || end.DurationMs < 1000 {
			t.Fatalf("%s: %+v, want the end of an answered call", d.user.name, end)
		}
	}
	if err := alice.HangUp(ctx, info.CallId); err != nil {
		t.Errorf("hanging up an ended call: %v, want nothing", err)
	}
	for _, d := range []*device{alice, bob} {
		m := nextCallRecord(t, d)
		if !m.Service || m.FromId != alice.user.id || m.Call.Outcome != "ended" || !m.Call.Video || m.Call.DurationMs < 1000 ||
			!strings.Contains(m.Text, "video call with @"+bob.user.name) {
			t.Errorf("%s's record: %+v", d.user.name, m)
		}
	}
	hist, err := bob.History(ctx, &pb.HistoryRequest{Peer: to(alice.user.name), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if last := hist[len(hist)-1]; last.Call == nil || last.Call.Outcome != "ended" {
		t.Errorf("history's last message = %+v, want the call", last)
	}
}

// Unanswered, declined and busy calls each end with their outcome, and
// the chat records them.
func TestCallOutcomes(t *testing.T) {
	n := startCallNode(t, time.Second)
	ctx := ctxT(t)
	alice, bob, carol := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "carol")

	// Nobody answers: missed, by the ring timer.
	info, err := alice.StartCall(ctx, to(bob.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	nextCall(t, bob, info.CallId)
	for _, d := range []*device{alice, bob} {
		if end := nextCall(t, d, info.CallId); end.Kind != "ended" || end.Outcome != "missed" {
			t.Fatalf("%s: %+v, want missed", d.user.name, end)
		}
	}
	if m := nextCallRecord(t, bob); m.Call.Outcome != "missed" || m.Text != "Missed call from @"+alice.user.name+" to @"+bob.user.name {
		t.Errorf("missed call record: %q %+v", m.Text, m.Call)
	}
	_, err = bob.AnswerCall(ctx, info.CallId, answer)
	wantCallKind(t, "answering a missed call", err, herald.NotFound, "no longer ringing")

	// Declined.
	info, err = alice.StartCall(ctx, to(bob.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	nextCall(t, bob, info.CallId)
	err = alice.DeclineCall(ctx, info.CallId)
	wantCallKind(t, "the caller declines", err, herald.PermissionDenied, "only the person called")
	if err := bob.DeclineCall(ctx, info.CallId); err != nil {
		t.Fatal(err)
	}
	if end := nextCall(t, alice, info.CallId); end.Outcome != "declined" {
		t.Fatalf("alice: %+v, want declined", end)
	}
	if m := nextCallRecord(t, alice); m.Call.Outcome != "declined" {
		t.Errorf("declined record: %+v", m.Call)
	}

	// Busy: carol calls bob while bob talks to alice.
	info, err = alice.StartCall(ctx, to(bob.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	nextCall(t, bob, info.CallId)
	if _, err := bob.AnswerCall(ctx, info.CallId, answer); err != nil {
		t.Fatal(err)
	}
	_, err = carol.StartCall(ctx, to(bob.user.name), false, offer)
	wantCallKind(t, "calling someone in a call", err, herald.Busy, "@"+bob.user.name+" is in another call")
	if m := nextCallRecord(t, bob); m.Call.Outcome != "busy" || m.FromId != carol.user.id {
		t.Errorf("busy record: %+v", m)
	}
	_, err = alice.StartCall(ctx, to(carol.user.name), false, offer)
	wantCallKind(t, "calling while in a call", err, herald.Busy, "you are already in a call")
	// A stranger to the call learns nothing of it.
	err = carol.HangUp(ctx, info.CallId)
	wantCallKind(t, "a stranger hangs up", err, herald.NotFound, "no such call")
	err = carol.CallCandidate(ctx, info.CallId, `{}`)
	wantCallKind(t, "a stranger sends a candidate", err, herald.NotFound, "no such call")
	if err := alice.HangUp(ctx, info.CallId); err != nil {
		t.Fatal(err)
	}
}

// Who may not call, and what hostile signalling gets.
func TestCallRefused(t *testing.T) {
	n := startCallNode(t, time.Minute)
	ctx := ctxT(t)
	alice, bob, carol := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "carol")
	g, err := alice.CreateGroup(ctx, "g", []string{bob.user.name})
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.Call(ctx, "users.block", &pb.BlockRequest{Username: alice.user.name, Blocked: true}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		peer     *pb.Peer
		sdp      string
		kind     herald.Kind
		sentence string
	}{
		{"a group", &pb.Peer{ChatId: g.Id}, offer, herald.Invalid, "direct chats"},
		{"someone who blocked you", to(carol.user.name), offer, herald.PermissionDenied, "does not accept calls"},
		{"nobody", to("nosuchuser"), offer, herald.NotFound, ""},
		{"without an offer", to(bob.user.name), "", herald.Invalid, "session description"},
		{"with a huge offer", to(bob.user.name), strings.Repeat("a", herald.MaxCallSDP+1), herald.TooLarge, "at most"},
	} {
		_, err := alice.StartCall(ctx, tc.peer, false, tc.sdp)
		wantCallKind(t, "calling "+tc.name, err, tc.kind, tc.sentence)
	}

	info, err := alice.StartCall(ctx, to(bob.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	err = alice.CallCandidate(ctx, info.CallId, strings.Repeat("c", herald.MaxCallCandidate+1))
	wantCallKind(t, "a huge candidate", err, herald.TooLarge, "at most")
	for i := range herald.MaxCallCandidates {
		if err := alice.CallCandidate(ctx, info.CallId, `{"candidate":"c"}`); err != nil {
			t.Fatalf("candidate %d: %v", i, err)
		}
	}
	err = alice.CallCandidate(ctx, info.CallId, `{"candidate":"c"}`)
	wantCallKind(t, "one candidate too many", err, herald.RateLimited, "at most")
	_, err = bob.AnswerCall(ctx, "not-a-call", answer)
	wantCallKind(t, "answering a made-up call", err, herald.NotFound, "no such call")
}

// calls.ice_servers hands a device credentials for the node's relay that
// the relay accepts; a node without a relay hands out none.
func TestCallRelayCredentials(t *testing.T) {
	n := startPushNode(t, func(c *server.Config) { c.Media = server.Media{UDP: "127.0.0.1:0"} })
	alice := signup(t, n, "alice")
	var list pb.IceServerList
	if err := alice.Call(ctxT(t), "calls.ice_servers", &pb.Empty{}, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Servers) != 1 || len(list.Servers[0].Urls) != 1 || !strings.HasPrefix(list.Servers[0].Urls[0], "turn:127.0.0.1:") ||
		!strings.HasSuffix(list.Servers[0].Username, fmt.Sprintf(":%d", alice.user.id)) {
		t.Fatalf("ice servers %+v", list.Servers)
	}
	s := list.Servers[0]
	addr := strings.TrimSuffix(strings.TrimPrefix(s.Urls[0], "turn:"), "?transport=udp")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: s.Username, Password: s.Credential,
		Realm: "herald", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("the relay refuses the node's own credentials: %v", err)
	}
	defer relayed.Close()
	// Without -media-allow-private the relay reaches no loopback peer.
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err == nil {
		t.Error("the relay let a client reach a loopback address")
	}

	plain := startCallNode(t, time.Minute)
	bob := signup(t, plain, "bobby")
	list.Reset()
	if err := bob.Call(ctxT(t), "calls.ice_servers", &pb.Empty{}, &list); err != nil || len(list.Servers) != 0 {
		t.Errorf("a node without a relay: %v, %v", list.Servers, err)
	}
}

// A call placed on one node rings the callee's two devices on two nodes;
// the answer, candidates and hang-up each go through whichever node the
// device is on, a call to the busy callee placed on a third node finds
// them busy, and one record lands in the chat. The relay's credentials
// from one node work on another's relay.
func TestCallAcrossNodes(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) {
		c.Media = server.Media{UDP: "127.0.0.1:0", AllowPrivate: true}
	})
	a, b, c := node(), node(), node()
	ctx := ctxT(t)
	alice, bobby, carol := signup(t, a, "alice"), signup(t, b, "bobby"), signup(t, c, "carol")
	bobby2 := login(t, c, bobby.user)

	info, err := alice.StartCall(ctx, to(bobby.user.name), false, offer)
	if err != nil {
		t.Fatal(err)
	}
	nextCall(t, bobby, info.CallId)
	nextCall(t, bobby2, info.CallId)
	if _, err := bobby2.AnswerCall(ctx, info.CallId, answer); err != nil {
		t.Fatalf("answer on node C: %v", err)
	}
	if got := nextCall(t, alice, info.CallId); got.Kind != "answer" || got.Sdp != answer {
		t.Fatalf("alice on node A: %+v", got)
	}
	for _, d := range []*device{bobby, bobby2} {
		if got := nextCall(t, d, info.CallId); got.Kind != "accepted" {
			t.Fatalf("%s: %+v, want accepted", d.token[:6], got)
		}
	}
	_, err = carol.StartCall(ctx, to(bobby.user.name), false, offer)
	wantCallKind(t, "calling bobby from node C while he talks", err, herald.Busy, "in another call")
	if err := alice.CallCandidate(ctx, info.CallId, `{"candidate":"a"}`); err != nil {
		t.Fatal(err)
	}
	if got := nextCall(t, bobby2, info.CallId); got.Kind != "ice" {
		t.Fatalf("bobby2: %+v, want the candidate", got)
	}
	if err := bobby2.HangUp(ctx, info.CallId); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bobby, bobby2} {
		if end := nextCall(t, d, info.CallId); end.Kind != "ended" || end.Outcome != "ended" {
			t.Fatalf("%s: %+v", d.user.name, end)
		}
	}
	nextCallRecord(t, alice)
	hist, err := alice.History(ctx, &pb.HistoryRequest{Peer: to(bobby.user.name), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, m := range hist {
		if m.Call != nil {
			calls++
		}
	}
	if calls != 1 {
		t.Errorf("%d call records in the chat, want 1", calls)
	}

	// Credentials handed out by node A are good on node B's relay.
	var fromA, fromB pb.IceServerList
	if err := alice.Call(ctx, "calls.ice_servers", &pb.Empty{}, &fromA); err != nil {
		t.Fatal(err)
	}
	if err := bobby.Call(ctx, "calls.ice_servers", &pb.Empty{}, &fromB); err != nil {
		t.Fatal(err)
	}
	relayB := strings.TrimSuffix(strings.TrimPrefix(fromB.Servers[0].Urls[0], "turn:"), "?transport=udp")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: relayB, STUNServerAddr: relayB, Username: fromA.Servers[0].Username,
		Password: fromA.Servers[0].Credential, Realm: "herald", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Listen(); err != nil {
		t.Fatal(err)
	}
	relayed, err := tc.Allocate()
	if err != nil {
		t.Fatalf("node B's relay refuses node A's credentials: %v", err)
	}
	relayed.Close()
}
