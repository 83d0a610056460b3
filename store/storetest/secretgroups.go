package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

// testSecretGroups checks the secret-group half of store.Secret: the
// membership the server fans out by, and envelopes that name their group.
func testSecretGroups(t *testing.T, f *fixture) {
	s, ok := f.s.(store.Secret)
	if !ok {
		t.Skip("the store does not implement store.Secret")
	}
	alice, bobby, carol := f.user(), f.user(), f.user()
	gid, err := s.CreateSecretGroup(f.ctx, alice.ID, []int64{bobby.ID, carol.ID, alice.ID}, f.now)
	if err != nil || gid == 0 {
		t.Fatalf("CreateSecretGroup = %d, %v", gid, err)
	}
	want := []herald.SecretGroupMember{{UserID: alice.ID, Admin: true}, {UserID: bobby.ID}, {UserID: carol.ID}}
	slices.SortFunc(want, func(a, b herald.SecretGroupMember) int { return int(a.UserID - b.UserID) })
	ms, err := s.SecretGroupMembers(f.ctx, gid)
	if err != nil || !slices.Equal(ms, want) {
		t.Fatalf("SecretGroupMembers = %+v, %v; want %+v (the creator listed once, as admin)", ms, err, want)
	}
	if _, err := s.SecretGroupMembers(f.ctx, gid+1000); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("members of a group that does not exist: %v, want NOT_FOUND", err)
	}
	if err := s.AddSecretGroupMembers(f.ctx, gid+1000, []int64{bobby.ID}); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("adding to a group that does not exist: %v, want NOT_FOUND", err)
	}
	if ok, err := s.RemoveSecretGroupMember(f.ctx, gid, bobby.ID); err != nil || !ok {
		t.Fatalf("RemoveSecretGroupMember = %v, %v", ok, err)
	}
	if ok, err := s.RemoveSecretGroupMember(f.ctx, gid, bobby.ID); err != nil || ok {
		t.Errorf("removing a non-member = %v, %v; want false", ok, err)
	}
	dave := f.user()
	if err := s.AddSecretGroupMembers(f.ctx, gid, []int64{bobby.ID, dave.ID, alice.ID}); err != nil {
		t.Fatal(err)
	}
	ms, _ = s.SecretGroupMembers(f.ctx, gid)
	if len(ms) != 4 || !slices.Contains(ms, herald.SecretGroupMember{UserID: alice.ID, Admin: true}) || !slices.Contains(ms, herald.SecretGroupMember{UserID: dave.ID}) {
		t.Errorf("after adding bobby, dave and alice again: %+v (alice stays admin)", ms)
	}

	// A group envelope comes back with its group.
	b1 := f.device(bobby.ID)
	got, err := s.Enqueue(f.ctx, []herald.Envelope{{SenderID: alice.ID, SenderDevice: 1, UserID: bobby.ID, DeviceID: b1.ID,
		Type: herald.EnvelopeSenderKey, Body: []byte("ct"), SentAt: f.now, ExpiresAt: f.now.Add(time.Hour), GroupID: gid}})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := s.Envelopes(f.ctx, b1.ID, f.now, 10)
	if err != nil || len(envs) != 1 || envs[0].ID != got[0].ID || envs[0].GroupID != gid || envs[0].Type != herald.EnvelopeSenderKey {
		t.Errorf("Envelopes = %+v, %v; want the group envelope", envs, err)
	}
}
