package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"google.golang.org/protobuf/proto"
)

// sdev is a device with secret chats running.
type sdev struct {
	*device
	s     *client.Secret
	store client.SecretStore
}

func secretOn(t *testing.T, d *device, st client.SecretStore, now func() time.Time, receive bool) *sdev {
	t.Helper()
	if st == nil {
		st = &client.MemoryStore{}
	}
	s := client.NewSecret(d.Client, client.SecretOptions{Store: st, PreKeys: 10, Now: now})
	if err := s.Init(ctxT(t)); err != nil {
		t.Fatalf("%s: secret init: %v", d.user.name, err)
	}
	if receive {
		ctx, cancel := context.WithCancel(context.Background())
		s.Receive(ctx)
		t.Cleanup(func() { cancel(); s.Close() })
	}
	return &sdev{device: d, s: s, store: st}
}

// nextSecret waits for the next secret message on d.
func nextSecret(t *testing.T, d *sdev) *client.SecretMessage {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.s.Events():
			if ev.Err != nil {
				t.Fatalf("%s: %v", d.user.name, ev.Err)
			}
			if ev.Message != nil {
				return ev.Message
			}
		case <-timeout:
			t.Fatalf("%s: no secret message within 20s", d.user.name)
		}
	}
}

// nextSecretErr waits for the next secret event on d and returns its error.
func nextSecretErr(t *testing.T, d *sdev) error {
	t.Helper()
	select {
	case ev := <-d.s.Events():
		if ev.Err == nil {
			t.Fatalf("%s: got %+v, want an error", d.user.name, ev)
		}
		return ev.Err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no secret event within 20s", d.user.name)
	}
	return nil
}

func secretSend(t *testing.T, d *sdev, to, text string, opts client.SecretSendOptions) *client.SecretMessage {
	t.Helper()
	m, err := d.s.Send(ctxT(t), to, text, opts)
	if err != nil {
		t.Fatalf("%s: secret send: %v", d.user.name, err)
	}
	return m
}

// Every device of both people decrypts: two of bobby's and alice's second
// device, which sees what alice sent; a device offline while a message was
// sent decrypts it after reconnecting; a device added later gets new
// messages but no history, and the sender is warned its list changed.
func TestSecretFanOutDevices(t *testing.T) {
	n := startNode(t, "")
	a1 := secretOn(t, signup(t, n, "alice"), nil, nil, true)
	a2 := secretOn(t, login(t, n, a1.user), nil, nil, true)
	b1 := secretOn(t, signup(t, n, "bobby"), nil, nil, true)
	b2dir := t.TempDir()
	b2dev := login(t, n, b1.user)
	b2 := secretOn(t, b2dev, (client.Home{Dir: b2dir}).SecretStore(), nil, true)

	id, err := a1.s.Start(ctxT(t), b1.user.name)
	if err != nil || !strings.HasPrefix(id, "s") {
		t.Fatalf("start = %q, %v", id, err)
	}
	sent := secretSend(t, a1, b1.user.name, "hello bobby", client.SecretSendOptions{})
	if sent.ChatID != id {
		t.Errorf("chat id %q, want %q", sent.ChatID, id)
	}
	for _, d := range []*sdev{b1, b2, a2} {
		m := nextSecret(t, d)
		if m.Text != "hello bobby" || m.ID != sent.ID || m.ChatID != id {
			t.Errorf("%s got %+v", d.user.name, m)
		}
		if d == a2 && (!m.Outgoing || m.Peer != b1.user.name) {
			t.Errorf("alice's second device: outgoing=%v peer=%q", m.Outgoing, m.Peer)
		}
	}
	reply := secretSend(t, b2, a1.user.name, "hi alice", client.SecretSendOptions{})
	for _, d := range []*sdev{a1, a2, b1} {
		if m := nextSecret(t, d); m.ID != reply.ID || m.Text != "hi alice" {
			t.Errorf("%s got %+v", d.user.name, m)
		}
	}

	// b2 goes offline; a message waits for it on the server.
	b2.s.Close()
	b2dev.Close()
	offline := secretSend(t, a1, b1.user.name, "while you were away", client.SecretSendOptions{})
	nextSecret(t, b1)
	nextSecret(t, a2)
	c := newClient(t, n.URL(), b2dev.token, false, -1)
	b2again := secretOn(t, &device{Client: c, user: b1.user, token: b2dev.token}, (client.Home{Dir: b2dir}).SecretStore(), nil, true)
	if m := nextSecret(t, b2again); m.ID != offline.ID {
		t.Errorf("after reconnecting b2 got %+v", m)
	}
	hist, err := b2again.s.History(ctxT(t), a1.user.name)
	if err != nil || len(hist) != 3 {
		t.Fatalf("b2's history: %d messages, %v", len(hist), err)
	}
	info, err := os.Stat(filepath.Join(b2dir, "secret", "identity"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("identity file: %v, %v; want mode 0600", info, err)
	}

	// A new device of bobby's: the next send is refused as stale, retried,
	// and warns alice; the new device sees only what follows.
	b3 := secretOn(t, login(t, n, b1.user), nil, nil, true)
	after := secretSend(t, a1, b1.user.name, "after your new device", client.SecretSendOptions{})
	if after.Warning == "" {
		t.Error("no warning to the sender after bobby's devices changed")
	}
	if m := nextSecret(t, b3); m.ID != after.ID {
		t.Errorf("new device got %+v", m)
	}
	hist, err = b3.s.History(ctxT(t), a1.user.name)
	if err != nil || len(hist) != 1 {
		t.Errorf("new device's history has %d messages (%v), want only the new one", len(hist), err)
	}

	// A send for a stale list is refused with the current devices.
	err = a1.Call(ctxT(t), "secret.send", &pb.SecretSendRequest{Username: b1.user.name, Envelopes: []*pb.OutgoingEnvelope{{DeviceId: b3.Self2(), Type: 2, Body: []byte("x")}}}, nil)
	var stale *herald.StaleDevicesError
	if !errors.As(err, &stale) || herald.ErrorKind(err) != herald.Stale || len(stale.Missing) == 0 || len(stale.Current) != 2 {
		t.Errorf("stale send: %v (%+v)", err, stale)
	}
}

// Self2 is the device's id.
func (d *sdev) Self2() int64 { _, id := d.Self(); return id }

// Two senders racing for bobby's last one-time prekeys never get the same
// one; once they run out, bundles carry the signed prekey only, and a
// session built on one still works. Bobby is told his supply is low and
// tops it up.
func TestSecretPreKeysClaimedOnce(t *testing.T) {
	n := startNode(t, "")
	b := secretOn(t, signup(t, n, "bobby"), nil, nil, false) // 10 one-time prekeys
	const racers = 16
	claimers := make([]*device, racers)
	for i := range claimers {
		claimers[i] = signup(t, n, "racer")
	}
	var mu sync.Mutex
	got := map[uint32]int{}
	none := 0
	var wg sync.WaitGroup
	for _, c := range claimers {
		wg.Go(func() {
			var bl pb.BundleList
			if err := c.Call(ctxT(t), "keys.bundles", &pb.BundlesRequest{Username: b.user.name}, &bl); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, bu := range bl.Bundles {
				if bu.PreKey == nil {
					none++
				} else {
					got[bu.PreKey.Id]++
				}
			}
		})
	}
	wg.Wait()
	for id, k := range got {
		if k > 1 {
			t.Errorf("one-time prekey %d handed out %d times", id, k)
		}
	}
	if len(got) != 10 || none != racers-10 {
		t.Errorf("%d distinct prekeys and %d bundles without one; want 10 and %d", len(got), none, racers-10)
	}
	var st pb.KeyStatus
	if err := b.Call(ctxT(t), "keys.status", &pb.Empty{}, &st); err != nil || !st.Low || st.PreKeys != 0 {
		t.Errorf("status after exhaustion: %+v, %v", &st, err)
	}
	// A sender whose session rests on the signed prekey alone.
	a := secretOn(t, signup(t, n, "alice"), nil, nil, false)
	m := secretSend(t, a, b.user.name, "signed prekey only", client.SecretSendOptions{})
	if err := b.s.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	hist, err := b.s.History(ctxT(t), a.user.name)
	if err != nil || len(hist) != 1 || hist[0].ID != m.ID {
		t.Fatalf("bobby's history %v, %v", hist, err)
	}
	if err := b.Call(ctxT(t), "keys.status", &pb.Empty{}, &st); err != nil || st.Low || st.PreKeys < 10 {
		t.Errorf("status after bobby synced: %+v, %v; want a fresh batch", &st, err)
	}
}

// A flipped byte is rejected without breaking the session; a replayed
// envelope is not shown twice; envelopes opened out of order (within the
// ratchet's window) decrypt.
func TestSecretTamperReplayOrder(t *testing.T) {
	n := startNode(t, "")
	a := secretOn(t, signup(t, n, "alice"), nil, nil, false)
	b := secretOn(t, signup(t, n, "bobby"), nil, nil, false)
	var sent []*client.SecretMessage
	for _, text := range []string{"one", "two", "three"} {
		sent = append(sent, secretSend(t, a, b.user.name, text, client.SecretSendOptions{}))
	}
	var l pb.EnvelopeList
	if err := b.Call(ctxT(t), "secret.fetch", &pb.FetchRequest{}, &l); err != nil || len(l.Envelopes) != 3 {
		t.Fatalf("fetch: %d envelopes, %v", len(l.Envelopes), err)
	}
	evs := l.Envelopes
	bad := proto.Clone(evs[2]).(*pb.Envelope)
	bad.Body = bytes.Clone(evs[2].Body)
	bad.Body[len(bad.Body)-12] ^= 0x01
	if _, err := b.s.Open(ctxT(t), bad); err == nil {
		t.Fatal("a tampered envelope decrypted")
	}
	for _, i := range []int{2, 0, 1} {
		ev, err := b.s.Open(ctxT(t), evs[i])
		if err != nil || ev == nil || ev.Message == nil || ev.Message.ID != sent[i].ID {
			t.Fatalf("envelope %d out of order: %+v, %v", i, ev, err)
		}
	}
	if ev, err := b.s.Open(ctxT(t), evs[1]); err != nil || ev != nil {
		t.Errorf("replay: %+v, %v; want nothing shown", ev, err)
	}
	hist, err := b.s.History(ctxT(t), a.user.name)
	if err != nil || len(hist) != 3 {
		t.Errorf("history: %d, %v", len(hist), err)
	}
	// The session still works both ways.
	secretSend(t, b, a.user.name, "still here", client.SecretSendOptions{})
	if err := a.s.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.s.History(ctxT(t), b.user.name); len(h) != 4 {
		t.Errorf("alice's history has %d messages, want 4", len(h))
	}
}

// The server deletes an envelope when its device acknowledges it, and
// drops one past its TTL undelivered.
func TestSecretEnvelopeAckAndTTL(t *testing.T) {
	n := startNode(t, "")
	a := secretOn(t, signup(t, n, "alice"), nil, nil, false)
	b := secretOn(t, signup(t, n, "bobby"), nil, nil, false)
	bid := b.Self2()
	env := []*pb.OutgoingEnvelope{{DeviceId: bid, Type: 2, Body: []byte("opaque")}}
	if err := a.Call(ctxT(t), "secret.send", &pb.SecretSendRequest{Username: b.user.name, Envelopes: env}, nil); err != nil {
		t.Fatal(err)
	}
	var l pb.EnvelopeList
	if err := b.Call(ctxT(t), "secret.fetch", &pb.FetchRequest{}, &l); err != nil || len(l.Envelopes) != 1 {
		t.Fatalf("fetch: %v, %v", l.Envelopes, err)
	}
	if err := b.Call(ctxT(t), "secret.ack", &pb.AckRequest{Ids: []int64{l.Envelopes[0].Id}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Call(ctxT(t), "secret.fetch", &pb.FetchRequest{}, &l); err != nil || len(l.Envelopes) != 0 {
		t.Fatalf("after ack: %v, %v", l.Envelopes, err)
	}
	if err := a.Call(ctxT(t), "secret.send", &pb.SecretSendRequest{Username: b.user.name, Envelopes: env, TtlMs: 1}, nil); err != nil {
		t.Fatal(err)
	}
	// Wait for the drop; no claim about how fast it comes.
	for {
		if err := b.Call(ctxT(t), "secret.fetch", &pb.FetchRequest{}, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Envelopes) == 0 {
			break
		}
		if ctxT(t).Err() != nil {
			t.Fatal("the envelope outlived its TTL")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Safety numbers match on both sides, and change — with a warning and
// the verified mark cleared — when bobby's device is re-created.
func TestSecretSafetyNumbers(t *testing.T) {
	n := startNode(t, "")
	a := secretOn(t, signup(t, n, "alice"), nil, nil, true)
	b := secretOn(t, signup(t, n, "bobby"), nil, nil, true)
	sa, err := a.s.SafetyNumber(ctxT(t), b.user.name)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.s.SafetyNumber(ctxT(t), a.user.name)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Number != sb.Number || len(strings.ReplaceAll(sa.Number, " ", "")) != 60 {
		t.Fatalf("safety numbers differ: %q vs %q", sa.Number, sb.Number)
	}
	if v, err := a.s.Verify(ctxT(t), b.user.name); err != nil || !v.Verified {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	secretSend(t, a, b.user.name, "before", client.SecretSendOptions{})
	nextSecret(t, b)

	// Bobby's device is re-created: logged out, logged in anew.
	if err := b.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b2 := secretOn(t, login(t, n, b.user), nil, nil, true)
	if b2.Self2() == b.Self2() {
		// SQLite gave the new device the old one's id: to alice, that
		// device's identity key changed. Nothing goes to it, and nothing
		// from it is shown, until she accepts.
		if _, err := a.s.Send(ctxT(t), b.user.name, "after", client.SecretSendOptions{}); !herald.IsKind(err, herald.KeyChanged) {
			t.Fatalf("send to a device whose key changed: %v; want KEY_CHANGED", err)
		}
		held := secretSend(t, b2, a.user.name, "from my new device", client.SecretSendOptions{})
		if err := nextSecretErr(t, a); !herald.IsKind(err, herald.KeyChanged) {
			t.Fatalf("alice opened a message from a changed key: %v", err)
		}
		if h, _ := a.s.Stored(b.user.id); len(h) != 1 {
			t.Fatalf("alice's chat has %d messages before she accepted; want only the first", len(h))
		}
		if _, err := a.s.Accept(ctxT(t), b.user.name); err != nil {
			t.Fatal(err)
		}
		if got := nextSecret(t, a); got.ID != held.ID {
			t.Errorf("after accepting alice got %+v, want the held message", got)
		}
	} else {
		m := secretSend(t, a, b.user.name, "after", client.SecretSendOptions{})
		if m.Warning == "" {
			t.Error("no warning after bobby's device list changed")
		}
		if got := nextSecret(t, b2); got.ID != m.ID {
			t.Errorf("bobby's new device got %+v", got)
		}
	}
	sa2, err := a.s.SafetyNumber(ctxT(t), b.user.name)
	if err != nil || sa2.Number == sa.Number || sa2.Verified || !sa2.Changed {
		t.Errorf("after the change: %+v, %v", sa2, err)
	}
	sb2, err := b2.s.SafetyNumber(ctxT(t), a.user.name)
	if err != nil || sb2.Number != sa2.Number {
		t.Errorf("bobby's new number %q, alice's %q (%v)", sb2.Number, sa2.Number, err)
	}
}

// A secret message with a timer disappears from both sides' stores once
// the recipient has read it and the timer ran out.
func TestSecretTTLBothSides(t *testing.T) {
	n := startNode(t, "")
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	a := secretOn(t, signup(t, n, "alice"), nil, now, true)
	b := secretOn(t, signup(t, n, "bobby"), nil, now, true)
	m := secretSend(t, a, b.user.name, "burn after reading", client.SecretSendOptions{TTL: 10 * time.Second})
	if got := nextSecret(t, b); got.TTL != 10*time.Second {
		t.Fatalf("bobby got %+v", got)
	}
	// Unread, the timer has not started: an hour later it is still there.
	clock.Add(time.Hour.Milliseconds())
	hist, err := b.s.History(ctxT(t), a.user.name) // bobby reads it now
	if err != nil || len(hist) != 1 || hist[0].ExpiresAt.IsZero() {
		t.Fatalf("bobby's history: %+v, %v", hist, err)
	}
	// Alice's device learns it was read, from an encrypted receipt.
	timeout := time.After(20 * time.Second)
	for read := false; !read; {
		select {
		case ev := <-a.s.Events():
			read = len(ev.Read) == 1 && ev.Read[0] == m.ID
		case <-timeout:
			t.Fatal("alice never learned the message was read")
		}
	}
	// Just before the end both still have it; just after, the purge that
	// runs as timers fall due leaves nothing in either store.
	clock.Add((9 * time.Second).Milliseconds())
	for _, d := range []*sdev{a, b} {
		if _, err := d.s.Purge(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if keys, _ := d.store.Keys("msg/"); len(keys) != 1 {
			t.Errorf("%s: %v before the timer ran out", d.user.name, keys)
		}
	}
	clock.Add((2 * time.Second).Milliseconds())
	for _, d := range []*sdev{a, b} {
		if _, err := d.s.Purge(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if keys, _ := d.store.Keys("msg/"); len(keys) != 0 {
			t.Errorf("%s's store still holds %v", d.user.name, keys)
		}
		peer := b.user.name
		if d == b {
			peer = a.user.name
		}
		if h, err := d.s.History(ctxT(t), peer); err != nil || len(h) != 0 {
			t.Errorf("%s still shows %d messages (%v)", d.user.name, len(h), err)
		}
	}
}

// recorder captures every WebSocket message and HTTP body that passes
// between clients and the server.
type recorder struct {
	mu  sync.Mutex
	all [][]byte
}

func (r *recorder) add(b []byte) {
	r.mu.Lock()
	r.all = append(r.all, bytes.Clone(b))
	r.mu.Unlock()
}

type tee struct {
	io.ReadCloser
	r *recorder
}

func (t tee) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.r.add(p[:n])
	return n, err
}

type recordingTransport struct{ r *recorder }

func (rt recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body = tee{req.Body, rt.r}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = tee{resp.Body, rt.r}
	}
	return resp, err
}

// proxy relays clients to n and records everything both ways.
func proxy(t *testing.T, n *server.Node, rec *recorder) string {
	target, _ := url.Parse(n.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = recordingTransport{rec}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ws" {
			rp.ServeHTTP(w, r)
			return
		}
		in, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		in.SetReadLimit(16 << 20)
		out, _, err := websocket.Dial(r.Context(), "ws://"+n.Addr()+"/v1/ws", nil)
		if err != nil {
			in.CloseNow()
			return
		}
		out.SetReadLimit(16 << 20)
		pump := func(from, to *websocket.Conn) {
			for {
				typ, b, err := from.Read(context.Background())
				if err != nil {
					from.CloseNow()
					to.CloseNow()
					return
				}
				rec.add(b)
				if to.Write(context.Background(), typ, b) != nil {
					return
				}
			}
		}
		go pump(out, in)
		pump(in, out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// The server never sees a secret message's text or file: a marker in
// both appears nowhere under the data directory (database, blobs), in
// the server's logs, or in any frame or HTTP body it sent or received.
func TestSecretServerSeesNoPlaintext(t *testing.T) {
	const marker = "ZEBRA-7d1f-PLAINTEXT-MARKER"
	dir := t.TempDir()
	logs := &syncBuffer{}
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax,
		Log: slogTo(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	rec := &recorder{}
	url := proxy(t, n, rec)
	dev := func(prefix string) *sdev {
		c := newClient(t, url, "", true, -1)
		name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
		res, err := c.Signup(ctxT(t), &pb.SignupRequest{Username: name, Password: password, DeviceName: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return secretOn(t, &device{Client: c, user: user{name: name, id: res.User.Id}, token: res.Token}, nil, nil, true)
	}
	a, b := dev("alice"), dev("bobby")
	secretSend(t, a, b.user.name, "the plan: "+marker, client.SecretSendOptions{TTL: time.Minute})
	plain := bytes.Repeat([]byte(marker+" page of the secret plan\n"), 4000)
	secretSend(t, a, b.user.name, "attached "+marker, client.SecretSendOptions{File: bytes.NewReader(plain), FileSize: int64(len(plain)), FileName: "plan-" + marker + ".txt"})
	m1, m2 := nextSecret(t, b), nextSecret(t, b)
	if !strings.Contains(m1.Text, marker) || m2.File == nil {
		t.Fatalf("bobby got %+v and %+v", m1, m2)
	}
	var got bytes.Buffer
	if err := b.s.Download(ctxT(t), m2.File, &got); err != nil || !bytes.Equal(got.Bytes(), plain) {
		t.Fatalf("download: %v (%d bytes, want %d)", err, got.Len(), len(plain))
	}
	secretSend(t, b, a.user.name, "ack "+marker, client.SecretSendOptions{})
	nextSecret(t, a)
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var files int
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		files++
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("the marker is in %s", p)
		}
		return nil
	})
	if files < 2 {
		t.Fatalf("found %d files under the data directory", files)
	}
	if strings.Contains(logs.b.String(), marker) {
		t.Error("the marker is in the server's logs")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var total int
	for _, f := range rec.all {
		total += len(f)
		if bytes.Contains(f, []byte(marker)) {
			t.Fatalf("the marker crossed the wire: %q", f[:min(len(f), 200)])
		}
	}
	if len(rec.all) < 20 || total < len(plain) {
		t.Fatalf("recorded only %d frames, %d bytes: the recording is broken", len(rec.all), total)
	}
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// The signed prekey rotates on schedule: a device whose signed prekey is
// older than RotateEvery publishes a new one, which the server takes
// because it is newer, and sessions built on either keep working.
func TestSecretSignedPreKeyRotates(t *testing.T) {
	n := startNode(t, "")
	var clock atomic.Int64
	// Bobby's device made its keys eight days ago.
	clock.Store(time.Now().Add(-8 * 24 * time.Hour).UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	b := secretOn(t, signup(t, n, "bobby"), nil, now, false)
	a := secretOn(t, signup(t, n, "alice"), nil, nil, false)
	var before, after pb.KeyStatus
	if err := b.Call(ctxT(t), "keys.status", &pb.Empty{}, &before); err != nil {
		t.Fatal(err)
	}
	secretSend(t, a, b.user.name, "on the first signed prekey", client.SecretSendOptions{})
	clock.Store(time.Now().UnixMilli())
	if err := b.s.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Call(ctxT(t), "keys.status", &pb.Empty{}, &after); err != nil {
		t.Fatal(err)
	}
	if after.SignedAt <= before.SignedAt {
		t.Fatalf("the signed prekey was not rotated: made at %d, before %d", after.SignedAt, before.SignedAt)
	}
	var bl pb.BundleList
	if err := a.Call(ctxT(t), "keys.bundles", &pb.BundlesRequest{Username: b.user.name}, &bl); err != nil || len(bl.Bundles) != 1 {
		t.Fatalf("bundles: %v, %v", bl.Bundles, err)
	}
	if bl.Bundles[0].SignedPreKey.Id != 2 {
		t.Errorf("the server hands out signed prekey %d, want the rotated 2", bl.Bundles[0].SignedPreKey.Id)
	}
	// A new sender's session rests on the new signed prekey.
	c := secretOn(t, signup(t, n, "carol"), nil, nil, false)
	secretSend(t, c, b.user.name, "on the second", client.SecretSendOptions{})
	secretSend(t, a, b.user.name, "still on the first session", client.SecretSendOptions{})
	if err := b.s.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{a.user.name, c.user.name} {
		if h, err := b.s.History(ctxT(t), peer); err != nil || len(h) == 0 {
			t.Errorf("bobby's chat with %s: %d messages, %v", peer, len(h), err)
		}
	}
}
