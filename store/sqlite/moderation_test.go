package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// TestAuditLogIsAppendOnly: entries can be added and read back, and the
// database itself refuses to change or remove them.
func TestAuditLogIsAppendOnly(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, a := range []string{"takedown", "restore"} {
		if err := db.AppendAudit(ctx, herald.AuditEntry{At: time.Now(), Operator: "console", Action: a, Target: "@c", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := db.Audit(ctx, 10)
	if err != nil || len(es) != 2 || es[0].Action != "restore" {
		t.Fatalf("audit %v, %v", es, err)
	}
	for _, q := range []string{`UPDATE audit SET reason = 'nothing happened'`, `DELETE FROM audit`} {
		err := db.do(ctx, func(tx querier) error {
			_, err := tx.ExecContext(ctx, q)
			return err
		})
		if err == nil {
			t.Errorf("%s succeeded on the append-only audit log", q)
		}
	}
	if es, _ := db.Audit(ctx, 10); len(es) != 2 || es[1].Reason != "r" {
		t.Fatalf("audit changed: %v", es)
	}
}

// TestWaitingTimerAtItsEndIsNotRolledAgain: a waiting timer already sealed
// until its own end cannot move to a later bucket, so the sweeper must not
// pick it again (it used to, forever).
func TestWaitingTimerAtItsEndIsNotRolledAgain(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	a, _ := db.CreateUser(ctx, herald.User{Username: "alice", DisplayName: "a", CreatedAt: time.Now()}, []byte("x"), "")
	b, _ := db.CreateUser(ctx, herald.User{Username: "bobby", DisplayName: "b", CreatedAt: time.Now()}, []byte("x"), "")
	ch, _, err := db.DirectChat(ctx, a.ID, b.ID, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	end := now.Add(time.Minute)
	for i, sealed := range []time.Time{end, now.Add(30 * time.Second)} {
		_, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: ch.ID, SenderID: a.ID, Body: []byte{byte(i)}, SentAt: now,
			TTL: time.Second, Waiting: true, ExpiresAt: end, SealedUntil: sealed})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.WaitingTimers(ctx, now.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("waiting timers to roll: %v; want only message 2, which can still move", got)
	}
}
