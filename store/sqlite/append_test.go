package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// appendCase is one AppendMessage of appendScript.
type appendCase struct {
	m herald.Message
	// write, if set, is queued instead of an append: another kind of
	// write in the same batch.
	write func(tx querier) error
}

type appendResult struct {
	m   herald.Message
	ups []herald.Update
	dup bool
	err string
}

// appendWorld is the chats appendScript writes to.
type appendWorld struct {
	users                     []int64
	ab, cd, group, channel, x int64 // x: a chat that does not exist
}

func newAppendWorld(t *testing.T, db *DB) appendWorld {
	t.Helper()
	ctx := context.Background()
	var w appendWorld
	for i := range 6 {
		u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprint("u", i), CreatedAt: t0}, []byte("h"), "")
		if err != nil {
			t.Fatal(err)
		}
		w.users = append(w.users, u.ID)
	}
	u := w.users
	direct := func(a, b int64) int64 {
		c, _, err := db.DirectChat(ctx, a, b, true, t0)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	w.ab, w.cd = direct(u[0], u[1]), direct(u[2], u[3])
	g, _, err := db.CreateGroup(ctx, herald.Chat{Kind: herald.Group, Title: "g", CreatedBy: u[0], CreatedAt: t0}, []int64{u[0], u[1], u[2], u[4]})
	if err != nil {
		t.Fatal(err)
	}
	w.group = g.ID
	ch, _, err := db.CreateChannel(ctx, herald.Chat{Title: "news", CreatedBy: u[5], CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	w.channel = ch.ID
	w.x = ch.ID + 1000
	return w
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// appendScript is every kind of append the writer meets: direct chats and
// a group (batched), a channel post, a message with extras, a chat that
// does not exist, timers, and random ids repeated within the batch and
// from an earlier one.
func appendScript(w appendWorld) []appendCase {
	u := w.users
	var out []appendCase
	add := func(chat, from, rid int64, mod func(*herald.Message)) {
		i := len(out)
		m := herald.Message{ChatID: chat, SenderID: from, RandomID: rid, Body: []byte(fmt.Sprint("sealed ", i)), SentAt: t0.Add(time.Duration(i) * time.Second)}
		if mod != nil {
			mod(&m)
		}
		out = append(out, appendCase{m: m})
	}
	for i := range 12 {
		add(w.ab, u[i%2], int64(100+i), nil)
		add(w.group, u[[]int{0, 1, 2, 4}[i%4]], 0, nil)
		add(w.cd, u[2+i%2], 0, nil)
	}
	add(w.ab, u[0], 100, nil) // a retry of a stored send
	add(w.cd, u[2], 555, nil)
	add(w.cd, u[2], 555, nil) // a retry racing its original
	add(w.channel, u[5], 0, nil)
	add(w.x, u[0], 0, nil)
	add(w.group, u[1], 0, func(m *herald.Message) { m.Extra = []byte("sealed extra") })
	add(w.ab, u[1], 0, func(m *herald.Message) {
		m.TTL, m.Waiting, m.ExpiresAt, m.SealedUntil = time.Minute, true, t0.Add(time.Hour), t0.Add(2*time.Hour)
	})
	add(w.group, u[4], 0, func(m *herald.Message) { m.ReplyTo, m.Fwd = 2, &herald.Forward{UserID: u[0], ChatID: w.ab, Seq: 1} })
	for i := range 6 {
		add(w.ab, u[i%2], 0, nil)
		add(w.channel, u[5], 0, nil)
	}
	return out
}

// runScript appends every case, all queued behind a blocked writer so
// that they meet in one batch, in the script's order.
func runScript(t *testing.T, db *DB, script []appendCase) []appendResult {
	t.Helper()
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	go db.do(ctx, func(querier) error { close(started); <-release; return nil })
	<-started
	out := make([]appendResult, len(script))
	done := make(chan int)
	for i, c := range script {
		go func() {
			if c.write != nil {
				if err := db.do(ctx, c.write); err != nil {
					out[i].err = err.Error()
				}
				done <- i
				return
			}
			m, ups, dup, err := db.AppendMessage(ctx, c.m)
			out[i] = appendResult{m: m, ups: ups, dup: dup}
			if err != nil {
				out[i].err = err.Error()
			}
			done <- i
		}()
		for len(db.ops) != i+1 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	before := db.Stats()
	close(release)
	for range script {
		<-done
	}
	if got := db.Stats().Commits - before.Commits; got != 2 {
		t.Fatalf("the script took %d commits after the blocker, want 1 (one batch)", got-1)
	}
	return out
}

// dump is every row the append path writes, in a stable order.
func dump(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	for qi, q := range []string{
		`SELECT id, last_seq, last_at, pts FROM chats ORDER BY id`,
		`SELECT id, pts FROM users ORDER BY id`,
		`SELECT chat_id, user_id, read_seq FROM members ORDER BY chat_id, user_id`,
		`SELECT chat_id, seq, sender_id, random_id, hex(body), reply_to, fwd_user, fwd_chat, fwd_seq, sent_at, edited_at, deleted, views, ttl, expires_at, waiting, sealed_until, service, file_id FROM messages ORDER BY chat_id, seq`,
		`SELECT user_id, pts, kind, chat_id, seq, actor_id, seqs, at FROM updates ORDER BY user_id, pts`,
		`SELECT chat_id, pts, kind, seq, seqs, actor_id, at FROM chat_updates ORDER BY chat_id, pts`,
		`SELECT chat_id, seq, hex(extra) FROM message_extras ORDER BY chat_id, seq`,
	} {
		rows, err := db.read.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(qi, vals))
		}
		rows.Close()
	}
	return out
}

// TestAppendGroupSameAsOneByOne runs one script of appends through a
// batch the writer groups and through one that stores each alone: every
// answer and every row must be the same.
func TestAppendGroupSameAsOneByOne(t *testing.T) {
	var results [2][]appendResult
	var rows [2][]string
	for i, grouped := range []bool{true, false} {
		db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
		if err != nil {
			t.Fatal(err)
		}
		db.noGroup = !grouped
		w := newAppendWorld(t, db)
		script := appendScript(w)
		// Some sends already stored, so that a retry finds one.
		runScript(t, db, script[:3])
		results[i] = runScript(t, db, script[3:])
		rows[i] = dump(t, db)
		if grouped {
			for j, r := range results[i] {
				c := script[3+j].m
				wantErr := c.ChatID == w.x
				if (r.err != "") != wantErr {
					t.Errorf("append %d to chat %d: error %q", 3+j, c.ChatID, r.err)
				}
			}
		}
		db.Close()
	}
	for j := range results[0] {
		if !reflect.DeepEqual(results[0][j], results[1][j]) {
			t.Errorf("append %d: grouped answered\n%+v\nalone:\n%+v", j+3, results[0][j], results[1][j])
		}
	}
	if !reflect.DeepEqual(rows[0], rows[1]) {
		t.Errorf("grouped and one-by-one stores differ:\ngrouped: %v\nalone:   %v", rows[0], rows[1])
	}
}

// TestAppendGroupFallsBack breaks one chat (a message row already sits
// at its next seq), so the group's insert fails: the writer must take the
// group back and store every other append of the batch one at a time —
// whether the group was the transaction's first write (the transaction
// is begun again) or came after another write (a savepoint takes it
// back, and that write stays).
func TestAppendGroupFallsBack(t *testing.T) {
	for _, lead := range []bool{false, true} {
		t.Run(map[bool]string{false: "first write", true: "after another write"}[lead], func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			w := newAppendWorld(t, db)
			if err := db.do(context.Background(), func(tx querier) error {
				_, err := tx.ExecContext(context.Background(), `INSERT INTO messages (chat_id, seq, sender_id, sent_at) VALUES (?, 1, ?, 0)`, w.cd, w.users[2])
				return err
			}); err != nil {
				t.Fatal(err)
			}
			u := w.users
			script := []appendCase{
				{m: herald.Message{ChatID: w.ab, SenderID: u[0], Body: []byte("1"), SentAt: t0}},
				{m: herald.Message{ChatID: w.cd, SenderID: u[2], Body: []byte("2"), SentAt: t0}},
				{m: herald.Message{ChatID: w.ab, SenderID: u[1], Body: []byte("3"), SentAt: t0}},
			}
			if lead {
				script = append([]appendCase{{write: func(tx querier) error {
					_, err := tx.ExecContext(context.Background(), `UPDATE chats SET title = 'kept' WHERE id = ?`, w.ab)
					return err
				}}}, script...)
			}
			res := runScript(t, db, script)
			if lead {
				if res[0].err != "" {
					t.Fatalf("the leading write: %s", res[0].err)
				}
				res = res[1:]
				var title string
				if err := db.read.QueryRow(`SELECT title FROM chats WHERE id = ?`, w.ab).Scan(&title); err != nil || title != "kept" {
					t.Errorf("the leading write's title = %q, %v; want it kept", title, err)
				}
			}
			if res[1].err == "" || !strings.Contains(res[1].err, "already exists") {
				t.Errorf("the broken chat's append: %+v, want an already-exists error", res[1])
			}
			for _, i := range []int{0, 2} {
				if res[i].err != "" || res[i].m.Seq != int64(i/2+1) || len(res[i].ups) != 2 {
					t.Errorf("append %d: %+v, want seq %d with two updates", i, res[i], i/2+1)
				}
			}
			for _, id := range []int64{u[0], u[1]} {
				d, err := db.Difference(context.Background(), id, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(d.Updates) == 0 {
					t.Errorf("user %d: no updates", id)
				}
				for k, up := range d.Updates {
					if up.Pts != int64(k+1) {
						t.Errorf("user %d: pts %v, want 1, 2, 3 …", id, d.Updates)
						break
					}
				}
			}
		})
	}
}
