package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

func endpoints[T any](xs []T, get func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, get(x))
	}
	slices.Sort(out)
	return out
}

func subEndpoint(s herald.PushSubscription) string { return s.Endpoint }
func targetEndpoint(t herald.PushTarget) string    { return t.Endpoint }

// testPush checks store.Push, for stores that implement it.
func testPush(t *testing.T, f *fixture) {
	s, ok := f.s.(store.Push)
	if !ok {
		t.Skip("the store does not implement store.Push")
	}
	alice, bobby, carol := f.user(), f.user(), f.user()
	a1, b1, b2, c1 := f.device(alice.ID), f.device(bobby.ID), f.device(bobby.ID), f.device(carol.ID)
	g := f.group(alice.ID, bobby.ID, carol.ID)
	sub := func(d herald.Device, name string) herald.PushSubscription {
		return herald.PushSubscription{Endpoint: "https://push.example/" + name, DeviceID: d.ID, UserID: d.UserID, P256dh: "pk-" + name, Auth: "au-" + name, CreatedAt: f.tick()}
	}
	for _, x := range []herald.PushSubscription{sub(a1, "a1"), sub(b1, "b1"), sub(b2, "b2"), sub(c1, "c1")} {
		if err := s.AddPushSubscription(f.ctx, x, 3); err != nil {
			t.Fatalf("AddPushSubscription(%s): %v", x.Endpoint, err)
		}
	}
	// Re-adding the same endpoint replaces it (new keys), not a second row.
	again := sub(b1, "b1")
	again.P256dh = "pk-new"
	if err := s.AddPushSubscription(f.ctx, again, 3); err != nil {
		t.Fatal(err)
	}
	subs, err := s.PushSubscriptions(f.ctx, bobby.ID)
	if got := endpoints(subs, subEndpoint); err != nil || !slices.Equal(got, []string{"https://push.example/b1", "https://push.example/b2"}) {
		t.Fatalf("PushSubscriptions = %v, %v", got, err)
	}
	for _, x := range subs {
		if x.Endpoint == again.Endpoint && (x.P256dh != "pk-new" || x.Auth != "au-b1" || x.DeviceID != b1.ID) {
			t.Errorf("replaced subscription = %+v", x)
		}
	}
	// The cap counts the account's other endpoints.
	if err := s.AddPushSubscription(f.ctx, sub(b2, "b3"), 2); !herald.IsKind(err, herald.RateLimited) {
		t.Errorf("a third subscription with a cap of 2: %v, want RATE_LIMITED", err)
	}

	// Targets: the other members' subscriptions with their settings.
	targets, err := s.PushTargets(f.ctx, g.ID, alice.ID, f.now)
	if got := endpoints(targets, targetEndpoint); err != nil || !slices.Equal(got, []string{"https://push.example/b1", "https://push.example/b2", "https://push.example/c1"}) {
		t.Fatalf("PushTargets = %v, %v", got, err)
	}
	until := f.now.Add(8 * time.Hour).Truncate(time.Millisecond)
	if err := s.SetChatNotify(f.ctx, bobby.ID, g.ID, herald.ChatNotify{Level: herald.NotifyMentions, MuteUntil: until}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetChatNotify(f.ctx, bobby.ID, g.ID+1000, herald.ChatNotify{}); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("SetChatNotify for a chat not joined: %v, want NOT_FOUND", err)
	}
	if n, err := s.ChatNotify(f.ctx, bobby.ID, g.ID); err != nil || n.Level != herald.NotifyMentions || !n.MuteUntil.Equal(until) {
		t.Errorf("ChatNotify = %+v, %v", n, err)
	}
	if p, err := s.PushPrefs(f.ctx, carol.ID); err != nil || p != (herald.PushPrefs{}) {
		t.Errorf("default PushPrefs = %+v, %v", p, err)
	}
	if err := s.SetPushPrefs(f.ctx, carol.ID, herald.PushPrefs{HideText: true}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.PushPrefs(f.ctx, carol.ID); err != nil || p != (herald.PushPrefs{HideText: true}) {
		t.Errorf("PushPrefs = %+v, %v", p, err)
	}
	if err := f.s.SetMuted(f.ctx, g.ID, carol.ID, true); err != nil {
		t.Fatal(err)
	}
	// A focused device is left out until its focus ends.
	if err := s.SetPushFocus(f.ctx, b2.ID, f.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	targets, err = s.PushTargets(f.ctx, g.ID, alice.ID, f.now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"https://push.example/b1": fmt.Sprintf("%d %d false false false", herald.NotifyMentions, until.UnixMilli()),
		"https://push.example/c1": "0 0 true false true",
	}
	if len(targets) != len(want) {
		t.Fatalf("PushTargets with b2 focused = %v", endpoints(targets, targetEndpoint))
	}
	for _, x := range targets {
		var mu int64
		if !x.Notify.MuteUntil.IsZero() {
			mu = x.Notify.MuteUntil.UnixMilli()
		}
		if got := fmt.Sprintf("%d %d %v %v %v", x.Notify.Level, mu, x.Prefs.HideText, x.Prefs.HideSender, x.Muted); got != want[x.Endpoint] {
			t.Errorf("target %s: %s, want %s", x.Endpoint, got, want[x.Endpoint])
		}
	}
	if targets, err := s.PushTargets(f.ctx, g.ID, alice.ID, f.now.Add(2*time.Minute)); err != nil || len(targets) != 3 {
		t.Errorf("PushTargets after the focus ended: %d, %v", len(targets), err)
	}
	if us, err := s.UserPushTargets(f.ctx, bobby.ID, b1.ID); err != nil || len(us) != 1 || us[0].DeviceID != b2.ID {
		t.Errorf("UserPushTargets = %+v, %v", us, err)
	}

	// Deleting: by owner, by endpoint (a 410), and with the device.
	if err := s.DeletePushSubscription(f.ctx, alice.ID, "https://push.example/b1"); !herald.IsKind(err, herald.NotFound) {
		t.Errorf("deleting another user's subscription: %v, want NOT_FOUND", err)
	}
	if err := s.DeletePushSubscription(f.ctx, bobby.ID, "https://push.example/b1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DropPushEndpoint(f.ctx, "https://push.example/c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DropPushEndpoint(f.ctx, "https://push.example/none"); err != nil {
		t.Errorf("dropping an unknown endpoint: %v", err)
	}
	if err := f.s.DeleteDevice(f.ctx, bobby.ID, b2.ID); err != nil {
		t.Fatal(err)
	}
	for _, u := range []herald.User{bobby, carol} {
		if subs, err := s.PushSubscriptions(f.ctx, u.ID); err != nil || len(subs) != 0 {
			t.Errorf("%s's subscriptions after deletion: %v, %v", u.Username, endpoints(subs, subEndpoint), err)
		}
	}

	// The first VAPID key stored stays.
	priv, pub, err := s.VAPIDKey(f.ctx, []byte("priv1"), []byte("pub1"))
	if err != nil || !bytes.Equal(priv, []byte("priv1")) || !bytes.Equal(pub, []byte("pub1")) {
		t.Fatalf("first VAPIDKey = %q %q, %v", priv, pub, err)
	}
	priv, pub, err = s.VAPIDKey(f.ctx, []byte("priv2"), []byte("pub2"))
	if err != nil || !bytes.Equal(priv, []byte("priv1")) || !bytes.Equal(pub, []byte("pub1")) {
		t.Errorf("second VAPIDKey = %q %q, %v, want the first", priv, pub, err)
	}
}
