package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// Issue 22, item 12: adding 200 members to a group of 800 wrote every
// newcomer times every member's update in one transaction (3.7–7.5 s, and
// every other send waited). Adding or removing k members of a group of m
// now writes k + m updates.
func TestMembershipChangeCostIsLinear(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	owner, err := db.CreateUser(ctx, herald.User{Username: "owner", CreatedAt: at}, []byte("x"), "")
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := db.CreateGroup(ctx, herald.Chat{Title: "big", CreatedBy: owner.ID, CreatedAt: at}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const members, added = 800, 200
	addSubscribers(t, db, g.ID, members-1)
	var ids []int64
	for i := range added {
		u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprint("new", i), CreatedAt: at}, []byte("x"), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}

	before := rowCounts(t, db)["updates"]
	ups, err := db.AddMembers(ctx, g.ID, owner.ID, ids, herald.RoleMember, at)
	if err != nil {
		t.Fatal(err)
	}
	if n := rowCounts(t, db)["updates"] - before; n != added+members || len(ups) != added+members {
		t.Fatalf("adding %d to a group of %d wrote %d updates (returned %d); want %d", added, members, n, len(ups), added+members)
	}

	before = rowCounts(t, db)["updates"]
	ups, err = db.RemoveMembers(ctx, g.ID, owner.ID, ids, at)
	if err != nil {
		t.Fatal(err)
	}
	if n := rowCounts(t, db)["updates"] - before; n != added+members || len(ups) != added+members {
		t.Fatalf("removing %d from a group of %d wrote %d updates (returned %d); want %d", added, members+added, n, len(ups), added+members)
	}
}

// BenchmarkAddMembers measures one groups.add of 200 to a group of 800,
// the write that stalled every other send for seconds before it was
// linear: go test -run '^$' -bench AddMembers ./store/sqlite/
func BenchmarkAddMembers(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "herald.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	owner, err := db.CreateUser(ctx, herald.User{Username: "owner", CreatedAt: at}, []byte("x"), "")
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for i := range 200 {
		u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprint("new", i), CreatedAt: at}, []byte("x"), "")
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		g, _, err := db.CreateGroup(ctx, herald.Chat{Title: "big", CreatedBy: owner.ID, CreatedAt: at}, nil)
		if err != nil {
			b.Fatal(err)
		}
		addSubscribers(b, db, g.ID, 799)
		b.StartTimer()
		if _, err := db.AddMembers(ctx, g.ID, owner.ID, ids, herald.RoleMember, at); err != nil {
			b.Fatal(err)
		}
	}
}
