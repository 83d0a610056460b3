package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

func (f *fixture) device(userID int64) herald.Device {
	f.t.Helper()
	d, err := f.s.CreateDevice(f.ctx, herald.Device{UserID: userID, Name: "d", CreatedAt: f.tick(), LastSeen: f.now}, fmt.Appendf(nil, "token-%d-%d", userID, f.now.UnixNano()))
	if err != nil {
		f.t.Fatalf("CreateDevice: %v", err)
	}
	return d
}

func key(b byte) []byte { return append([]byte{5}, bytes.Repeat([]byte{b}, 32)...) }

func deviceKeys(d herald.Device, at time.Time) herald.DeviceKeys {
	return herald.DeviceKeys{UserID: d.UserID, DeviceID: d.ID, RegistrationID: 77, IdentityKey: key(1),
		Signed: herald.SignedPreKey{ID: 1, PublicKey: key(2), Signature: bytes.Repeat([]byte{3}, 64), CreatedAt: at}}
}

func preKeys(from, n int) []herald.PreKey {
	var out []herald.PreKey
	for i := from; i < from+n; i++ {
		out = append(out, herald.PreKey{ID: uint32(i), PublicKey: key(byte(i))})
	}
	return out
}

// testSecret checks store.Secret, for stores that implement it.
func testSecret(t *testing.T, f *fixture) {
	s, ok := f.s.(store.Secret)
	if !ok {
		t.Skip("the store does not implement store.Secret")
	}
	alice, bobby := f.user(), f.user()
	a1, b1, b2 := f.device(alice.ID), f.device(bobby.ID), f.device(bobby.ID)

	// Publishing: identity once, signed prekey only if newer, prekeys added.
	st, err := s.PublishKeys(f.ctx, deviceKeys(b1, t0), preKeys(1, 3))
	if err != nil || st.PreKeys != 3 || st.MaxID != 3 || !st.Low || !st.SignedAt.Equal(t0) {
		t.Fatalf("PublishKeys: %+v, %v", st, err)
	}
	other := deviceKeys(b1, t0)
	other.IdentityKey = key(9)
	if _, err := s.PublishKeys(f.ctx, other, nil); !herald.IsKind(err, herald.AlreadyExists) {
		t.Errorf("a second identity key: %v, want ALREADY_EXISTS", err)
	}
	older := deviceKeys(b1, t0.Add(-time.Hour))
	older.Signed.ID, older.Signed.PublicKey = 2, key(8)
	if _, err := s.PublishKeys(f.ctx, older, preKeys(3, 2)); err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.DeviceKeys(f.ctx, bobby.ID); len(ks) != 1 || ks[0].Signed.ID != 1 {
		t.Errorf("an older signed prekey replaced a newer one: %+v", ks)
	}
	newer := deviceKeys(b1, t0.Add(time.Hour))
	newer.Signed.ID = 3
	if st, err = s.PublishKeys(f.ctx, newer, nil); err != nil || st.PreKeys != 4 || st.MaxID != 4 {
		t.Errorf("after a newer signed prekey and ids 3-4 (3 a duplicate): %+v, %v", st, err)
	}
	if _, err := s.PublishKeys(f.ctx, deviceKeys(herald.Device{ID: b1.ID, UserID: alice.ID}, t0), nil); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("keys for someone else's device: %v, want NOT_FOUND", err)
	}
	if _, err := s.PublishKeys(f.ctx, deviceKeys(b2, t0), nil); err != nil {
		t.Fatal(err)
	}
	ks, err := s.DeviceKeys(f.ctx, bobby.ID)
	if err != nil || len(ks) != 2 || ks[0].DeviceID != b1.ID || ks[1].DeviceID != b2.ID || ks[0].Signed.ID != 3 || ks[0].RegistrationID != 77 {
		t.Fatalf("DeviceKeys: %+v, %v", ks, err)
	}

	// Claims: each one-time prekey once, even concurrently; then none.
	var mu sync.Mutex
	seen := map[uint32]int{}
	without := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			bs, err := s.ClaimBundles(f.ctx, bobby.ID, []int64{b1.ID})
			if err != nil || len(bs) != 1 {
				t.Errorf("ClaimBundles: %v, %v", bs, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if bs[0].PreKey == nil {
				without++
			} else {
				seen[bs[0].PreKey.ID]++
			}
		})
	}
	wg.Wait()
	if len(seen) != 4 || without != 4 {
		t.Errorf("8 claims of 4 prekeys: %v and %d without; want 4 distinct and 4 without", seen, without)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("prekey %d handed out %d times", id, n)
		}
	}
	if bs, err := s.ClaimBundles(f.ctx, bobby.ID, nil); err != nil || len(bs) != 2 {
		t.Errorf("ClaimBundles for every device: %d, %v", len(bs), err)
	}

	// Envelopes: in order, per device, until acknowledged or expired.
	envs := []herald.Envelope{
		{SenderID: alice.ID, SenderDevice: a1.ID, UserID: bobby.ID, DeviceID: b1.ID, Type: herald.EnvelopePreKey, Body: []byte("one"), SentAt: t0, ExpiresAt: t0.Add(time.Minute)},
		{SenderID: alice.ID, SenderDevice: a1.ID, UserID: bobby.ID, DeviceID: b2.ID, Type: herald.EnvelopePreKey, Body: []byte("two"), SentAt: t0, ExpiresAt: t0.Add(time.Minute)},
		{SenderID: alice.ID, SenderDevice: a1.ID, UserID: bobby.ID, DeviceID: b1.ID, Type: herald.EnvelopeWhisper, Body: []byte("three"), SentAt: t0, ExpiresAt: t0.Add(time.Hour)},
	}
	stored, err := s.Enqueue(f.ctx, envs)
	if err != nil || len(stored) != 3 || stored[0].ID == 0 || stored[2].ID <= stored[0].ID {
		t.Fatalf("Enqueue: %+v, %v", stored, err)
	}
	got, err := s.Envelopes(f.ctx, b1.ID, t0, 10)
	if err != nil || len(got) != 2 || string(got[0].Body) != "one" || string(got[1].Body) != "three" || got[0].Type != herald.EnvelopePreKey ||
		got[0].SenderDevice != a1.ID || got[0].UserID != bobby.ID || !got[0].SentAt.Equal(t0) || !got[1].ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Envelopes(b1): %+v, %v", got, err)
	}
	if got, _ := s.Envelopes(f.ctx, b1.ID, t0.Add(2*time.Minute), 10); len(got) != 1 || string(got[0].Body) != "three" {
		t.Errorf("an expired envelope was returned: %+v", got)
	}
	if n, err := s.Ack(f.ctx, b1.ID, []int64{stored[0].ID, stored[1].ID}); err != nil || n != 1 {
		t.Errorf("Ack of one own and one other device's envelope: %d, %v; want 1", n, err)
	}
	if got, _ := s.Envelopes(f.ctx, b2.ID, t0, 10); len(got) != 1 {
		t.Errorf("another device's ack deleted b2's envelope: %+v", got)
	}
	if n, err := s.ExpireEnvelopes(f.ctx, t0.Add(2*time.Minute), 100); err != nil || n != 1 {
		t.Errorf("ExpireEnvelopes: %d, %v; want b2's one", n, err)
	}
	if got, _ := s.Envelopes(f.ctx, b2.ID, t0, 10); len(got) != 0 {
		t.Errorf("expired envelope still queued: %+v", got)
	}

	// A device's keys and queue go with it.
	if err := s.ForgetDevice(f.ctx, b1.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Envelopes(f.ctx, b1.ID, t0, 10); len(got) != 0 {
		t.Errorf("a forgotten device's envelopes remain: %+v", got)
	}
	if ks, _ := s.DeviceKeys(f.ctx, bobby.ID); len(ks) != 1 || ks[0].DeviceID != b2.ID {
		t.Errorf("a forgotten device's keys remain: %+v", ks)
	}
	if err := f.s.DeleteDevice(f.ctx, bobby.ID, b2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(f.ctx, envs[1:2]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireEnvelopes(f.ctx, t0, 100); err != nil || n != 1 {
		t.Errorf("ExpireEnvelopes of a deleted device's queue: %d, %v", n, err)
	}
	if ks, _ := s.DeviceKeys(f.ctx, bobby.ID); len(ks) != 0 {
		t.Errorf("a deleted device's keys are still listed: %+v", ks)
	}

	// File grants.
	if ok, err := s.FileGranted(f.ctx, bobby.ID, "f1"); err != nil || ok {
		t.Errorf("FileGranted before any grant: %v, %v", ok, err)
	}
	if err := s.GrantFile(f.ctx, "f1", []int64{bobby.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantFile(f.ctx, "f1", []int64{bobby.ID}); err != nil {
		t.Errorf("granting twice: %v", err)
	}
	for _, c := range []struct {
		user int64
		want bool
	}{{bobby.ID, true}, {alice.ID, false}} {
		if ok, err := s.FileGranted(f.ctx, c.user, "f1"); err != nil || ok != c.want {
			t.Errorf("FileGranted(%d) = %v, %v; want %v", c.user, ok, err, c.want)
		}
	}
}
