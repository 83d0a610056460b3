package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// sharedNodes starts an embedded NATS server and returns a function that
// starts nodes on it and on the PostgreSQL schema dsn, sharing one master
// key, as the nodes of one deployment do; adjust tunes each node's
// configuration.
func sharedNodes(t *testing.T, dsn string, adjust func(*server.Config)) func() *server.Node {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	key := t.TempDir() + "/master.key"
	return func() *server.Node {
		cfg := server.Config{
			Listen: "127.0.0.1:0", DataDir: t.TempDir(), DB: dsn, Bus: ns.ClientURL(), MasterKeyFile: key,
			PasswordCost: cheap, AbuseLimits: lax, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
}

// TestNodesOnPostgresAndNATS runs two nodes, each with its own data
// directory, on one PostgreSQL database and one NATS server.
func TestNodesOnPostgresAndNATS(t *testing.T) {
	// The master key is shared, as it must be between nodes.
	node := sharedNodes(t, pgtest.Schema(t), nil)
	a, b := node(), node()
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")
	sent := send(t, alice, to(bobby.user.name), "over postgres and nats")
	if m := nextMessage(t, bobby); m.Id != sent.Id || m.Text != "over postgres and nats" {
		t.Fatalf("bobby on node B got %v", m)
	}
	// A device that was offline catches up from the shared store through
	// the other node.
	pts := bobby.Pts()
	bobby.Close()
	for range 5 {
		send(t, alice, to(bobby.user.name), "while away")
	}
	back := &device{Client: newClientWith(t, a.URL(), bobby.token, pts, nil), user: bobby.user}
	for range 5 {
		if m := nextMessage(t, back); m.Text != "while away" {
			t.Fatalf("catch-up got %q", m.Text)
		}
	}
	owner := signup(t, b, "owner")
	ch := createChannel(t, owner, "pgnodes", false)
	if _, err := alice.Join(ctxT(t), ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	next(t, alice, func(u *pb.Update) bool { return u.GetChatJoined() != nil })
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "post across nodes")
	if m := nextPost(t, alice).GetNewMessage(); m.Text != "post across nodes" {
		t.Fatalf("alice got %q", m.Text)
	}
}

// TestTimersAcrossNodes: a self-destructing message sealed on one node
// opens on another (the key ring lives in the shared database), expires
// on every device, and the sweepers of both nodes, racing, delete it
// exactly once.
func TestTimersAcrossNodes(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) {
		c.SweepEvery, c.BucketWidth = 50*time.Millisecond, time.Second
	})
	a, b := node(), node()
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")
	g, err := alice.CreateGroup(ctxT(t), "ttl across nodes", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	next(t, bobby, func(u *pb.Update) bool { return u.GetChatJoined() != nil })
	m, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "gone in 2s", TtlMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	// Node B opens a body sealed under a bucket node A created.
	if got := nextMessage(t, bobby); got.Id != m.Id || got.Text != "gone in 2s" {
		t.Fatalf("bobby on node B got %v", got)
	}
	hist, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: g.Id}})
	if err != nil || len(hist) == 0 || hist[len(hist)-1].Text != "gone in 2s" {
		t.Fatalf("history on node B: %v %v", hist, err)
	}
	// Both devices see it go, exactly once each.
	for _, d := range []*device{alice, bobby} {
		u := next(t, d, func(u *pb.Update) bool { return u.GetDeleteMessages() != nil })
		if ids := u.GetDeleteMessages().Ids; len(ids) != 1 || ids[0] != m.Id {
			t.Fatalf("%s: delete of %v, want [%d]", d.user.name, ids, m.Id)
		}
	}
	// A second sweep round on both nodes finds nothing left to do: no
	// second delete reaches anyone.
	time.Sleep(300 * time.Millisecond)
	send(t, alice, &pb.Peer{ChatId: g.Id}, "after")
	for _, d := range []*device{alice, bobby} {
		u := next(t, d, func(u *pb.Update) bool { return u.GetDeleteMessages() != nil || u.GetNewMessage() != nil })
		if u.GetDeleteMessages() != nil {
			t.Fatalf("%s got a second delete: %v", d.user.name, u)
		}
	}
	hist, err = alice.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: g.Id}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		if h.Id == m.Id {
			t.Fatalf("the expired message is still in history: %v", h)
		}
	}
}

// TestChatChangeReachesEveryNode: a channel's settings changed through
// one node sign the next post on every node. Each node caches how a
// channel signs its posts; the change must reach the other's cache.
func TestChatChangeReachesEveryNode(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), nil)
	a, b := node(), node()
	owner, fan := signup(t, a, "owner"), signup(t, b, "reader")
	ch := createChannel(t, owner, fmt.Sprintf("signed%d", userSeq.Add(1)), false)
	if _, err := fan.Join(ctxT(t), ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	next(t, fan, func(u *pb.Update) bool { return u.GetChatJoined() != nil })
	// Node B signs this post, and caches the channel's settings.
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "unsigned")
	if m := nextPost(t, fan).GetNewMessage(); m.Author != "" || m.From != ch.Username {
		t.Fatalf("first post on node B: %v", m)
	}
	on := true
	if _, err := owner.SetChat(ctxT(t), &pb.SetChatRequest{ChatId: ch.Id, Signatures: &on}); err != nil {
		t.Fatal(err)
	}
	send(t, owner, &pb.Peer{ChatId: ch.Id}, "signed")
	if m := nextPost(t, fan).GetNewMessage(); m.Text != "signed" || m.Author != owner.user.name {
		t.Fatalf("post after signatures were turned on through node A, as node B shows it: %v", m)
	}
}
