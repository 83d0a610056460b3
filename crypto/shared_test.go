package crypto_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald/crypto"
)

// memRing is shared ring storage with compare-and-swap, as a database
// table gives it.
type memRing struct {
	mu      sync.Mutex
	data    []byte
	version int64
	saves   int
}

func (m *memRing) LoadRing(context.Context) ([]byte, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data), m.version, nil
}

func (m *memRing) SaveRing(_ context.Context, data []byte, prev int64) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev != m.version {
		return 0, false, nil
	}
	m.data, m.version = bytes.Clone(data), m.version+1
	m.saves++
	return m.version, true, nil
}

func sharedRing(t *testing.T, st crypto.RingStorage, master []byte) *crypto.KeyRing {
	t.Helper()
	r, err := crypto.OpenSharedKeyRing(st, master, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSharedKeyRingAcrossNodes(t *testing.T) {
	st := &memRing{}
	master := testMaster(7)
	a, b := sharedRing(t, st, master), sharedRing(t, st, master)
	exp := time.Now().Add(3 * time.Hour)

	// A value sealed on node A opens on node B, which had never seen
	// its bucket.
	v := mustSeal(t, a, exp, 42, []byte("across nodes"))
	if pt, err := b.Open(42, v); err != nil || string(pt) != "across nodes" {
		t.Fatalf("node B opened %q, %v", pt, err)
	}

	// Both nodes create buckets at once: every value opens on both, so
	// they agreed on one key per bucket.
	var wg sync.WaitGroup
	vals := make([][2][]byte, 20)
	for i := range vals {
		wg.Add(2)
		at := time.Now().Add(time.Duration(10+i) * time.Hour)
		go func() { defer wg.Done(); vals[i][0] = mustSeal(t, a, at, int64(i), []byte("from a")) }()
		go func() { defer wg.Done(); vals[i][1] = mustSeal(t, b, at, int64(i), []byte("from b")) }()
	}
	wg.Wait()
	for i, pair := range vals {
		for j, v := range pair {
			for _, r := range []*crypto.KeyRing{a, b} {
				if _, err := r.Open(int64(i), v); err != nil {
					t.Fatalf("value %d/%d does not open on both nodes: %v", i, j, err)
				}
			}
		}
	}
	if a.Buckets() != b.Buckets() {
		t.Fatalf("nodes disagree: %d and %d buckets", a.Buckets(), b.Buckets())
	}

	// Node A destroys the first bucket; node B's own sweep drops it too,
	// and a third node starting now never sees it.
	after := exp.Add(2 * time.Hour)
	if n, err := a.DestroyBefore(after); err != nil || n == 0 {
		t.Fatalf("A destroyed %d, %v", n, err)
	}
	if _, err := a.Open(42, v); !errors.Is(err, crypto.ErrExpired) {
		t.Fatalf("A after destroy: %v", err)
	}
	if _, err := b.DestroyBefore(after); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(42, v); !errors.Is(err, crypto.ErrExpired) {
		t.Fatalf("B after its sweep: %v", err)
	}
	c := sharedRing(t, st, master)
	if _, err := c.Open(42, v); !errors.Is(err, crypto.ErrExpired) && !errors.Is(err, crypto.ErrCorrupt) {
		t.Fatalf("a new node opened destroyed content: %v", err)
	}

	// Another master key cannot read the shared ring.
	if _, err := crypto.OpenSharedKeyRing(st, testMaster(8), time.Hour); err == nil {
		t.Fatal("a ring written under one master key opened under another")
	}
}
