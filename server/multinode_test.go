package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// TestTwoNodesShareNATS runs two nodes on one store and an embedded NATS
// server: users connected to different nodes reach each other live, and a
// channel post reaches subscribers on both.
func TestTwoNodesShareNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	dir := t.TempDir()
	node := func() *server.Node {
		n, err := server.Open(server.Config{
			Listen: "127.0.0.1:0", DataDir: dir, Bus: ns.ClientURL(), PasswordCost: cheap, AbuseLimits: lax,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		n.Serve()
		t.Cleanup(func() { n.Shutdown(context.Background()) })
		return n
	}
	a, b := node(), node()
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")

	sent := send(t, alice, to(bobby.user.name), "across nodes")
	if m := nextMessage(t, bobby); m.Id != sent.Id || m.Text != "across nodes" {
		t.Fatalf("bobby on node B got %v", m)
	}
	send(t, bobby, to(alice.user.name), "and back")
	nextMessage(t, alice) // her own first
	if m := nextMessage(t, alice); m.Text != "and back" {
		t.Fatalf("alice on node A got %q", m.Text)
	}
	// A device revoked through node A is cut off on node B.
	laptop := login(t, b, alice.user)
	devs, _ := alice.Devices(ctxT(t))
	for _, d := range devs {
		if !d.Current {
			if err := alice.RevokeDevice(ctxT(t), d.Id); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case _, ok := <-laptop.Events():
		for ok {
			_, ok = <-laptop.Events()
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a device revoked on node A is still connected to node B")
	}
	// Channel posts cross once per node and reach followers on both.
	owner := signup(t, a, "owner")
	ch := createChannel(t, owner, "twonodes", false)
	subA, subB := signup(t, a, "subscra"), signup(t, b, "subscrb")
	for _, d := range []*device{subA, subB} {
		if _, err := d.Join(ctxT(t), ch.Username, ""); err != nil {
			t.Fatal(err)
		}
		next(t, d, func(u *pb.Update) bool { return u.GetChatJoined() != nil })
	}
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "to both nodes")
	for _, d := range []*device{subA, subB} {
		if m := nextPost(t, d).GetNewMessage(); m.Text != "to both nodes" {
			t.Fatalf("%s got %q", d.user.name, m.Text)
		}
	}
}
