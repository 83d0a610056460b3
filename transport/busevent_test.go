package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/crypto"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

// TestBusEventIsTheSealedFrame: what a send publishes carries no
// plaintext, and opens on a node to the very frame its devices receive,
// rendered once by the publisher.
func TestBusEventIsTheSealedFrame(t *testing.T) {
	rb := &recordBus{Bus: memory.New()}
	n := startTestNode(t, Limits{}, rb)
	alice, token := n.signup(t, "alice")
	bobby, _ := n.signup(t, "bobby")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	ctx := context.Background()
	const text = "the plaintext nobody on the bus may read"
	if _, err := n.svc.Send(ctx, bobby, service.SendParams{Peer: service.Peer{Username: "alice"}, Text: text}); err != nil {
		t.Fatal(err)
	}
	c.waitText(t, text)
	seen := rb.userEvents()
	news := 0
	for _, data := range seen {
		if bytes.Contains(data, []byte(text)) || bytes.Contains(data, []byte("plaintext")) {
			t.Fatal("the message text travels on the bus in the clear")
		}
		ev, err := n.svc.DecodeEvent(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != service.EventUpdate {
			t.Fatalf("event kind %d", ev.Kind)
		}
		if !ev.NewMessage { // the new chat's own updates
			continue
		}
		news++
		var fr pb.Frame
		if err := proto.Unmarshal(ev.Frame, &fr); err != nil {
			t.Fatal(err)
		}
		m := fr.GetUpdate().GetNewMessage()
		if m.GetText() != text || m.GetFromId() != bobby.UserID {
			t.Fatalf("the frame on the bus holds %v", &fr)
		}
		if fr.GetUpdate().GetPts() == 0 {
			t.Fatal("a user's update frame without its pts")
		}
	}
	if news != 2 { // bobby's devices and alice's
		t.Fatalf("a send published %d new-message events, want 2", news)
	}
	_ = alice
}

// TestBusEventRefusesWhatItDidNotSeal: a node refuses, with an error and
// no delivery, every event that is cut, altered, too large, of an
// unknown kind, or sealed under another master key.
func TestBusEventRefusesWhatItDidNotSeal(t *testing.T) {
	rb := &recordBus{Bus: memory.New()}
	n := startTestNode(t, Limits{}, rb)
	_, token := n.signup(t, "alice")
	bobby, _ := n.signup(t, "bobby")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	ctx := context.Background()
	if _, err := n.svc.Send(ctx, bobby, service.SendParams{Peer: service.Peer{Username: "alice"}, Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	c.waitText(t, "hello")
	var good []byte
	for _, data := range rb.userEvents() {
		if ev, err := n.svc.DecodeEvent(ctx, data); err != nil {
			t.Fatal(err)
		} else if ev.NewMessage {
			good = data
		}
	}
	if good == nil {
		t.Fatal("no new message was published")
	}
	other := startTestNode(t, Limits{}, nil) // another master key
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		data []byte
		node *testNode
	}{
		{"empty", nil, n},
		{"header only", good[:3], n},
		{"cut", good[:len(good)-1], n},
		{"a ciphertext byte flipped", mutate(func(b []byte) []byte { b[len(b)-20] ^= 1; return b }), n},
		{"the kind changed", mutate(func(b []byte) []byte { b[1] = byte(service.EventTyping); return b }), n},
		{"an unknown kind", mutate(func(b []byte) []byte { b[1] = 99; return b }), n},
		{"the new-message flag cleared", mutate(func(b []byte) []byte { b[2] = 0; return b }), n},
		{"unknown flags", mutate(func(b []byte) []byte { b[2] = 0x81; return b }), n},
		{"a bad magic", mutate(func(b []byte) []byte { b[0] = 0; return b }), n},
		{"too large", append(mutate(func(b []byte) []byte { return b }), make([]byte, service.MaxBusEvent)...), n},
		{"not JSON", []byte("{not json"), n},
		{"JSON of an unknown kind", []byte(`{"k":"nuke"}`), n},
		{"JSON update without its update", []byte(`{"k":"update"}`), n},
		{"JSON follow without its chat", []byte(`{"k":"follow"}`), n},
		{"another master key", good, other},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.node.svc.DecodeEvent(ctx, tc.data); err == nil {
				t.Fatal("decoded")
			} else if k := herald.ErrorKind(err); k != herald.Invalid && k != herald.TooLarge {
				t.Fatalf("error kind %s: %v", k, err)
			}
		})
	}
}

// TestOlderNodesJSONEventsAreDelivered: a node that publishes the older
// JSON events (an older Herald, or a service without the transport's
// frames) still reaches this node's devices, body opened and rendered
// here.
func TestOlderNodesJSONEventsAreDelivered(t *testing.T) {
	n := startTestNode(t, Limits{}, nil)
	alice, token := n.signup(t, "alice")
	bobby, _ := n.signup(t, "bobby")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	old := service.New(service.Config{Store: n.db, Bus: n.bus, Sealer: n.sealer,
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	ctx := context.Background()
	if _, err := old.Send(ctx, bobby, service.SendParams{Peer: service.Peer{Username: "alice"}, Text: "from an older node"}); err != nil {
		t.Fatal(err)
	}
	c.waitText(t, "from an older node")
	// A typing notice takes the same way.
	d, _, err := old.Dialogs(ctx, bobby, herald.DialogCursor{}, 10)
	if err != nil || len(d) == 0 {
		t.Fatal(d, err)
	}
	if err := old.Typing(ctx, bobby, d[0].Chat.ID); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		fr, err := c.next(rctx)
		if err != nil {
			t.Fatal("no typing notice: ", err)
		}
		if ty := fr.GetTyping(); ty != nil {
			if ty.UserId != bobby.UserID || ty.Username != "bobby" {
				t.Fatalf("typing %v", ty)
			}
			break
		}
	}
	_ = alice
}

// TestSealEventBindsTheHeader: a sealed payload opens only with the
// header it was sealed with, and only under the same master key.
func TestSealEventBindsTheHeader(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	s, _ := crypto.NewSealer(key)
	hdr := []byte{0xB1, 1, 0, 0, 0}
	sealed := s.SealEvent(nil, hdr, []byte("frame"))
	if pt, err := s.OpenEvent(hdr, sealed); err != nil || string(pt) != "frame" {
		t.Fatal(pt, err)
	}
	if _, err := s.OpenEvent([]byte{0xB1, 3, 0, 0, 0}, sealed); err == nil {
		t.Fatal("opened under another header")
	}
	if _, err := s.Open(1, sealed); err == nil {
		t.Fatal("a bus event opened as a message body")
	}
}
