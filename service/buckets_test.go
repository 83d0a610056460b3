package service

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// When the in-memory table is full, the bucket spent from longest ago is
// forgotten, not every bucket: a victim's spent login budget survives an
// attacker's flood of fresh keys (issue 22, item 7).
func TestMemBucketsEvictOldest(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	m := newMemBuckets(func() time.Time { return now })
	ctx := context.Background()
	const every = time.Hour
	take := func(key string) time.Duration {
		wait, err := m.TakeToken(ctx, key, every, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	take("oldest")
	for i := range maxMemBuckets - 2 {
		take(fmt.Sprint("filler", i))
	}
	take("victim")
	if take("victim") == 0 {
		t.Fatal("the victim's bucket of one token gave two")
	}
	for i := range 3 {
		take(fmt.Sprint("flood", i)) // past the table's size
	}
	if take("victim") == 0 {
		t.Fatal("a flood of new keys gave the victim's spent budget back")
	}
	if take("oldest") != 0 {
		t.Fatal("the bucket spent from longest ago was not the one forgotten")
	}
	if n := len(m.tat); n > maxMemBuckets {
		t.Fatalf("%d buckets in a table of %d", n, maxMemBuckets)
	}
}

// A returned token can be spent again; returning more than was spent
// never fills a bucket beyond its burst.
func TestMemBucketsReturn(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	m := newMemBuckets(func() time.Time { return now })
	ctx := context.Background()
	const every = time.Minute
	spend := func() time.Duration { w, _ := m.TakeToken(ctx, "k", every, 2, true); return w }
	if spend() != 0 || spend() != 0 || spend() == 0 {
		t.Fatal("a burst of 2 did not give exactly 2")
	}
	m.ReturnToken(ctx, "k", every)
	if spend() != 0 || spend() == 0 {
		t.Fatal("a returned token was not there exactly once")
	}
	for range 5 {
		m.ReturnToken(ctx, "k", every)
	}
	if spend() != 0 || spend() != 0 || spend() == 0 {
		t.Fatal("returning more tokens than were spent overfilled the bucket")
	}
}

// Per-address budgets count IPv4 addresses one by one and IPv6 clients
// per /64 (issue 22, item 7).
func TestClientKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.8", "192.0.2.8"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"", ""},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.addr); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
