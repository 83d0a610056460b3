package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// TestCacheFollowsWrites warms the cache with every read it keeps, then
// checks that each kind of write is seen by the next read: grouped
// appends (updated in place) and other writes (which empty it).
func TestCacheFollowsWrites(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	w := newAppendWorld(t, db)
	u := w.users
	warm := func() {
		t.Helper()
		if _, err := db.Chat(ctx, w.group); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Members(ctx, w.group); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Member(ctx, w.channel, u[5]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Blocked(ctx, u[1], u[0]); err != nil {
			t.Fatal(err)
		}
	}
	warm()
	runScript(t, db, []appendCase{
		{m: herald.Message{ChatID: w.group, SenderID: u[2], Body: []byte("1"), SentAt: t0}},
		{m: herald.Message{ChatID: w.group, SenderID: u[2], Body: []byte("2"), SentAt: t0}},
	})
	if c, _ := db.Chat(ctx, w.group); c.LastSeq != 2 {
		t.Errorf("after two sends the cached chat says last seq %d", c.LastSeq)
	}
	if m, _ := db.Member(ctx, w.group, u[2]); m.ReadSeq != 2 {
		t.Errorf("after sending, the sender's read position is %d, want 2", m.ReadSeq)
	}
	ms, _ := db.Members(ctx, w.group)
	for _, m := range ms {
		if m.UserID == u[2] && m.ReadSeq != 2 {
			t.Errorf("Members: the sender's read position is %d, want 2", m.ReadSeq)
		}
	}

	warm()
	if _, err := db.RemoveMembers(ctx, w.group, u[0], []int64{u[4]}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Member(ctx, w.group, u[4]); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("a removed member is still a member: %v", err)
	}
	if ms, _ := db.Members(ctx, w.group); len(ms) != 3 {
		t.Errorf("after a removal, %d members, want 3", len(ms))
	}

	warm()
	if err := db.Block(ctx, u[1], u[0], true, t0); err != nil {
		t.Fatal(err)
	}
	if b, _ := db.Blocked(ctx, u[1], u[0]); !b {
		t.Error("a block is not seen by the next read")
	}

	warm()
	if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: w.channel, SenderID: u[5], Body: []byte("post"), SentAt: t0}); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Chat(ctx, w.channel); c.LastSeq != 1 || c.Pts != 1 {
		t.Errorf("after a channel post the chat says last seq %d, pts %d; want 1 and 1", c.LastSeq, c.Pts)
	}
}

// TestCacheFollowsOtherProcesses writes through a second store on the
// same file, as heraldd admin does while the server runs: a takedown
// must reach the first store's cached chat without any write of its own,
// and its writer must number the next appends after the other's.
func TestCacheFollowsOtherProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	w := newAppendWorld(t, db)
	u := w.users
	send := func(s *DB, chat, from int64) herald.Message {
		t.Helper()
		m, _, _, err := s.AppendMessage(ctx, herald.Message{ChatID: chat, SenderID: from, Body: []byte("x"), SentAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(db, w.group, u[0]) // the writer now knows the group and its members' pts
	if _, err := db.Chat(ctx, w.group); err != nil {
		t.Fatal(err)
	}

	other, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetTakedown(ctx, w.group, true, "spam"); err != nil {
		t.Fatal(err)
	}
	send(other, w.group, u[1])
	other.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := db.Chat(ctx, w.group)
		if err != nil {
			t.Fatal(err)
		}
		if c.TakenDown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a takedown by another process never reached the cached chat")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := send(db, w.group, u[2]); m.Seq != 3 {
		t.Errorf("the next message got seq %d, want 3", m.Seq)
	}
	for _, id := range []int64{u[0], u[1], u[2], u[4]} {
		d, err := db.Difference(ctx, id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for k, up := range d.Updates {
			if up.Pts != int64(k+1) {
				t.Fatalf("user %d: pts %d at %d, want 1, 2, 3 … with no gap", id, up.Pts, k)
			}
		}
		if n := len(d.Updates); n < 4 { // joined, three messages
			t.Errorf("user %d has %d updates, want at least 4", id, n)
		}
	}
}
