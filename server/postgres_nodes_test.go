package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"

	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// pgSchema gives the test an empty PostgreSQL schema (.ci/postgres.sh
// provides the server); under CI a missing server is a failure.
func pgSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("HERALD_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HERALD_TEST_POSTGRES is not set, and CI is")
		}
		t.Skip(`HERALD_TEST_POSTGRES is not set; run eval "$(bash .ci/postgres.sh)"`)
	}
	var r [6]byte
	rand.Read(r[:])
	schema := "nodes_" + hex.EncodeToString(r[:])
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestNodesOnPostgresAndNATS runs two nodes, each with its own data
// directory, on one PostgreSQL database and one NATS server.
func TestNodesOnPostgresAndNATS(t *testing.T) {
	dsn := pgSchema(t)
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	// The master key is shared, as it must be between nodes.
	key := t.TempDir() + "/master.key"
	node := func() *server.Node {
		n, err := server.Open(server.Config{
			Listen: "127.0.0.1:0", DataDir: t.TempDir(), DB: dsn, Bus: ns.ClientURL(), MasterKeyFile: key,
			PasswordCost: cheap, AbuseLimits: lax, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
