package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// The in-memory buckets answer as store/postgres's shared ones do (GCRA):
// a full bucket gives burst tokens at once, then one per interval; a
// refusal says how long until the next token and spends nothing; a look
// never spends.
func TestMemBuckets(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const every = 10 * time.Second
	steps := []struct {
		at    time.Duration // since t0
		key   string
		spend bool
		wait  time.Duration // 0: a token was there
	}{
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, every}, // burst of 3 spent: look
		{0, "a", true, every},  // and a refused take
		{0, "b", true, 0},      // another key
		{4 * time.Second, "a", true, 6 * time.Second},
		{10 * time.Second, "a", false, 0},
		{10 * time.Second, "a", false, 0}, // looking twice spends nothing
		{10 * time.Second, "a", true, 0},
		{10 * time.Second, "a", true, every},
		{time.Hour, "a", true, 0}, // refilled to burst, not beyond
		{time.Hour, "a", true, 0},
		{time.Hour, "a", true, 0},
		{time.Hour, "a", true, every},
	}
	var now time.Time
	m := newMemBuckets(func() time.Time { return now })
	for i, s := range steps {
		now = t0.Add(s.at)
		wait, err := m.TakeToken(context.Background(), s.key, every, 3, s.spend)
		if err != nil || wait != s.wait {
			t.Fatalf("step %d (%+v): wait %v, %v; want %v", i, s, wait, err, s.wait)
		}
	}
}

// A limit's refusal is RATE_LIMITED with the wait, rounded up for people.
func TestKeyedRefusal(t *testing.T) {
	now := time.Now()
	k := newKeyed(newMemBuckets(func() time.Time { return now }), "direct", 1, 1, "messages")
	ctx := context.Background()
	if err := k.take(ctx, "7"); err != nil {
		t.Fatal(err)
	}
	if err := k.check(ctx, "8"); err != nil {
		t.Fatalf("another key: %v", err)
	}
	var he *herald.Error
	if err := k.take(ctx, "7"); !errors.As(err, &he) || he.Kind != herald.RateLimited || he.RetryAfter != time.Second {
		t.Fatalf("second take: %v", err)
	}
	if want := "too many messages; try again in 2s"; he.Msg != want {
		t.Fatalf("message %q, want %q", he.Msg, want)
	}
}

// A batch pays one token per item before any is done, all or nothing: a
// refusal spends nothing and says how long until the whole batch fits; a
// batch larger than the burst goes through only from a full bucket and
// leaves it in debt, so the rate over time holds.
func TestKeyedTakeN(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const every = time.Second // burst 4
	steps := []struct {
		at   time.Duration // since t0
		n    int
		wait time.Duration // 0: taken
	}{
		{0, 3, 0},                             // 1 left
		{0, 2, time.Second},                   // needs one more token: refused, nothing spent
		{0, 1, 0},                             // the one left is still there
		{0, 1, time.Second},                   // empty
		{4 * time.Second, 4, 0},               // full again: a whole burst
		{8 * time.Second, 10, 0},              // more than the burst from a full bucket
		{8 * time.Second, 1, 7 * time.Second}, // in debt for the 6 beyond the burst (+1)
		{15 * time.Second, 1, 0},
		{15 * time.Second, 5, 4 * time.Second}, // larger than the burst: waits for a full bucket
	}
	var now time.Time
	k := newKeyed(newMemBuckets(func() time.Time { return now }), "forward", 1/every.Seconds(), 4, "messages")
	for i, s := range steps {
		now = t0.Add(s.at)
		err := k.takeN(context.Background(), "7", s.n)
		var he *herald.Error
		switch {
		case s.wait == 0 && err != nil:
			t.Fatalf("step %d (%+v): %v", i, s, err)
		case s.wait > 0 && (!errors.As(err, &he) || he.Kind != herald.RateLimited || he.RetryAfter != s.wait):
			t.Fatalf("step %d (%+v): %v; want RATE_LIMITED after %v", i, s, err, s.wait)
		}
	}
}

// One typing notice per user and chat gets through per interval; other
// users and other chats have their own.
func TestTypingGate(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at         time.Duration
		user, chat int64
		want       bool
	}{
		{0, 1, 10, true},
		{time.Second, 1, 10, false},
		{time.Second, 2, 10, true},
		{time.Second, 1, 11, true},
		{2999 * time.Millisecond, 1, 10, false},
		{3 * time.Second, 1, 10, true},
		{4 * time.Second, 1, 10, false},
	}
	var now time.Time
	g := newTypingGate(3*time.Second, func() time.Time { return now })
	for i, s := range steps {
		now = t0.Add(s.at)
		if got := g.open(s.user, s.chat); got != s.want {
			t.Fatalf("step %d (%+v): %v", i, s, got)
		}
	}
}
