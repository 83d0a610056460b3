package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald/internal/pgtest"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/postgres"
)

// Two nodes on one database: a lease is held by one node at a time, is
// renewed by its holder, passes on when released or lapsed; ring saves are
// compare-and-swap.
func TestNodesCoordinate(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()

	steps := []struct {
		db        *postgres.DB
		name, who string
		ttl       time.Duration // 0: release instead
		want      bool
		why       string
	}{
		{a, "sweep", "node-a", time.Minute, true, "a free lease is taken"},
		{b, "sweep", "node-b", time.Minute, false, "a running lease is not taken by another"},
		{b, "other", "node-b", time.Minute, true, "another name is another lease"},
		{a, "sweep", "node-a", time.Minute, true, "the holder renews"},
		{a, "sweep", "node-a", 0, false, "a releases"},
		{b, "sweep", "node-b", time.Millisecond, true, "a released lease is taken"},
		{a, "sweep", "node-a", time.Minute, true, "a lapsed lease is taken over"},
		{b, "sweep", "node-b", 0, false, "b releases a lease it no longer has"},
		{b, "sweep", "node-b", time.Minute, false, "releasing another's lease does not end it"},
	}
	for _, s := range steps {
		if s.ttl == 0 {
			if err := s.db.Release(ctx, s.name, s.who); err != nil {
				t.Fatalf("%s: %v", s.why, err)
			}
			continue
		}
		got, err := s.db.Lease(ctx, s.name, s.who, s.ttl)
		if err != nil || got != s.want {
			t.Fatalf("%s: Lease(%s, %s) = %v, %v; want %v", s.why, s.name, s.who, got, err, s.want)
		}
		if s.ttl < time.Second {
			time.Sleep(50 * time.Millisecond) // past the lease's end
		}
	}

	// Many at once: a takes what is free, b then only what a left, and
	// each renews its own.
	held, err := a.LeaseAll(ctx, []string{"webhook:2", "webhook:1", "webhook:2"}, "node-a", time.Minute)
	if err != nil || !slices.Equal(held, []string{"webhook:1", "webhook:2"}) {
		t.Fatalf("a.LeaseAll = %v, %v", held, err)
	}
	held, err = b.LeaseAll(ctx, []string{"webhook:1", "webhook:2", "webhook:3"}, "node-b", time.Minute)
	if err != nil || !slices.Equal(held, []string{"webhook:3"}) {
		t.Fatalf("b.LeaseAll = %v, %v; want only the free one", held, err)
	}
	if held, err = a.LeaseAll(ctx, []string{"webhook:1", "webhook:3"}, "node-a", time.Minute); err != nil || !slices.Equal(held, []string{"webhook:1"}) {
		t.Fatalf("a renewing = %v, %v", held, err)
	}
	if held, err = a.LeaseAll(ctx, nil, "node-a", time.Minute); err != nil || len(held) != 0 {
		t.Fatalf("LeaseAll of nothing = %v, %v", held, err)
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

// Two nodes spend from one bucket: what one spends, the other cannot.
func TestRatesShared(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	const every, burst = time.Hour, 3

	nodes := []*postgres.DB{a, b, a}
	for i, db := range nodes {
		if wait, err := db.TakeToken(ctx, "direct:1", every, burst, true); err != nil || wait != 0 {
			t.Fatalf("token %d of %d: wait %v, %v", i+1, burst, wait, err)
		}
	}
	for _, db := range []*postgres.DB{a, b} {
		wait, err := db.TakeToken(ctx, "direct:1", every, burst, false)
		if err != nil || wait <= 0 || wait > every {
			t.Fatalf("a look at the empty bucket = %v, %v; want a wait up to %v", wait, err, every)
		}
		wait, err = db.TakeToken(ctx, "direct:1", every, burst, true)
		if err != nil || wait <= 0 || wait > every {
			t.Fatalf("a take from the empty bucket = %v, %v; want a wait up to %v", wait, err, every)
		}
	}
	if wait, err := b.TakeToken(ctx, "direct:2", every, burst, true); err != nil || wait != 0 {
		t.Fatalf("another key's bucket is full: %v, %v", wait, err)
	}
	// Looking spends nothing.
	for range 5 {
		if wait, err := a.TakeToken(ctx, "login:x", every, 1, false); err != nil || wait != 0 {
			t.Fatalf("look = %v, %v", wait, err)
		}
	}
	if wait, err := a.TakeToken(ctx, "login:x", every, 1, true); err != nil || wait != 0 {
		t.Fatalf("take after looks = %v, %v", wait, err)
	}

	// A fast bucket refills, and once full it is pruned like new.
	if wait, err := a.TakeToken(ctx, "fast", time.Millisecond, 1, true); err != nil || wait != 0 {
		t.Fatal(wait, err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := b.PruneTokens(ctx); err != nil {
		t.Fatal(err)
	}
	if wait, err := b.TakeToken(ctx, "fast", time.Millisecond, 1, true); err != nil || wait != 0 {
		t.Fatalf("a refilled bucket: %v, %v", wait, err)
	}
	if wait, _ := a.TakeToken(ctx, "direct:1", every, burst, true); wait == 0 {
		t.Fatal("prune forgot a bucket that was not full")
	}
}

// A token one node spent, the other can give back (a login whose
// password was right), once; returning more never overfills a bucket.
func TestRatesReturn(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	const every, burst = time.Hour, 2
	take := func(db *postgres.DB) time.Duration {
		wait, err := db.TakeToken(ctx, "login-name:x", every, burst, true)
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	if take(a) != 0 || take(b) != 0 || take(a) == 0 {
		t.Fatal("a bucket of 2 did not give exactly 2")
	}
	var r store.TokenReturner = b
	if err := r.ReturnToken(ctx, "login-name:x", every); err != nil {
		t.Fatal(err)
	}
	if take(a) != 0 || take(b) == 0 {
		t.Fatal("a returned token was not there exactly once")
	}
	for range 5 {
		if err := a.ReturnToken(ctx, "login-name:x", every); err != nil {
			t.Fatal(err)
		}
	}
	if take(a) != 0 || take(b) != 0 || take(a) == 0 {
		t.Fatal("returning more tokens than were spent overfilled the bucket")
	}
	if err := a.ReturnToken(ctx, "never spent", every); err != nil {
		t.Fatalf("returning to a bucket never spent from: %v", err)
	}
}

// BenchmarkTakeToken is the cost a shared abuse limit adds to a send: one
// upsert on the UNLOGGED bucket table, from many goroutines at once, each
// its own user (as senders are).
func BenchmarkTakeToken(b *testing.B) {
	db := open(b, pgtest.Schema(b), postgres.Options{})
	defer db.Close()
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("direct:%d", next.Add(1))
		for pb.Next() {
			if _, err := db.TakeToken(ctx, key, time.Microsecond, 1<<20, true); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
