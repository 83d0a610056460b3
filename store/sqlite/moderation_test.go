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
