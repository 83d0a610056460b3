package transport

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"testing"

	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/service"
)

// recordBus keeps every event published, for seeds.
type recordBus struct {
	bus.Bus
	mu     sync.Mutex
	seen   [][]byte
	topics []string
}

// userEvents returns what was published on users' topics.
func (r *recordBus) userEvents() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for i, t := range r.topics {
		if strings.HasPrefix(t, "u.") {
			out = append(out, r.seen[i])
		}
	}
	return out
}

func (r *recordBus) Publish(ctx context.Context, topic string, data []byte) error {
	r.mu.Lock()
	r.seen = append(r.seen, append([]byte(nil), data...))
	r.topics = append(r.topics, topic)
	r.mu.Unlock()
	return r.Bus.Publish(ctx, topic, data)
}

// FuzzBusEvent feeds arbitrary bytes to a node as bus events on a
// connected user's topic: bytes from NATS are network bytes, and no
// event may crash the node. Seeds are the events a real send, follow and
// typing publish, plus the committed corpus.
func FuzzBusEvent(f *testing.F) {
	rb := &recordBus{Bus: memory.New()}
	n := startTestNode(f, Limits{}, rb)
	alice, token := n.signup(f, "alice")
	bobby, _ := n.signup(f, "bobby")
	c := n.dial(f)
	if k := c.resume(f, token); k != "" {
		f.Fatal(k)
	}
	go func() { // reads and discards what is pushed
		for {
			if _, _, err := c.ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	ctx := context.Background()
	ch, err := n.svc.CreateChannel(ctx, alice, service.ChannelParams{Username: "fuzzchan", Title: "c"})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := n.svc.Join(ctx, bobby, "fuzzchan", ""); err != nil {
		f.Fatal(err)
	}
	if _, err := n.svc.Send(ctx, bobby, service.SendParams{Peer: service.Peer{Username: "alice"}, Text: "hello"}); err != nil {
		f.Fatal(err)
	}
	if _, err := n.svc.Send(ctx, alice, service.SendParams{Peer: service.Peer{ChatID: ch.ID}, Text: "post"}); err != nil {
		f.Fatal(err)
	}
	rb.mu.Lock()
	for _, b := range rb.seen {
		f.Add(b)
	}
	rb.mu.Unlock()
	sh := n.srv.shard(bus.UserTopic(alice.UserID))
	sh.mu.Lock()
	e := sh.m[bus.UserTopic(alice.UserID)]
	sh.mu.Unlock()
	if e == nil {
		f.Fatal("alice's topic is not subscribed")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n.srv.deliver(e, data)
	})
}

// FuzzSealedBusEvent seals arbitrary headers and frames with the node's
// own bus key, as a node with the master key (or a bug in one) could:
// what opens must still be checked, and nothing may crash the node.
func FuzzSealedBusEvent(f *testing.F) {
	n := startTestNode(f, Limits{}, nil)
	alice, token := n.signup(f, "alice")
	c := n.dial(f)
	if k := c.resume(f, token); k != "" {
		f.Fatal(k)
	}
	go func() {
		for {
			if _, _, err := c.ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	sh := n.srv.shard(bus.UserTopic(alice.UserID))
	sh.mu.Lock()
	e := sh.m[bus.UserTopic(alice.UserID)]
	sh.mu.Unlock()
	f.Add(byte(0xB1), byte(1), byte(1), int64(0), int64(0), []byte{1, 2, 3})
	f.Add(byte(0xB1), byte(4), byte(0), int64(0), int64(-5), []byte(nil))
	f.Add(byte(0xB1), byte(7), byte(0), int64(1), int64(0), []byte{0})
	f.Add(byte(0xB1), byte(2), byte(0), int64(-1), int64(0), []byte(nil))
	f.Add(byte(0xB1), byte(5), byte(2), int64(0), int64(9), []byte("x"))
	f.Fuzz(func(t *testing.T, magic, kind, flags byte, dev, chat int64, frame []byte) {
		hdr := []byte{magic, kind, flags}
		hdr = binary.AppendVarint(hdr, dev)
		hdr = binary.AppendVarint(hdr, chat)
		n.srv.deliver(e, n.sealer.SealEvent(hdr, hdr, frame))
	})
}
