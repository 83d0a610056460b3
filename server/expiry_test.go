package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/crypto"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/store/sqlite"
)

// startExpiryNode runs a node whose key-ring buckets are one second wide,
// so tests see keys destroyed within seconds of expiry.
func startExpiryNode(t *testing.T, dir, addr string) *server.Node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var n *server.Node
	var err error
	for range 50 { // a restart may wait for the old port
		n, err = server.Open(server.Config{
			Listen: addr, DataDir: dir, PasswordCost: cheap, AbuseLimits: lax, BucketWidth: time.Second, SweepEvery: 100 * time.Millisecond,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// waitGone polls until the message is no longer in d's history.
func waitGone(t *testing.T, d *device, p *pb.Peer, id int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h, err := d.History(ctxT(t), &pb.HistoryRequest{Peer: p})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range h {
			found = found || m.Id == id
		}
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("message %d still in %s's history after 30s", id, d.user.name)
}

// copyDir copies a directory's files, as a backup tool would.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// grepDir fails the test if any file under dir contains marker.
func grepDir(t *testing.T, dir string, marker []byte) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, marker) {
			t.Errorf("%s contains the marker in plaintext", path)
		}
		return nil
	})
}

func TestBackupOfExpiredMessageCannotBeRead(t *testing.T) {
	dir := t.TempDir()
	n := startExpiryNode(t, dir, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	g, err := alice.CreateGroup(ctxT(t), "ops", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	const marker = "BACKUP-MARKER-7f3a9c"
	m, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: marker, TtlMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if m.ExpiresAt == 0 {
		t.Fatal("a group message's timer starts at send, but it has no expires_at")
	}
	// The backup: the whole data directory while the message is live.
	backup := t.TempDir()
	copyDir(t, dir, backup)

	waitGone(t, bobby, &pb.Peer{ChatId: g.Id}, m.Id)
	// Past the end of the message's bucket, and one more sweep for sure.
	for time.Now().Before(time.UnixMilli(m.ExpiresAt).Add(2 * time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := n.Service.Sweep(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	// Open the copy with the current key ring and the master key.
	master, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	ringCopy := filepath.Join(t.TempDir(), "keyring")
	b, _ := os.ReadFile(filepath.Join(dir, "keyring"))
	os.WriteFile(ringCopy, b, 0o600)
	ring, err := crypto.OpenKeyRing(ringCopy, master, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := crypto.NewSealer(master)
	old, err := sqlite.Open(filepath.Join(backup, "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	stored, err := old.Message(ctxT(t), alice.user.id, g.Id, m.Id)
	if err != nil {
		t.Fatalf("the backup should still hold the row: %v", err)
	}
	if len(stored.Body) == 0 || stored.Deleted {
		t.Fatalf("the backup was taken while the message was live, yet holds no body: %+v", stored)
	}
	if _, err := ring.Open(g.Id, stored.Body); !errors.Is(err, crypto.ErrExpired) {
		t.Fatalf("current key ring opening the backup's body: %v, want ErrExpired", err)
	}
	if _, err := sealer.Open(g.Id, stored.Body); err == nil {
		t.Fatal("the master key alone opened an expired body")
	}
	grepDir(t, backup, []byte(marker))
	grepDir(t, dir, []byte(marker))
}

func TestNoPlaintextInDataDirectory(t *testing.T) {
	dir := t.TempDir()
	n := startExpiryNode(t, dir, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	markers := []string{"PLAIN-MARKER-one-1b2c", "PLAIN-MARKER-edited-9d8e", "PLAIN-MARKER-timer-5f6a"}
	m := send(t, alice, to(bobby.user.name), markers[0])
	grepDir(t, dir, []byte(markers[0]))
	if _, err := alice.Edit(ctxT(t), m.ChatId, m.Id, markers[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: markers[2], TtlMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	for _, mk := range markers {
		grepDir(t, dir, []byte(mk)) // the database, its WAL and everything else
	}
	// And they read back as sent.
	h, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name)})
	if err != nil || len(h) != 2 || h[0].Text != markers[1] || h[1].Text != markers[2] {
		t.Fatalf("history %v, %v", h, err)
	}
}

func TestExpiryReachesEveryDevice(t *testing.T) {
	n := startExpiryNode(t, "", "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	bobby2 := login(t, n, bobby.user)
	g, err := alice.CreateGroup(ctxT(t), "brief", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	// A third device of bobby's is offline while the message lives and dies.
	bobby3 := login(t, n, bobby.user)
	pts := bobby3.Pts()
	bobby3.Close()

	m, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "short-lived", TtlMs: 1500})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bobby, bobby2} {
		u := next(t, d, func(u *pb.Update) bool { return u.GetDeleteMessages() != nil })
		if ids := u.GetDeleteMessages().Ids; len(ids) != 1 || ids[0] != m.Id {
			t.Fatalf("%s: delete %v", d.user.name, u)
		}
	}
	// The offline device syncs: the message arrives already deleted, then
	// the delete; its text is never shown.
	back := &device{Client: newClientWith(t, n.URL(), bobby3.token, pts, nil), user: bobby.user}
	sawDelete := false
	for !sawDelete {
		u := next(t, back, func(u *pb.Update) bool { return u.GetNewMessage() != nil || u.GetDeleteMessages() != nil })
		if nm := u.GetNewMessage(); nm != nil && nm.Id == m.Id && (nm.Text != "" || !nm.Deleted) {
			t.Fatalf("the offline device was shown an expired message: %v", nm)
		}
		sawDelete = u.GetDeleteMessages() != nil
	}
}

func TestExpiredWhileStoppedIsGoneBeforeServing(t *testing.T) {
	dir := t.TempDir()
	n := startExpiryNode(t, dir, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	g, err := alice.CreateGroup(ctxT(t), "restart", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	m, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "expires while down", TtlMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown(context.Background())
	for time.Now().Before(time.UnixMilli(m.ExpiresAt).Add(1500 * time.Millisecond)) {
		time.Sleep(100 * time.Millisecond)
	}
	// Open runs the sweep; nothing has been served yet.
	n2, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax, BucketWidth: time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Shutdown(context.Background())
	stored, err := n2.Store.Message(ctxT(t), alice.user.id, g.Id, m.Id)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Deleted || len(stored.Body) != 0 {
		t.Fatalf("before the first request, the expired message is still there: %+v", stored)
	}
}

func TestDirectTimerStartsAtRead(t *testing.T) {
	n := startExpiryNode(t, "", "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	m, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: "read me", TtlMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if m.ExpiresAt != 0 || m.TtlMs != 1000 {
		t.Fatalf("unread direct timer: %v", m)
	}
	// Well past the timer, unread, it is still there.
	time.Sleep(2500 * time.Millisecond)
	h, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name)})
	if err != nil || len(h) != 1 || h[0].Text != "read me" || h[0].ExpiresAt != 0 {
		t.Fatalf("unread timed message after its ttl: %v, %v", h, err)
	}
	if _, err := bobby.Read(ctxT(t), to(alice.user.name), 0); err != nil {
		t.Fatal(err)
	}
	// Every device learns when it ends, then sees it go.
	u := next(t, alice, func(u *pb.Update) bool { return u.GetEditMessage().GetExpiresAt() > 0 })
	if e := u.GetEditMessage(); e.Id != m.Id || e.EditedAt != 0 {
		t.Fatalf("countdown update %v", e)
	}
	waitGone(t, bobby, to(alice.user.name), m.Id)
}

func TestTimerRules(t *testing.T) {
	n := startExpiryNode(t, "", "")
	owner, member := signup(t, n, "owner"), signup(t, n, "member")
	g, err := owner.CreateGroup(ctxT(t), "rules", []string{member.user.name})
	if err != nil {
		t.Fatal(err)
	}
	setTTL := func(d *device, p *pb.Peer, ms int64) error {
		return d.Call(ctxT(t), "chats.set_ttl", &pb.SetTTLRequest{Peer: p, TtlMs: ms}, nil)
	}
	tests := []struct {
		name string
		err  error
		kind herald.Kind
	}{
		{"ttl too short", func() error {
			_, err := owner.Send(ctxT(t), &pb.SendRequest{Peer: to(member.user.name), Text: "x", TtlMs: 500})
			return err
		}(), herald.Invalid},
		{"ttl too long", func() error {
			_, err := owner.Send(ctxT(t), &pb.SendRequest{Peer: to(member.user.name), Text: "x", TtlMs: 8 * 24 * 3600 * 1000})
			return err
		}(), herald.Invalid},
		{"auto-delete too short", setTTL(owner, &pb.Peer{ChatId: g.Id}, 60_000), herald.Invalid},
		{"auto-delete by a non-admin", setTTL(member, &pb.Peer{ChatId: g.Id}, 24*3600*1000), herald.PermissionDenied},
	}
	for _, tt := range tests {
		if !herald.IsKind(tt.err, tt.kind) {
			t.Errorf("%s: got %v, want %s", tt.name, tt.err, tt.kind)
		}
	}
	// Either side of a direct chat may set it; it appears as a service
	// message and applies to what is sent after.
	if err := setTTL(member, to(owner.user.name), 24*3600*1000); err != nil {
		t.Fatal(err)
	}
	later := send(t, owner, to(member.user.name), "after the timer")
	if later.TtlMs != 24*3600*1000 || later.ExpiresAt == 0 {
		t.Fatalf("auto-delete not applied (it counts from sending): %v", later)
	}
	h, _ := owner.History(ctxT(t), &pb.HistoryRequest{Peer: to(member.user.name)})
	if len(h) != 2 || !h[0].Service {
		t.Fatalf("no service message for the change: %v", h)
	}
	// Timed messages cannot be forwarded.
	if _, err := owner.Forward(ctxT(t), later.ChatId, []int64{later.Id}, &pb.Peer{ChatId: g.Id}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("forwarding a timed message: %v", err)
	}
}

func TestClearHistoryForBothSides(t *testing.T) {
	dir := t.TempDir()
	n := startExpiryNode(t, dir, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	const marker = "CLEAR-MARKER-44aa"
	for i := range 3 {
		send(t, alice, to(bobby.user.name), fmt.Sprintf("%s %d", marker, i))
	}
	var r pb.ClearResult
	if err := bobby.Call(ctxT(t), "messages.clear", &pb.ClearRequest{Peer: to(alice.user.name), ForEveryone: true}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Deleted != 3 {
		t.Fatalf("cleared %d", r.Deleted)
	}
	for _, d := range []*device{alice, bobby} {
		peer := to(bobby.user.name)
		if d == bobby {
			peer = to(alice.user.name)
		}
		if h, err := d.History(ctxT(t), &pb.HistoryRequest{Peer: peer}); err != nil || len(h) != 0 {
			t.Fatalf("%s still has %v, %v", d.user.name, h, err)
		}
	}
	grepDir(t, dir, []byte(marker))
}
