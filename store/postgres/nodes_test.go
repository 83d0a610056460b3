package postgres_test

import (
	"context"
	"testing"

	"github.com/heraldim/herald/store/postgres"
)

// Two nodes on one database: the sweep lock is held by one at a time and
// freed when its holder unlocks; ring saves are
// compare-and-swap.
func TestNodesCoordinate(t *testing.T) {
	dsn := freshSchema(t)
	a, b := open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()

	unlock, ok, err := a.TryLock(ctx, "sweep")
	if err != nil || !ok {
		t.Fatalf("a.TryLock = %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "sweep"); err != nil || ok {
		t.Fatalf("b took a lock a holds: %v, %v", ok, err)
	}
	if u, ok, err := b.TryLock(ctx, "other"); err != nil || !ok {
		t.Fatalf("another name is another lock: %v, %v", ok, err)
	} else {
		u()
	}
	unlock()
	unlockB, ok, err := b.TryLock(ctx, "sweep")
	if err != nil || !ok {
		t.Fatalf("b after a unlocked: %v, %v", ok, err)
	}
	unlockB()
	if u, ok, err := a.TryLock(ctx, "sweep"); err != nil || !ok {
		t.Fatalf("a after b unlocked: %v, %v", ok, err)
	} else {
		u()
	}

	if data, v, err := a.LoadRing(ctx); err != nil || data != nil || v != 0 {
		t.Fatalf("LoadRing on a new database = %q, %d, %v", data, v, err)
	}
	v1, ok, err := a.SaveRing(ctx, []byte("first"), 0)
	if err != nil || !ok || v1 != 1 {
		t.Fatalf("first save = %d, %v, %v", v1, ok, err)
	}
	if _, ok, _ := a.SaveRing(ctx, []byte("lost race"), 0); ok {
		t.Fatal("a second creation overwrote the ring")
	}
	v2, ok, err := a.SaveRing(ctx, []byte("second"), v1)
	if err != nil || !ok || v2 != 2 {
		t.Fatalf("update = %d, %v, %v", v2, ok, err)
	}
	if _, ok, _ := a.SaveRing(ctx, []byte("stale"), v1); ok {
		t.Fatal("a save from a stale version overwrote the ring")
	}
	if data, v, err := a.LoadRing(ctx); err != nil || string(data) != "second" || v != 2 {
		t.Fatalf("LoadRing = %q, %d, %v", data, v, err)
	}
}
