package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/blob/dir"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/crypto"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/sqlite"
	"google.golang.org/protobuf/proto"
)

func frame(t testing.TB, method string, params proto.Message) []byte {
	p, err := proto.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 7, Method: method, Params: p}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRequest(t *testing.T) {
	resp, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Response{Response: &pb.Response{Id: 1}}})
	tests := []struct {
		name   string
		binary bool
		data   []byte
		method string // empty: want an INVALID_ARGUMENT error
	}{
		{"request", true, frame(t, "messages.send", &pb.SendRequest{Text: "hi"}), "messages.send"},
		{"text frame", false, []byte(`{"method":"x"}`), ""},
		{"garbage", true, []byte{0xff, 0xff, 0xff, 0x01}, ""},
		{"truncated", true, frame(t, "messages.send", &pb.SendRequest{Text: "hello"})[:5], ""},
		{"response from a client", true, resp, ""},
		{"empty", true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeRequest(tt.binary, tt.data)
			if tt.method == "" {
				if !herald.IsKind(err, herald.Invalid) {
					t.Fatalf("got %v, %v; want INVALID_ARGUMENT", req, err)
				}
				return
			}
			if err != nil || req.Method != tt.method || req.Id != 7 {
				t.Fatalf("got %v, %v", req, err)
			}
		})
	}
}

// FuzzDecodeRequest feeds arbitrary bytes to the frame decoder and to the
// parameter decoder of every method: nothing may panic, and a frame that
// decodes must survive a round trip.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(frame(f, "messages.send", &pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: "hello"}))
	f.Add(frame(f, "auth.login", &pb.LoginRequest{Username: "alice", Password: "x"}))
	f.Add(frame(f, "updates.difference", &pb.DifferenceRequest{Pts: 5}))
	f.Add([]byte{0x0a, 0x80})
	f.Add([]byte("\x0a\x05\x12\x03\xff\xfe\xfd"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(true, data)
		if err != nil {
			if herald.ErrorKind(err) != herald.Invalid {
				t.Fatalf("decoder error of kind %s", herald.ErrorKind(err))
			}
		} else {
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatalf("decoded request does not re-encode: %v", err)
			}
			var again pb.Request
			if err := proto.Unmarshal(b, &again); err != nil || !proto.Equal(req, &again) {
				t.Fatalf("round trip changed the request")
			}
		}
		for name, m := range methods {
			p, err := m.decode(data)
			if err != nil {
				if herald.ErrorKind(err) != herald.Invalid {
					t.Fatalf("%s: decoder error of kind %s", name, herald.ErrorKind(err))
				}
				continue
			}
			if _, err := proto.Marshal(p); err != nil {
				t.Fatalf("%s: decoded params do not re-encode: %v", name, err)
			}
		}
	})
}

// fuzzNode is a transport over a real service and SQLite file, for
// FuzzMethodFrames: one per fuzzing process.
type fuzzNode struct {
	srv   *Server
	alice service.Caller
}

func newFuzzNode(f testing.TB) *fuzzNode {
	ctx := context.Background()
	d := f.TempDir()
	db, err := sqlite.Open(filepath.Join(d, "herald.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	blobs, err := dir.New(filepath.Join(d, "blobs"))
	if err != nil {
		f.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		f.Fatal(err)
	}
	ring, err := crypto.OpenKeyRing(filepath.Join(d, "keyring"), key, 0)
	if err != nil {
		f.Fatal(err)
	}
	b := memory.New()
	var secret store.Secret
	secret, _ = any(db).(store.Secret)
	bots, _ := any(db).(store.Bots)
	svc := service.New(service.Config{Store: db, Moderation: db, Bus: b, Sealer: sealer, Ring: ring, Blobs: blobs,
		Bots: bots, Secret: secret, Signup: service.SignupInvite,
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	code, err := svc.CreateInvite(ctx)
	if err != nil {
		f.Fatal(err)
	}
	sess, err := svc.Signup(ctx, "alice", "long enough password", "", "phone", code)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.Signup(ctx, "bobby", "long enough password", "", "phone", mustInvite(f, svc)); err != nil {
		f.Fatal(err)
	}
	srv := New(svc, b, slog.New(slog.NewTextHandler(io.Discard, nil)), Limits{})
	if err := srv.EnableFiles(Files{Blobs: blobs, Sealer: sealer}); err != nil {
		f.Fatal(err)
	}
	return &fuzzNode{srv: srv, alice: service.Caller{UserID: sess.User.ID, DeviceID: sess.Device.ID, Username: "alice"}}
}

func mustInvite(f testing.TB, svc *service.Service) string {
	code, err := svc.CreateInvite(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	return code
}

// FuzzMethodFrames sends a request frame for any method with arbitrary
// parameters through the path a socket's frame takes (decodeRequest, then
// the method table's decoder and handler) on a real service: on a
// connection that has not logged in, and on one of alice's. Every frame
// gets exactly one answer with its id, and a hostile one gets an error of
// a kind a client can act on, never INTERNAL; nothing panics. Signup is by
// invite, so an unauthenticated frame cannot create accounts.
func FuzzMethodFrames(f *testing.F) {
	names := make([]string, 0, len(methods))
	for name := range methods {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := methods[name]
		f.Add(name, []byte{}, false)
		f.Add(name, []byte{}, m.auth)
		f.Add(name, []byte{0x0a, 0x03, 'a', 'b', 'c', 0x10, 0x01}, true)
	}
	send, _ := proto.Marshal(&pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: "hello"})
	f.Add("messages.send", send, true)
	f.Add("no.such.method", []byte{0xff}, true)
	node := newFuzzNode(f)
	f.Fuzz(func(t *testing.T, method string, params []byte, authed bool) {
		data, err := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 9, Method: method, Params: params}}})
		if err != nil {
			return // a method name that is not UTF-8 cannot be sent
		}
		req, err := decodeRequest(true, data)
		if err != nil || req.Method != method || !bytes.Equal(req.Params, params) || req.Id != 9 {
			t.Fatalf("a well-formed frame decodes as %v, %v", req, err)
		}
		c := socketless(node.srv)
		if authed {
			c.caller, c.user, c.device = node.alice, node.alice.UserID, node.alice.DeviceID
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.handle(ctx, req)
		var out pb.Frame
		b, ok := c.queued()
		if !ok {
			t.Fatal("no answer")
		}
		if err := proto.Unmarshal(b, &out); err != nil {
			t.Fatalf("the answer does not decode: %v", err)
		}
		resp := out.GetResponse()
		if resp == nil || resp.Id != 9 {
			t.Fatalf("answer %v, want the response to request 9", &out)
		}
		m, known := methods[method]
		switch e := resp.GetError(); {
		case !known && (e == nil || e.Kind != string(herald.NotFound)):
			t.Fatalf("unknown method %q: %v", method, e)
		case known && m.auth && !authed && (e == nil || e.Kind != string(herald.Unauthenticated)):
			t.Fatalf("%s without logging in: %v", method, e)
		case e != nil && (e.Kind == string(herald.Internal) || e.Kind == "" || e.Message == ""):
			t.Fatalf("%s: error %q %q for hostile parameters", method, e.Kind, e.Message)
		}
	})
}

// The fuzz harness is the real path: alice's frame sends a message, the
// same frame on a connection that has not logged in is refused.
func TestFuzzNodeServes(t *testing.T) {
	node := newFuzzNode(t)
	req, err := decodeRequest(true, frame(t, "messages.send", &pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: "hello"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, authed := range []bool{true, false} {
		c := socketless(node.srv)
		if authed {
			c.caller = node.alice
		}
		c.handle(context.Background(), req)
		var out pb.Frame
		b, _ := c.queued()
		if err := proto.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		resp := out.GetResponse()
		var m pb.Message
		switch {
		case authed && (resp.GetError() != nil || proto.Unmarshal(resp.GetResult(), &m) != nil || m.Text != "hello"):
			t.Fatalf("alice's send: %v", resp)
		case !authed && resp.GetError().GetKind() != string(herald.Unauthenticated):
			t.Fatalf("a send without logging in: %v", resp)
		}
	}
}

// socketless is a connection without a socket: what it is sent stays in
// its queue (no writer is started), for queued to take.
func socketless(s *Server) *conn {
	c := newConn(s, nil, "192.0.2.1")
	c.writing = true
	return c
}

// queued takes the first frame from c's queue.
func (c *conn) queued() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 {
		return nil, false
	}
	b := c.out[0]
	c.out = c.out[1:]
	return b, true
}
