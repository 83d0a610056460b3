package postgres_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/internal/pgtest"
	"github.com/heraldim/herald/store/postgres"
)

// TestGroupedAppends sends into a group, direct chats and a channel at
// once, with retries of the same send racing each other, so that the
// writer stores many appends per batch together: every answer must be
// what was logged — each member's update at the pts it was given, the
// channel's post in its own log — seqs and pts gap-free, every retry
// answered with its original, the senders' read positions moved.
func TestGroupedAppends(t *testing.T) {
	db := open(t, pgtest.Schema(t), postgres.Options{})
	defer db.Close()
	ctx := t.Context()
	var ids []int64
	for i := range 4 {
		u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprintf("user%d", i), CreatedAt: t0}, []byte("h"), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	g, _, err := db.CreateGroup(ctx, herald.Chat{Title: "g", CreatedBy: ids[0], CreatedAt: t0}, ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := db.DirectChat(ctx, ids[0], ids[1], true, t0)
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := db.CreateChannel(ctx, herald.Chat{Kind: herald.Channel, Title: "news", CreatedBy: ids[2], CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	type sent struct {
		m   herald.Message
		ups []herald.Update
		dup bool
	}
	senders := map[int64][]int64{g.ID: ids, d.ID: ids[:2], ch.ID: {ids[2]}}
	chats := []int64{g.ID, d.ID, ch.ID}
	const perChat = 40
	var mu sync.Mutex
	got := map[[2]int64][]sent{} // chat, random id → every answer
	before := db.Stats()
	var wg sync.WaitGroup
	for _, chat := range chats {
		for i := range perChat {
			// Every fourth send is tried three times at once.
			tries := 1
			if i%4 == 0 {
				tries = 3
			}
			for range tries {
				wg.Go(func() {
					from := senders[chat][i%len(senders[chat])]
					m, ups, dup, err := db.AppendMessage(ctx, herald.Message{ChatID: chat, SenderID: from, RandomID: int64(i + 1), Body: []byte{byte(i)}, SentAt: t0})
					if err != nil {
						t.Errorf("AppendMessage: %v", err)
						return
					}
					mu.Lock()
					got[[2]int64{chat, int64(i + 1)}] = append(got[[2]int64{chat, int64(i + 1)}], sent{m, ups, dup})
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	st := db.Stats()
	t.Logf("%d writes in %d commits", st.Writes-before.Writes, st.Commits-before.Commits)

	logged := map[int64]map[int64]herald.Update{} // user (0: the channel) → pts → update
	for _, id := range ids {
		pts, err := db.Pts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		diff, err := db.Difference(ctx, id, 0, int(pts)+1)
		if err != nil {
			t.Fatal(err)
		}
		logged[id] = map[int64]herald.Update{}
		for i, u := range diff.Updates {
			if u.Pts != int64(i+1) {
				t.Fatalf("user %d: update %d has pts %d: the log has a gap", id, i, u.Pts)
			}
			logged[id][u.Pts] = u
		}
	}
	cd, err := db.ChatDifference(ctx, ch.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	logged[0] = map[int64]herald.Update{}
	for _, u := range cd.Updates {
		logged[0][u.Pts] = u
	}

	read := map[[2]int64]int64{}
	for _, chat := range chats {
		seqs := map[int64]bool{}
		for i := range perChat {
			answers := got[[2]int64{chat, int64(i + 1)}]
			var first *sent
			for k := range answers {
				if !answers[k].dup {
					if first != nil {
						t.Fatalf("chat %d, random id %d: stored twice", chat, i+1)
					}
					first = &answers[k]
				}
			}
			if first == nil {
				t.Fatalf("chat %d, random id %d: every answer says duplicate", chat, i+1)
			}
			for _, a := range answers {
				if a.m.Seq != first.m.Seq || string(a.m.Body) != string(first.m.Body) {
					t.Errorf("chat %d, random id %d: answers %d and %d", chat, i+1, a.m.Seq, first.m.Seq)
				}
			}
			m := first.m
			seqs[m.Seq] = true
			k := [2]int64{chat, m.SenderID}
			read[k] = max(read[k], m.Seq)
			wantUps := len(senders[chat])
			if chat == ch.ID {
				wantUps = 1
			}
			if chat == g.ID {
				wantUps = len(ids)
			}
			if len(first.ups) != wantUps {
				t.Fatalf("chat %d, seq %d: %d updates, want %d", chat, m.Seq, len(first.ups), wantUps)
			}
			for j, u := range first.ups {
				if j > 0 && u.UserID <= first.ups[j-1].UserID {
					t.Errorf("chat %d, seq %d: updates not in member order", chat, m.Seq)
				}
				l, ok := logged[u.UserID][u.Pts]
				if !ok || l.Kind != herald.UpdNewMessage || l.ChatID != chat || l.Seq != m.Seq || u.Seq != m.Seq || u.Message == nil || u.Message.Seq != m.Seq {
					t.Errorf("chat %d, seq %d: answered update %+v, logged %+v", chat, m.Seq, u, l)
				}
			}
		}
		c, err := db.Chat(ctx, chat)
		if err != nil {
			t.Fatal(err)
		}
		if c.LastSeq != perChat || len(seqs) != perChat {
			t.Errorf("chat %d: last seq %d, %d distinct seqs; want %d", chat, c.LastSeq, len(seqs), perChat)
		}
	}
	for k, seq := range read {
		m, err := db.Member(ctx, k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		if m.ReadSeq != seq {
			t.Errorf("chat %d, sender %d: read position %d, want %d (their last send)", k[0], k[1], m.ReadSeq, seq)
		}
	}
}

// TestCoalescedReads reads from many goroutines at once, so that the read
// pool's coalescers answer many reads per pipeline: every caller must get
// its own answer — a membership or its absence, a chat's members, a
// block — never another's.
func TestCoalescedReads(t *testing.T) {
	db := open(t, pgtest.Schema(t), postgres.Options{})
	defer db.Close()
	ctx := t.Context()
	var ids []int64
	for i := range 6 {
		u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprintf("user%d", i), CreatedAt: t0}, []byte("h"), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	// Chat k has the users 0..k+1 as members.
	var chats []int64
	for k := range 4 {
		g, _, err := db.CreateGroup(ctx, herald.Chat{Title: "g", CreatedBy: ids[0], CreatedAt: t0}, ids[1:k+2])
		if err != nil {
			t.Fatal(err)
		}
		chats = append(chats, g.ID)
	}
	if err := db.Block(ctx, ids[1], ids[2], true, t0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for round := range 50 {
		for k, chat := range chats {
			for u, id := range ids {
				wg.Go(func() {
					m, err := db.Member(ctx, chat, id)
					switch member := u <= k+1; {
					case member && (err != nil || m.UserID != id || m.ChatID != chat):
						t.Errorf("Member(%d, %d) = %+v, %v; want the membership", chat, id, m, err)
					case !member && !herald.IsKind(err, herald.NotFound):
						t.Errorf("Member(%d, %d) = %+v, %v; want NotFound", chat, id, m, err)
					}
				})
			}
			wg.Go(func() {
				ms, err := db.Members(ctx, chat)
				if err != nil || len(ms) != k+2 {
					t.Errorf("Members(%d) = %d members, %v; want %d", chat, len(ms), err, k+2)
					return
				}
				for i, m := range ms {
					if m.UserID != ids[i] || m.ChatID != chat {
						t.Errorf("Members(%d)[%d] = %+v", chat, i, m)
					}
				}
			})
		}
		wg.Go(func() {
			a, b := ids[round%2+1], ids[2-round%2]
			blocked, err := db.Blocked(ctx, a, b)
			if want := a == ids[1]; err != nil || blocked != want {
				t.Errorf("Blocked(%d, %d) = %v, %v; want %v", a, b, blocked, err, want)
			}
		})
	}
	wg.Wait()
}
