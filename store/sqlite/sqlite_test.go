package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/sqlite"
	"github.com/heraldim/herald/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openDB(t, filepath.Join(t.TempDir(), "herald.db"))
	})
}

// openDB opens the database at path; the caller closes it.
func openDB(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	return db
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// setup creates n users named user0, user1 … and returns their ids.
func setupUsers(tb testing.TB, db *sqlite.DB, n int) []int64 {
	tb.Helper()
	ids := make([]int64, n)
	for i := range ids {
		u, err := db.CreateUser(context.Background(), herald.User{Username: fmt.Sprintf("user%d", i), CreatedAt: t0}, []byte("h"), "")
		if err != nil {
			tb.Fatalf("CreateUser: %v", err)
		}
		ids[i] = u.ID
	}
	return ids
}

func directChat(tb testing.TB, db *sqlite.DB, a, b int64) herald.Chat {
	tb.Helper()
	c, _, err := db.DirectChat(context.Background(), a, b, true, t0)
	if err != nil {
		tb.Fatalf("DirectChat: %v", err)
	}
	return c
}

// state is what must survive a restart, rendered for comparison.
func state(t *testing.T, db *sqlite.DB, users []int64, chatID int64) []string {
	t.Helper()
	ctx := t.Context()
	var out []string
	c, err := db.Chat(ctx, chatID)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	out = append(out, fmt.Sprintf("chat %d kind %v last %d members %d", c.ID, c.Kind, c.LastSeq, c.MemberCount))
	for _, u := range users {
		pts, err := db.Pts(ctx, u)
		if err != nil {
			t.Fatalf("Pts: %v", err)
		}
		m, err := db.Member(ctx, chatID, u)
		if err != nil {
			t.Fatalf("Member: %v", err)
		}
		out = append(out, fmt.Sprintf("user %d pts %d read %d", u, pts, m.ReadSeq))
		d, err := db.Difference(ctx, u, 0, herald.MaxDifferencePage)
		if err != nil {
			t.Fatalf("Difference: %v", err)
		}
		for _, up := range d.Updates {
			s := fmt.Sprintf("  pts %d kind %d chat %d seq %d seqs %v actor %d at %d", up.Pts, up.Kind, up.ChatID, up.Seq, up.Seqs, up.ActorID, up.At.Unix())
			if up.Message != nil {
				s += fmt.Sprintf(" body %x", up.Message.Body)
			}
			out = append(out, s)
		}
		hist, err := db.History(ctx, u, chatID, 0, herald.MaxHistoryPage)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		for _, m := range hist {
			out = append(out, fmt.Sprintf("  msg %d from %d body %x edited %d", m.Seq, m.SenderID, m.Body, m.EditedAt.Unix()))
		}
	}
	return out
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := t.Context()
	db := openDB(t, path)
	users := setupUsers(t, db, 2)
	a, b := users[0], users[1]
	c := directChat(t, db, a, b)
	for i, body := range [][]byte{{0, 1, 2}, []byte("second"), {0xff}} {
		sender := users[i%2]
		if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: sender, RandomID: int64(i + 1), Body: body, SentAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatalf("AppendMessage: %v", err)
		}
	}
	if _, _, err := db.EditMessage(ctx, c.ID, 2, []byte("second, edited"), t0.Add(time.Minute)); err != nil {
		t.Fatalf("EditMessage: %v", err)
	}
	if _, err := db.DeleteMessages(ctx, a, c.ID, []int64{1}, false, t0.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteMessages: %v", err)
	}
	if _, err := db.ReadHistory(ctx, a, c.ID, 3, t0.Add(time.Minute)); err != nil {
		t.Fatalf("ReadHistory: %v", err)
	}
	want := state(t, db, users, c.ID)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = openDB(t, path)
	defer db.Close()
	if got := state(t, db, users, c.ID); !slices.Equal(got, want) {
		t.Errorf("state after reopening differs:\ngot:\n%q\nwant:\n%q", got, want)
	}
	if u, _, err := db.UserByName(ctx, "user1"); err != nil || u.ID != b {
		t.Errorf("UserByName after reopening = %+v, %v; want user %d", u, err, b)
	}
	// A retried send from before the restart is still recognised.
	m, _, dup, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a, RandomID: 3, Body: []byte("retry"), SentAt: t0})
	if err != nil || !dup || m.Seq != 3 || !bytes.Equal(m.Body, []byte{0xff}) {
		t.Errorf("retry after reopening = seq %d %x, dup %v, %v; want seq 3, dup", m.Seq, m.Body, dup, err)
	}
	// Sequences continue where they stopped.
	ptsB, err := db.Pts(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	m, ups, _, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a, Body: []byte("after"), SentAt: t0.Add(time.Hour)})
	if err != nil || m.Seq != 4 {
		t.Fatalf("AppendMessage after reopening = seq %d, %v; want 4", m.Seq, err)
	}
	for _, u := range ups {
		if u.UserID == b && u.Pts != ptsB+1 {
			t.Errorf("pts after reopening = %d, want %d", u.Pts, ptsB+1)
		}
	}
}

func TestGroupCommit(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "herald.db"))
	defer db.Close()
	users := setupUsers(t, db, 3)
	c, _, err := db.CreateGroup(t.Context(), herald.Chat{Title: "g", CreatedBy: users[0], CreatedAt: t0}, users[1:])
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	const n = 100
	before := db.Stats()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, _, err := db.AppendMessage(t.Context(), herald.Message{ChatID: c.ID, SenderID: users[i%3], Body: []byte("x"), SentAt: t0})
			if err != nil {
				t.Errorf("AppendMessage: %v", err)
			}
		})
	}
	wg.Wait()
	after := db.Stats()
	writes, commits := after.Writes-before.Writes, after.Commits-before.Commits
	if writes != n {
		t.Errorf("Stats: %d writes, want %d", writes, n)
	}
	if commits < 1 || commits > writes {
		t.Errorf("Stats: %d commits for %d writes, want between 1 and %d", commits, writes, writes)
	}
	t.Logf("%d writes in %d commits", writes, commits)
}

// BenchmarkAppendMessage measures one sender sending, one message at a
// time, into a direct chat: every message waits for its own commit.
func BenchmarkAppendMessage(b *testing.B) {
	db := openDB(b, filepath.Join(b.TempDir(), "herald.db"))
	defer db.Close()
	users := setupUsers(b, db, 2)
	c := directChat(b, db, users[0], users[1])
	body := bytes.Repeat([]byte{0xab}, 200)
	ctx := context.Background()
	n := 0
	stats, cpu := db.Stats(), processCPU()
	for b.Loop() {
		if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: users[0], Body: body, SentAt: t0}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportStore(b, db, stats, cpu, int64(n))
}

// BenchmarkAppendMessageParallel measures many goroutines sending into many
// direct chats at once, the load group commit is for. The number of
// concurrent senders decides how many writes share one commit.
func BenchmarkAppendMessageParallel(b *testing.B) {
	for _, senders := range []int{32, 512} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) { benchAppendParallel(b, senders) })
	}
}

func benchAppendParallel(b *testing.B, senders int) {
	db := openDB(b, filepath.Join(b.TempDir(), "herald.db"))
	defer db.Close()
	const chats = 64
	users := setupUsers(b, db, 2*chats)
	type pair struct{ chat, sender int64 }
	pairs := make([]pair, chats)
	for i := range pairs {
		c := directChat(b, db, users[2*i], users[2*i+1])
		pairs[i] = pair{c.ID, users[2*i]}
	}
	body := bytes.Repeat([]byte{0xab}, 200)
	ctx := context.Background()
	var next, sent atomic.Int64
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	stats, cpu := db.Stats(), processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := pairs[int(next.Add(1))%len(pairs)]
		for pb.Next() {
			if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: p.chat, SenderID: p.sender, Body: body, SentAt: t0}); err != nil {
				b.Error(err)
				return
			}
			sent.Add(1)
		}
	})
	b.StopTimer()
	reportStore(b, db, stats, cpu, sent.Load())
}

// reportStore reports the store's figures for n messages: their rate, the
// process's CPU per message (the writer's and the senders'), and how many
// shared a commit.
func reportStore(b *testing.B, db *sqlite.DB, before sqlite.Stats, cpu time.Duration, n int64) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	if n == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(n), "cpu-µs/msg")
	if c := db.Stats().Commits - before.Commits; c > 0 {
		b.ReportMetric(float64(n)/float64(c), "msgs/commit")
	}
}
