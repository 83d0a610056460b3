package service

import (
	"container/list"
	"context"
	"net/netip"
	"sync"
	"time"
)

// maxMemBuckets bounds the in-memory bucket table.
const maxMemBuckets = 100_000

// memBuckets keeps buckets in memory with GCRA, as store/postgres does in
// its table: a bucket is the time it will be full again. The table is
// bounded: past its size the bucket spent from longest ago is forgotten
// (and so is full again). Forgetting all of them at once would hand every
// victim's login budget back to whoever filled the table.
type memBuckets struct {
	mu  sync.Mutex
	tat map[string]*list.Element // of *memBucket
	lru list.List                // front: spent from most recently
	max int
	now func() time.Time
}

type memBucket struct {
	key string
	tat time.Time
}

func newMemBuckets(now func() time.Time) *memBuckets {
	return &memBuckets{tat: map[string]*list.Element{}, max: maxMemBuckets, now: now}
}

func (m *memBuckets) TakeToken(_ context.Context, key string, every time.Duration, burst int, spend bool) (time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.tat[key]
	var tat time.Time
	if e != nil {
		tat = e.Value.(*memBucket).tat
	}
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(every)
	if wait := next.Sub(now) - time.Duration(burst)*every; wait > 0 {
		return wait, nil
	}
	if spend {
		m.set(key, e, next)
	}
	return 0, nil
}

func (m *memBuckets) set(key string, e *list.Element, tat time.Time) {
	if e != nil {
		e.Value.(*memBucket).tat = tat
		m.lru.MoveToFront(e)
		return
	}
	if m.lru.Len() >= m.max {
		old := m.lru.Back()
		m.lru.Remove(old)
		delete(m.tat, old.Value.(*memBucket).key)
	}
	m.tat[key] = m.lru.PushFront(&memBucket{key: key, tat: tat})
}

// ReturnToken gives back a token spent from key.
func (m *memBuckets) ReturnToken(_ context.Context, key string, every time.Duration) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.tat[key]
	if e == nil {
		return nil
	}
	b := e.Value.(*memBucket)
	if b.tat = b.tat.Add(-every); !b.tat.After(now) {
		m.lru.Remove(e)
		delete(m.tat, key)
	}
	return nil
}

// tokenReturner is implemented by buckets that can give a spent token
// back (memBuckets; store/postgres as store.TokenReturner).
type tokenReturner interface {
	ReturnToken(ctx context.Context, key string, every time.Duration) error
}

// giveBack returns a token that take spent, for limits that count only
// failures but must be spent before the work they guard. Buckets that
// cannot give tokens back keep it spent, which errs on the side of
// throttling.
func (k *keyed) giveBack(ctx context.Context, key string) {
	if r, ok := k.b.(tokenReturner); ok {
		_ = r.ReturnToken(context.WithoutCancel(ctx), k.name+":"+key, k.every)
	}
}

// clientKey is the key of a client's network address in the per-address
// limits: IPv4 addresses (also when mapped into IPv6) count alone, IPv6
// addresses per /64, the smallest block one subscriber usually holds.
func clientKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
