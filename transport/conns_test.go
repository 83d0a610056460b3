package transport

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/crypto"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store/sqlite"
	"google.golang.org/protobuf/proto"
)

// testNode is one transport server over a real SQLite file and real
// loopback sockets.
type testNode struct {
	svc    *service.Service
	srv    *Server
	url    string
	db     *sqlite.DB
	sealer *crypto.Sealer
	bus    bus.Bus
}

func startTestNode(t testing.TB, limits Limits, b bus.Bus) *testNode {
	t.Helper()
	d := t.TempDir()
	db, err := sqlite.Open(filepath.Join(d, "herald.db"))
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
	if b == nil {
		b = memory.New()
	}
	svc := service.New(service.Config{Store: db, Bus: b, Sealer: sealer,
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
		Limits:       service.Limits{DirectPerSecond: 1 << 20, GroupPerSecond: 1 << 20, ChannelPerSecond: 1 << 20, SignupsPerHourPerAddr: 1 << 20, JoinsPerMinutePerChat: 1 << 20}})
	srv := New(svc, b, nil, limits)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return &testNode{svc: svc, srv: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws", db: db, sealer: sealer, bus: b}
}

func (n *testNode) signup(t testing.TB, name string) (service.Caller, string) {
	t.Helper()
	sess, err := n.svc.Signup(context.Background(), name, "long enough password", "", "phone", "")
	if err != nil {
		t.Fatal(err)
	}
	return service.Caller{UserID: sess.User.ID, DeviceID: sess.Device.ID}, sess.Token
}

// testClient is a raw protocol client.
type testClient struct {
	ws *websocket.Conn
	id uint64
}

func (n *testNode) dial(t testing.TB) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {strings.Replace(n.url, "ws", "http", 1)}}})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &testClient{ws: ws}
}

// call sends a request and returns its response, skipping pushed frames.
func (c *testClient) call(method string, params proto.Message) (*pb.Response, error) {
	c.id++
	b, _ := proto.Marshal(params)
	f, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: c.id, Method: method, Params: b}}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, f); err != nil {
		return nil, err
	}
	for {
		fr, err := c.next(ctx)
		if err != nil {
			return nil, err
		}
		if r := fr.GetResponse(); r != nil && r.Id == c.id {
			return r, nil
		}
	}
}

func (c *testClient) next(ctx context.Context) (*pb.Frame, error) {
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var fr pb.Frame
	if err := proto.Unmarshal(data, &fr); err != nil {
		return nil, err
	}
	return &fr, nil
}

// resume authenticates c with token; it returns the error kind, "" on success.
func (c *testClient) resume(t testing.TB, token string) string {
	t.Helper()
	r, err := c.call("auth.resume", &pb.AuthRequest{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != nil {
		return r.Error.Kind
	}
	return ""
}

// waitText waits for a new message with text to be pushed to c.
func (c *testClient) waitText(t *testing.T, text string) {
	t.Helper()
	if err := c.waitTextErr(text); err != nil {
		t.Fatal(err)
	}
}

func (c *testClient) waitTextErr(text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		fr, err := c.next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", text, err)
		}
		if m := fr.GetUpdate().GetNewMessage(); m != nil && m.GetText() == text {
			return nil
		}
	}
}

// One account cannot open more connections to a node than the cap; the
// refused one is told why, and a slot frees when a connection closes.
// (10,000 connections from one token were all accepted: issue 22.)
func TestConnectionsPerAccountAreCapped(t *testing.T) {
	n := startTestNode(t, Limits{ConnsPerUser: 3}, nil)
	_, token := n.signup(t, "alice")
	var open []*testClient
	for i := 0; i < 3; i++ {
		c := n.dial(t)
		if k := c.resume(t, token); k != "" {
			t.Fatalf("connection %d refused: %s", i, k)
		}
		open = append(open, c)
	}
	extra := n.dial(t)
	if k := extra.resume(t, token); k != string(herald.RateLimited) {
		t.Fatalf("fourth connection of one account: got %q, want %s", k, herald.RateLimited)
	}
	// A bearer token on the upgrade is refused the same way, with a close reason.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater || !strings.Contains(err.Error(), "too many connections") {
		t.Fatalf("bearer connection over the cap: %v, want close 1013 with a reason", err)
	}
	open[0].ws.Close(websocket.StatusNormalClosure, "")
	// The slot frees once the server has seen the close.
	for i := 0; ; i++ {
		again := n.dial(t)
		k := again.resume(t, token)
		if k == "" {
			break
		}
		if i > 200 {
			t.Fatalf("the slot of a closed connection never freed: %s", k)
		}
		again.ws.CloseNow()
		time.Sleep(10 * time.Millisecond)
	}
}

// One address cannot hold more sockets than the cap, authenticated or
// not. (10,000 unauthenticated sockets from one address were accepted.)
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	n := startTestNode(t, Limits{ConnsPerAddr: 4}, nil)
	_, token := n.signup(t, "alice")
	for i := 0; i < 4; i++ {
		c := n.dial(t)
		if i%2 == 0 {
			if k := c.resume(t, token); k != "" {
				t.Fatal(k)
			}
		} else if r, err := c.call("no.such", &pb.Empty{}); err != nil || r.Error == nil {
			t.Fatalf("connection %d: %v %v", i, r, err)
		}
	}
	c := n.dial(t)
	_, err := c.call("no.such", &pb.Empty{})
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater || !strings.Contains(err.Error(), "too many connections from this address") {
		t.Fatalf("fifth socket from one address: %v, want close 1013 with a reason", err)
	}
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"127.0.0.1", "127.0.0.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}, // one /64
		{"::ffff:10.0.0.1", "10.0.0.1"},
	} {
		if addrKey(tc.a) != addrKey(tc.b) {
			t.Errorf("%s and %s should count as one address", tc.a, tc.b)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"127.0.0.1", "127.0.0.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
	} {
		if addrKey(tc.a) == addrKey(tc.b) {
			t.Errorf("%s and %s should count as two addresses", tc.a, tc.b)
		}
	}
}

// A user following N broadcast chats over M connections costs the node
// O(N + M) entries, not one topic entry per chat per connection: 5,000
// channels over 2,000 connections took 1.58 GiB (issue 22).
func TestFollowSetIsSharedByAUsersConnections(t *testing.T) {
	const chats, conns = 40, 6
	n := startTestNode(t, Limits{}, nil)
	alice, token := n.signup(t, "alice")
	var last int64
	for i := 0; i < chats; i++ {
		ch, err := n.svc.CreateChannel(context.Background(), alice, service.ChannelParams{Username: fmt.Sprintf("chan%d", i), Title: "c"})
		if err != nil {
			t.Fatal(err)
		}
		last = ch.ID
	}
	if f, _ := n.svc.FollowedChats(context.Background(), alice); len(f) != chats {
		t.Fatalf("alice follows %d chats, want %d", len(f), chats)
	}
	var cs []*testClient
	var first int
	for i := 0; i < conns; i++ {
		c := n.dial(t)
		if k := c.resume(t, token); k != "" {
			t.Fatal(k)
		}
		cs = append(cs, c)
		if i == 0 {
			first = n.srv.followEntries()
		}
	}
	entries := n.srv.followEntries()
	// Each further connection adds a constant, whatever the follow set;
	// the follow set is held a constant number of times.
	if per := float64(entries-first) / (conns - 1); per > 2 {
		t.Fatalf("each connection beyond the first adds %.0f entries with %d chats followed, want at most 2", per, chats)
	}
	if limit := 3*(chats+1) + conns + 4; entries > limit {
		t.Fatalf("%d chats over %d connections hold %d entries, want at most %d (O(N+M))", chats, conns, entries, limit)
	}
	// Each connection still receives every post.
	if _, err := n.svc.Send(context.Background(), alice, service.SendParams{Peer: service.Peer{ChatID: last}, Text: "post"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.waitText(t, "post")
	}
	// And all of it goes when the connections do.
	for _, c := range cs {
		c.ws.Close(websocket.StatusNormalClosure, "")
	}
	for i := 0; n.srv.followEntries() != 0; i++ {
		if i > 500 {
			t.Fatalf("%d entries left after every connection closed", n.srv.followEntries())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hookBus blocks Subscribe of one topic until released, to hold a big
// follow set's subscription in the middle.
type hookBus struct {
	bus.Bus
	topic   string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *hookBus) Subscribe(topic string, fn func([]byte)) (bus.Subscription, error) {
	if topic == h.topic {
		h.once.Do(func() {
			close(h.entered)
			<-h.release
		})
	}
	return h.Bus.Subscribe(topic, fn)
}

// While one user's follow set is being subscribed, another user's
// message is still delivered: no lock shared with other users is held
// across per-topic work (a big follow set stalled others' sends for 13 s).
func TestBigFollowSetDoesNotBlockOthers(t *testing.T) {
	hb := &hookBus{Bus: memory.New(), entered: make(chan struct{}), release: make(chan struct{})}
	n := startTestNode(t, Limits{}, hb)
	alice, aliceToken := n.signup(t, "alice")
	bob, _ := n.signup(t, "bobby")
	_, carolToken := n.signup(t, "carol")
	var chats []int64
	for i := 0; i < 20; i++ {
		ch, err := n.svc.CreateChannel(context.Background(), alice, service.ChannelParams{Username: fmt.Sprintf("chan%d", i), Title: "c"})
		if err != nil {
			t.Fatal(err)
		}
		chats = append(chats, ch.ID)
	}
	hb.topic = bus.ChatTopic(chats[len(chats)/2])
	carol := n.dial(t)
	if k := carol.resume(t, carolToken); k != "" {
		t.Fatal(k)
	}
	done := make(chan string, 1)
	go func() {
		a := n.dial(t)
		r, err := a.call("auth.resume", &pb.AuthRequest{Token: aliceToken})
		switch {
		case err != nil:
			done <- err.Error()
		case r.Error != nil:
			done <- r.Error.Message
		default:
			done <- ""
		}
	}()
	<-hb.entered // alice's subscription is now stuck halfway
	// The in-process bus delivers on the sender's goroutine: a send
	// blocked by the stuck subscription would never return.
	sent := make(chan error, 1)
	go func() {
		_, err := n.svc.Send(context.Background(), bob, service.SendParams{Peer: service.Peer{Username: "carol"}, Text: "hello carol"})
		sent <- err
	}()
	got := make(chan struct{})
	go func() {
		if carol.waitTextErr("hello carol") == nil {
			close(got)
		}
	}()
	select {
	case <-got:
	case <-time.After(15 * time.Second):
		close(hb.release)
		t.Fatal("carol's message waited for alice's follow set to subscribe")
	}
	close(hb.release)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if e := <-done; e != "" {
		t.Fatalf("alice's resume: %s", e)
	}
}

// A channel post is answered once it is committed; the fan-out to the
// followers runs off the owner's path (issue 16 item 6).
func TestChannelPostAnswersBeforeFanOut(t *testing.T) {
	n := startTestNode(t, Limits{}, nil)
	alice, _ := n.signup(t, "alice")
	_, bobbyToken := n.signup(t, "bobby")
	ch, err := n.svc.CreateChannel(context.Background(), alice, service.ChannelParams{Username: "news1", Title: "c"})
	if err != nil {
		t.Fatal(err)
	}
	bobby := n.dial(t)
	if k := bobby.resume(t, bobbyToken); k != "" {
		t.Fatal(k)
	}
	if r, err := bobby.call("channels.join", &pb.JoinRequest{Username: "news1"}); err != nil || r.Error != nil {
		t.Fatalf("join: %v %v", r, err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func(topic string) {
		if topic == bus.ChatTopic(ch.ID) {
			once.Do(func() { close(entered); <-release })
		}
	}
	fanHook.Store(&hook)
	defer fanHook.Store(nil)
	sent := make(chan error, 1)
	go func() {
		_, err := n.svc.Send(context.Background(), alice, service.SendParams{Peer: service.Peer{ChatID: ch.ID}, Text: "post"})
		sent <- err
	}()
	<-entered // the fan-out is held
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		close(release)
		t.Fatal("the owner's send waited for the fan-out")
	}
	close(release)
	bobby.waitText(t, "post")
}
