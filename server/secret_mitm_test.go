package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"go.mau.fi/libsignal/util/keyhelper"
	"google.golang.org/protobuf/proto"
)

// mitm plays a malicious server: it relays clients to n and lets the
// test rewrite the server's answers (by the method they answer) before
// the client sees them. What a real server could do, the proxy does.
type mitm struct {
	mu      sync.Mutex
	rewrite func(method string, params []byte, resp *pb.Response)
}

func (m *mitm) set(f func(method string, params []byte, resp *pb.Response)) {
	m.mu.Lock()
	m.rewrite = f
	m.mu.Unlock()
}

func (m *mitm) hook() func(string, []byte, *pb.Response) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rewrite
}

// start returns the URL clients connect to.
func (m *mitm) start(t *testing.T, n *server.Node) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ws" {
			http.Error(w, "only the socket goes through this proxy", http.StatusNotFound)
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
		var mu sync.Mutex
		asked := map[uint64]*pb.Request{}
		go func() { // server → client, rewritten
			for {
				typ, b, err := out.Read(context.Background())
				if err != nil {
					in.CloseNow()
					return
				}
				var f pb.Frame
				if proto.Unmarshal(b, &f) == nil {
					if resp := f.GetResponse(); resp != nil {
						mu.Lock()
						req := asked[resp.Id]
						delete(asked, resp.Id)
						mu.Unlock()
						if h := m.hook(); h != nil && req != nil {
							h(req.Method, req.Params, resp)
							b, _ = proto.Marshal(&f)
						}
					}
				}
				if in.Write(context.Background(), typ, b) != nil {
					return
				}
			}
		}()
		for { // client → server, remembered
			typ, b, err := in.Read(context.Background())
			if err != nil {
				out.CloseNow()
				return
			}
			var f pb.Frame
			if proto.Unmarshal(b, &f) == nil && f.GetRequest() != nil {
				mu.Lock()
				asked[f.GetRequest().Id] = f.GetRequest()
				mu.Unlock()
			}
			if out.Write(context.Background(), typ, b) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// impostor makes the attacker's keys for each device it impersonates,
// the same ones every time it is asked, as a careful attacker would.
type impostor struct {
	mu   sync.Mutex
	keys map[string]*pb.Bundle
}

// swapBundles replaces every bundle's identity key and signed prekey
// with the attacker's (properly signed), and drops the one-time prekey.
// keys.identities is left alone: it keeps telling the truth.
func (im *impostor) swapBundles(t *testing.T) func(string, []byte, *pb.Response) {
	return func(method string, _ []byte, resp *pb.Response) {
		if method != "keys.bundles" || resp.Error != nil {
			return
		}
		var bl pb.BundleList
		if err := proto.Unmarshal(resp.Result, &bl); err != nil {
			t.Errorf("mitm: %v", err)
			return
		}
		im.mu.Lock()
		defer im.mu.Unlock()
		if im.keys == nil {
			im.keys = map[string]*pb.Bundle{}
		}
		for _, b := range bl.Bundles {
			k := fmt.Sprint(b.UserId, ".", b.DeviceId)
			fake := im.keys[k]
			if fake == nil {
				fake = impostorBundle(t)
				im.keys[k] = fake
			}
			b.IdentityKey, b.SignedPreKey, b.PreKey = fake.IdentityKey, fake.SignedPreKey, nil
		}
		resp.Result, _ = proto.Marshal(&bl)
	}
}

func impostorBundle(t *testing.T) *pb.Bundle {
	kp, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := keyhelper.GenerateSignedPreKey(kp, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := sp.Signature()
	return &pb.Bundle{
		IdentityKey:  kp.PublicKey().Serialize(),
		SignedPreKey: &pb.SignedPreKey{Id: sp.ID(), PublicKey: sp.KeyPair().PublicKey().Serialize(), Signature: sig[:], CreatedAt: time.Now().UnixMilli()},
	}
}

// mitmDevice signs a user up through url.
func mitmDevice(t *testing.T, url, prefix string) *device {
	t.Helper()
	c := newClient(t, url, "", true, -1)
	name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	res, err := c.Signup(ctxT(t), &pb.SignupRequest{Username: name, Password: password, DeviceName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return &device{Client: c, user: user{name: name, id: res.User.Id}, token: res.Token}
}

// A server that hands out its own keys in keys.bundles, while telling
// the truth in keys.identities, sits between alice and bobby: each
// one's sessions are with the attacker. Their safety numbers must then
// differ, or comparing them protects nothing.
func TestSecretMaliciousServerSafetyNumbers(t *testing.T) {
	n := startNode(t, "")
	m := &mitm{}
	url := m.start(t, n)
	a := secretOn(t, mitmDevice(t, url, "alice"), nil, nil, false)
	b := secretOn(t, mitmDevice(t, url, "bobby"), nil, nil, false)
	var swapped atomic.Int32
	im := &impostor{}
	swap := im.swapBundles(t)
	m.set(func(method string, params []byte, resp *pb.Response) {
		if method == "keys.bundles" {
			swapped.Add(1)
		}
		swap(method, params, resp)
	})
	sa, err := a.s.SafetyNumber(ctxT(t), b.user.name)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.s.SafetyNumber(ctxT(t), a.user.name)
	if err != nil {
		t.Fatal(err)
	}
	if swapped.Load() == 0 {
		t.Fatal("the proxy swapped no bundle: the test tests nothing")
	}
	if sa.Number == sb.Number {
		t.Fatalf("alice and bobby both see %q while the server sits between them", sa.Number)
	}
}

// Once alice and bobby have a session, a server that says bobby's
// device was re-created (STALE_DEVICES) and hands out its own key for it
// gets nothing: alice's client stops with KEY_CHANGED, sends nothing
// until she accepts, and her verified mark is gone. Accepting is her
// choice; the numbers then differ, which comparing them shows.
func TestSecretKeyChangeStopsSending(t *testing.T) {
	n := startNode(t, "")
	m := &mitm{}
	url := m.start(t, n)
	a := secretOn(t, mitmDevice(t, url, "alice"), nil, nil, false)
	b := secretOn(t, mitmDevice(t, url, "bobby"), nil, nil, false)
	first := secretSend(t, a, b.user.name, "hello", client.SecretSendOptions{})
	if h, err := b.s.History(ctxT(t), a.user.name); err != nil || len(h) != 1 || h[0].ID != first.ID {
		t.Fatalf("bobby's history %v, %v", h, err)
	}
	if _, err := a.s.Verify(ctxT(t), b.user.name); err != nil {
		t.Fatal(err)
	}
	bdev := b.Self2()
	im := &impostor{}
	swap := im.swapBundles(t)
	var sends atomic.Int32
	m.set(func(method string, params []byte, resp *pb.Response) {
		swap(method, params, resp)
		if method != "secret.send" {
			return
		}
		if sends.Add(1) == 1 {
			resp.Result = nil
			resp.Error = &pb.Error{Kind: string(herald.Stale), Message: "devices changed", Stale: &pb.StaleDevices{
				Missing: []int64{bdev}, Extra: []int64{bdev},
				Current: []*pb.DeviceSet{{UserId: b.user.id, DeviceIds: []int64{bdev}}, {UserId: a.user.id}},
			}}
		}
	})
	for i := range 2 {
		_, err := a.s.Send(ctxT(t), b.user.name, "are you there?", client.SecretSendOptions{})
		if !herald.IsKind(err, herald.KeyChanged) || !strings.Contains(herald.ErrorMessage(err), "@"+b.user.name+"'s safety number changed") {
			t.Fatalf("send %d after the key swap: %v; want KEY_CHANGED naming @%s", i+1, err, b.user.name)
		}
	}
	if got := sends.Load(); got != 1 {
		t.Errorf("%d secret.send requests went out; want only the one the server answered with STALE_DEVICES", got)
	}
	sn, err := a.s.SafetyNumber(ctxT(t), b.user.name)
	if err != nil || sn.Verified || sn.KeyChanged == "" {
		t.Errorf("safety number while the change waits: %+v, %v; want not verified, key changed", sn, err)
	}
	if _, err := a.s.Verify(ctxT(t), b.user.name); !herald.IsKind(err, herald.KeyChanged) {
		t.Errorf("verify while the change waits: %v; want KEY_CHANGED", err)
	}
	acc, err := a.s.Accept(ctxT(t), b.user.name)
	if err != nil || acc.Verified || !acc.Changed || acc.KeyChanged != "" {
		t.Fatalf("accept: %+v, %v", acc, err)
	}
	if _, err := a.s.Accept(ctxT(t), b.user.name); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("a second accept: %v; want NOT_FOUND", err)
	}
	secretSend(t, a, b.user.name, "accepted", client.SecretSendOptions{})
	sb, err := b.s.SafetyNumber(ctxT(t), a.user.name)
	if err != nil || sb.Number == acc.Number {
		t.Errorf("after accepting the server's key alice sees %q and bobby %q (%v): comparing would not show the attack", acc.Number, sb.Number, err)
	}
}

// One-time prekeys cannot be drained at the send rate: one script
// claiming bobby's bundles over and over, then ten more accounts doing
// the same, take only a budget of them (per requester, then per
// target) and get bundles with the signed prekey alone after that. A
// session built on such a bundle works.
func TestSecretPreKeyDrainLimited(t *testing.T) {
	n := startNode(t, "")
	bd := signup(t, n, "bobby")
	bs := client.NewSecret(bd.Client, client.SecretOptions{Store: &client.MemoryStore{}, PreKeys: 100})
	if err := bs.Init(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b := &sdev{device: bd, s: bs}
	claim := func(d *device) (oneTime int) {
		var bl pb.BundleList
		if err := d.Call(ctxT(t), "keys.bundles", &pb.BundlesRequest{Username: b.user.name}, &bl); err != nil {
			t.Fatalf("claim: %v", err)
		}
		if len(bl.Bundles) != 1 || bl.Bundles[0].SignedPreKey == nil {
			t.Fatalf("claim gave %v; want one bundle with a signed prekey", bl.Bundles)
		}
		if bl.Bundles[0].PreKey != nil {
			return 1
		}
		return 0
	}
	script := signup(t, n, "drainer")
	took := 0
	for range 100 {
		took += claim(script)
	}
	if took == 0 || took > 30 {
		t.Errorf("one requester took %d one-time prekeys in 100 claims; want some, at most 30", took)
	}
	for range 10 {
		d := signup(t, n, "drainer")
		for range 10 {
			took += claim(d)
		}
	}
	if took > 50 {
		t.Errorf("eleven requesters took %d of bobby's one-time prekeys; want at most 50", took)
	}
	var st pb.KeyStatus
	if err := b.Call(ctxT(t), "keys.status", &pb.Empty{}, &st); err != nil || st.PreKeys < 50 {
		t.Errorf("bobby has %d one-time prekeys left (%v); want at least 50 of 100", st.PreKeys, err)
	}
	// A sender whose bundle carries the signed prekey alone.
	a := secretOn(t, signup(t, n, "alice"), nil, nil, false)
	if claim(a.device) != 0 {
		t.Fatal("alice got a one-time prekey after bobby's budget was spent")
	}
	m := secretSend(t, a, b.user.name, "on the signed prekey alone", client.SecretSendOptions{})
	hist, err := b.s.History(ctxT(t), a.user.name)
	if err != nil || len(hist) != 1 || hist[0].ID != m.ID {
		t.Fatalf("bobby's history %v, %v", hist, err)
	}
}
