package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// rowCounts reads how many rows each table of the write path holds.
func rowCounts(t *testing.T, db *DB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"messages", "updates", "chat_updates", "members", "users", "chats"} {
		var n int64
		if err := db.read.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// addSubscribers inserts n users subscribed to chatID in one transaction,
// straight through SQL: a test of what one post costs should not spend
// minutes creating the audience.
func addSubscribers(t testing.TB, db *DB, chatID int64, n int) {
	t.Helper()
	err := db.do(context.Background(), func(tx querier) error {
		ctx := context.Background()
		if _, err := tx.ExecContext(ctx, `
			WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
			INSERT INTO users (username, display_name, password_hash, created_at)
			SELECT 'sub' || i || '_' || ?, 'sub', x'00', 0 FROM seq`, n, chatID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO members (chat_id, user_id, role, read_seq, joined_at)
			SELECT ?, id, 1, 0, 0 FROM users WHERE username LIKE 'sub%' AND username LIKE '%\_' || ? ESCAPE '\'`, chatID, chatID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE chats SET member_count = (SELECT count(*) FROM members WHERE chat_id = ?) WHERE id = ?`, chatID, chatID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestChannelPostCostIsConstant proves a channel post writes the same
// number of rows whether the channel has ten subscribers or 100,000.
func TestChannelPostCostIsConstant(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	owner, err := db.CreateUser(ctx, herald.User{Username: "owner", DisplayName: "o", CreatedAt: time.Now()}, []byte("x"), "")
	if err != nil {
		t.Fatal(err)
	}
	written := map[int]map[string]int64{}
	for _, subs := range []int{10, 100_000} {
		ch, _, err := db.CreateChannel(ctx, herald.Chat{Title: "news", CreatedBy: owner.ID, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		addSubscribers(t, db, ch.ID, subs)
		if c, _ := db.Chat(ctx, ch.ID); c.MemberCount != subs+1 {
			t.Fatalf("member count %d, want %d", c.MemberCount, subs+1)
		}
		before := rowCounts(t, db)
		_, ups, _, err := db.AppendMessage(ctx, herald.Message{ChatID: ch.ID, SenderID: owner.ID, Body: []byte("sealed"), SentAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		after := rowCounts(t, db)
		delta := map[string]int64{}
		for k := range after {
			delta[k] = after[k] - before[k]
		}
		written[subs] = delta
		if len(ups) != 1 || ups[0].UserID != 0 || ups[0].Pts != 1 {
			t.Fatalf("%d subscribers: post logged %v, want one entry in the chat's log", subs, ups)
		}
	}
	small, big := written[10], written[100_000]
	for table, n := range small {
		if big[table] != n {
			t.Errorf("%s: %d rows written for 10 subscribers, %d for 100,000", table, n, big[table])
		}
	}
	if big["messages"] != 1 || big["chat_updates"] != 1 || big["updates"] != 0 {
		t.Errorf("a post to 100,000 subscribers wrote %v; want one message, one chat log entry, no per-user updates", big)
	}
}
