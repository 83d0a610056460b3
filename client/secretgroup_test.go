package client

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/heraldim/herald"
)

// groupDevice is bobby's device (user 2) in a group that alice (1, its
// admin) made with bobby and carol (3), as its store has it after the
// group was made.
func groupDevice(t testing.TB) *Secret {
	s := NewSecret(&Client{userID: 2, deviceID: 20}, SecretOptions{Store: &MemoryStore{}})
	g := &groupInfo{ID: 7, Title: "t", Version: 1, Sent: map[int64][]int64{}, Members: []GroupMember{
		{ID: 1, Username: "alice", Admin: true}, {ID: 2, Username: "bobby"}, {ID: 3, Username: "carol"}}}
	if err := s.saveGroup(g); err != nil {
		t.Fatal(err)
	}
	return s
}

func members(ids ...int64) []GroupMember {
	names := map[int64]string{1: "alice", 2: "bobby", 3: "carol", 9: "mallory"}
	var out []GroupMember
	for _, id := range ids {
		out = append(out, GroupMember{ID: id, Username: names[id], Admin: id == 1})
	}
	return out
}

// A device changes its view of a group only on what an admin says (or a
// member says of leaving), with a version it has not seen.
func TestApplyGroupChange(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		from    int64
		gp      groupPayload
		refused bool    // an error
		ignored bool    // neither an error nor a change
		want    []int64 // the members after
		rotate  bool
	}{
		{name: "admin removes carol", from: 1, gp: groupPayload{Version: 2, Change: "remove", Target: 3, Members: members(1, 2)}, want: []int64{1, 2}, rotate: true},
		{name: "admin adds mallory", from: 1, gp: groupPayload{Version: 2, Change: "add", Target: 9, Members: members(1, 2, 3, 9)}, want: []int64{1, 2, 3, 9}},
		{name: "carol removes bobby", from: 3, gp: groupPayload{Version: 2, Change: "remove", Target: 2, Members: members(1, 3)}, refused: true},
		{name: "carol adds mallory", from: 3, gp: groupPayload{Version: 2, Change: "add", Target: 9, Members: members(1, 2, 3, 9)}, refused: true},
		{name: "carol leaves", from: 3, gp: groupPayload{Version: 2, Change: "leave", Target: 3, Members: members(1, 2, 9)}, want: []int64{1, 2}, rotate: true},
		{name: "carol says bobby left", from: 3, gp: groupPayload{Version: 2, Change: "leave", Target: 2, Members: members(1, 3)}, refused: true},
		{name: "mallory, not a member", from: 9, gp: groupPayload{Version: 2, Change: "add", Target: 9, Members: members(1, 2, 3, 9)}, refused: true},
		{name: "an old version replayed", from: 1, gp: groupPayload{Version: 1, Change: "remove", Target: 3, Members: members(1, 2)}, ignored: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := groupDevice(t)
			g, _ := s.loadGroup(7)
			tc.gp.ID = 7
			m, err := s.applyGroup(ctx, g, tc.from, "", tc.gp)
			after, _ := s.loadGroup(7)
			switch {
			case tc.refused:
				if !herald.IsKind(err, herald.PermissionDenied) || after.Version != 1 || len(after.Members) != 3 {
					t.Errorf("got %v, version %d, %d members; want PERMISSION_DENIED and nothing changed", err, after.Version, len(after.Members))
				}
				return
			case tc.ignored:
				if err != nil || m != nil || after.Version != 1 {
					t.Errorf("got %+v, %v; want it ignored", m, err)
				}
				return
			}
			if err != nil || m == nil || m.FromID != tc.from || m.Event != tc.gp.Change {
				t.Fatalf("got %+v, %v", m, err)
			}
			var ids []int64
			for _, x := range after.Members {
				ids = append(ids, x.ID)
			}
			if len(ids) != len(tc.want) || after.Rotate != tc.rotate || after.Version != 2 {
				t.Errorf("members %v rotate %v version %d; want %v rotate %v", ids, after.Rotate, after.Version, tc.want, tc.rotate)
			}
			// The same change again is a replay.
			if m, err := s.applyGroup(ctx, after, tc.from, "", tc.gp); m != nil || err != nil {
				t.Errorf("applied twice: %+v, %v", m, err)
			}
		})
	}
	// A group this device does not know is taken only from its admin, and
	// only with this device's user in it.
	s := NewSecret(&Client{userID: 2, deviceID: 20}, SecretOptions{Store: &MemoryStore{}})
	if _, err := s.applyGroup(ctx, nil, 3, "", groupPayload{ID: 8, Version: 1, Change: "create", Members: members(1, 2, 3)}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Errorf("a group from carol, who is not its admin: %v", err)
	}
	if _, err := s.applyGroup(ctx, nil, 1, "", groupPayload{ID: 8, Version: 1, Change: "create", Members: members(1, 3)}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Errorf("a group without bobby: %v", err)
	}
	if m, err := s.applyGroup(ctx, nil, 1, "", groupPayload{ID: 8, Version: 1, Change: "create", Title: "x", Members: members(1, 2, 3)}); err != nil || m == nil {
		t.Errorf("a group from its admin: %+v, %v", m, err)
	}
}

// FuzzApplyGroup: whatever membership message a member's device sends,
// applying it returns an error or a change, never panics.
func FuzzApplyGroup(f *testing.F) {
	b, _ := json.Marshal(groupPayload{ID: 7, Version: 2, Change: "remove", Target: 3, Members: members(1, 2)})
	f.Add(b, int64(1))
	f.Add([]byte(`{"id":7,"v":9,"c":"leave","u":3}`), int64(3))
	f.Fuzz(func(t *testing.T, b []byte, from int64) {
		var gp groupPayload
		if json.Unmarshal(b, &gp) != nil {
			return
		}
		s := groupDevice(t)
		g, _ := s.loadGroup(7)
		if gp.ID != 7 {
			g = nil
		}
		s.applyGroup(context.Background(), g, from, "", gp)
	})
}
