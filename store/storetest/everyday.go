package storetest

import (
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

// testAnnotations covers store.Annotations: reactions and pins are set
// and cleared once, only on live messages, and go with the message when
// it is deleted for everyone or expires; extras are read by page.
func testAnnotations(t *testing.T, f *fixture) {
	as, ok := f.s.(store.Annotations)
	if !ok {
		t.Skip("the store does not implement store.Annotations")
	}
	ctx := f.ctx
	a, b := f.user(), f.user()
	c := f.group(a.ID, b.ID)
	for i := 1; i <= 4; i++ {
		f.send(c.ID, a.ID, "message")
	}

	react := func(seq, user int64, emoji string, on bool) (bool, error) {
		return as.SetReaction(ctx, c.ID, seq, user, emoji, on, f.tick())
	}
	steps := []struct {
		seq, user int64
		emoji     string
		on        bool
		changed   bool
		kind      herald.Kind // "" for no error
	}{
		{1, a.ID, "👍", true, true, ""},
		{1, a.ID, "👍", true, false, ""}, // again: nothing new
		{1, b.ID, "👍", true, true, ""},
		{1, b.ID, "🔥", true, true, ""},
		{2, b.ID, "❤️", true, true, ""},
		{3, a.ID, "🎉", true, true, ""},
		{1, a.ID, "🔥", false, false, ""}, // not there
		{1, b.ID, "🔥", false, true, ""},
		{99, a.ID, "👍", true, false, herald.NotFound},
	}
	for i, s := range steps {
		changed, err := react(s.seq, s.user, s.emoji, s.on)
		if s.kind != "" {
			wantKind(t, "SetReaction", err, s.kind)
			continue
		}
		if err != nil || changed != s.changed {
			t.Fatalf("step %d: SetReaction(%d, %d, %s, %v) = %v, %v; want %v", i, s.seq, s.user, s.emoji, s.on, changed, err, s.changed)
		}
	}
	got, err := as.Reactions(ctx, c.ID, []int64{1, 2, 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[1]) != 2 || got[1][0].UserID != a.ID || got[1][1].UserID != b.ID || got[1][0].Emoji != "👍" ||
		len(got[2]) != 1 || got[2][0].Emoji != "❤️" || got[3] != nil {
		t.Fatalf("Reactions(1, 2, 4) = %+v", got)
	}
	if got, err := as.Reactions(ctx, c.ID, nil); err != nil || len(got) != 0 {
		t.Fatalf("Reactions(none) = %v, %v", got, err)
	}

	// Pins.
	for _, s := range []struct {
		seq     int64
		on      bool
		changed bool
		kind    herald.Kind
	}{
		{1, true, true, ""},
		{1, true, false, ""},
		{2, true, true, ""},
		{3, true, true, ""},
		{3, false, true, ""},
		{3, false, false, ""},
		{42, true, false, herald.NotFound},
	} {
		changed, err := as.SetPin(ctx, c.ID, s.seq, a.ID, s.on, f.tick())
		if s.kind != "" {
			wantKind(t, "SetPin", err, s.kind)
			continue
		}
		if err != nil || changed != s.changed {
			t.Fatalf("SetPin(%d, %v) = %v, %v; want %v", s.seq, s.on, changed, err, s.changed)
		}
	}
	pins, err := as.Pins(ctx, c.ID)
	if err != nil || len(pins) != 2 || pins[0].Seq != 2 || pins[1].Seq != 1 || pins[0].By != a.ID || pins[0].At.IsZero() {
		t.Fatalf("Pins = %+v, %v; want 2 then 1", pins, err)
	}

	// A message deleted for everyone takes its reactions and pin along;
	// deleted for one person only, it keeps them for the others.
	if _, err := f.s.DeleteMessages(ctx, b.ID, c.ID, []int64{2}, false, f.tick()); err != nil {
		t.Fatal(err)
	}
	if got, _ := as.Reactions(ctx, c.ID, []int64{2}); len(got[2]) != 1 {
		t.Fatalf("after a delete for one: reactions %+v", got)
	}
	if _, err := f.s.DeleteMessages(ctx, a.ID, c.ID, []int64{1, 2}, true, f.tick()); err != nil {
		t.Fatal(err)
	}
	if got, _ := as.Reactions(ctx, c.ID, []int64{1, 2, 3}); len(got) != 1 || len(got[3]) != 1 {
		t.Fatalf("after a delete for everyone: reactions %+v; want only message 3's", got)
	}
	if pins, _ := as.Pins(ctx, c.ID); len(pins) != 0 {
		t.Fatalf("after a delete for everyone: pins %+v", pins)
	}
	if _, err := react(1, a.ID, "👍", true); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("reacting to a deleted message: %v", err)
	}
	if _, err := as.SetPin(ctx, c.ID, 1, a.ID, true, f.tick()); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("pinning a deleted message: %v", err)
	}

	// An expiring message too.
	m, _, _, err := f.s.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, Body: []byte("brief"), SentAt: f.tick(),
		TTL: time.Minute, ExpiresAt: f.now.Add(time.Minute), SealedUntil: f.now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := react(m.Seq, b.ID, "😮", true); err != nil {
		t.Fatal(err)
	}
	if _, err := as.SetPin(ctx, c.ID, m.Seq, a.ID, true, f.tick()); err != nil {
		t.Fatal(err)
	}
	if _, n, err := f.s.ExpireMessages(ctx, f.now.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("ExpireMessages = %d, %v", n, err)
	}
	if got, _ := as.Reactions(ctx, c.ID, []int64{m.Seq}); len(got) != 0 {
		t.Fatalf("after expiry: reactions %+v", got)
	}
	if pins, _ := as.Pins(ctx, c.ID); len(pins) != 0 {
		t.Fatalf("after expiry: pins %+v", pins)
	}

	// Mentions count until read, and go with their message.
	for i := 0; i < 3; i++ {
		f.send(c.ID, a.ID, "hey")
	}
	last := f.chat(c.ID).LastSeq
	if err := as.AddMentions(ctx, c.ID, last-2, []int64{b.ID}); err != nil {
		t.Fatal(err)
	}
	if err := as.AddMentions(ctx, c.ID, last, []int64{b.ID, a.ID}); err != nil {
		t.Fatal(err)
	}
	if err := as.AddMentions(ctx, c.ID, 1, []int64{b.ID}); err != nil { // deleted: nothing
		t.Fatal(err)
	}
	if got, err := as.UnreadMentions(ctx, b.ID); err != nil || got[c.ID] != 2 || len(got) != 1 {
		t.Fatalf("UnreadMentions(b) = %v, %v; want 2 in the group", got, err)
	}
	if got, _ := as.UnreadMentions(ctx, a.ID); len(got) != 0 { // a sent them: read
		t.Fatalf("UnreadMentions(a) = %v; a read up to their own message", got)
	}
	if _, err := f.s.ReadHistory(ctx, b.ID, c.ID, last-1, f.tick()); err != nil {
		t.Fatal(err)
	}
	if got, _ := as.UnreadMentions(ctx, b.ID); got[c.ID] != 1 {
		t.Fatalf("after reading past one: %v", got)
	}
	if _, err := f.s.DeleteMessages(ctx, a.ID, c.ID, []int64{last}, true, f.tick()); err != nil {
		t.Fatal(err)
	}
	if got, _ := as.UnreadMentions(ctx, b.ID); len(got) != 0 {
		t.Fatalf("after its message was deleted: %v", got)
	}

	// Extras, by page.
	x, _, _, err := f.s.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, Body: []byte("formatted"), Extra: []byte("sealed"), SentAt: f.tick()})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := as.Extras(ctx, c.ID, []int64{3, 4, x.Seq})
	if err != nil || len(ex) != 1 || string(ex[x.Seq]) != "sealed" {
		t.Fatalf("Extras = %v, %v", ex, err)
	}
}
