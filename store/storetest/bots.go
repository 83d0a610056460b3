package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

// testBots covers store.Bots: accounts, tokens, settings, deletion, the
// bot's update log, message extras and button presses.
func testBots(t *testing.T, f *fixture) {
	bs, ok := f.s.(store.Bots)
	if !ok {
		t.Skip("the store does not implement store.Bots")
	}
	ctx := f.ctx
	owner := f.user()
	b, err := bs.CreateBot(ctx, herald.User{Username: "helper_bot", DisplayName: "Helper", CreatedAt: f.tick()}, owner.ID, []byte("hash1"))
	if err != nil || b.UserID == 0 || b.OwnerID != owner.ID || b.Username != "helper_bot" {
		t.Fatalf("CreateBot = %+v, %v", b, err)
	}
	if _, err := bs.CreateBot(ctx, herald.User{Username: owner.Username, CreatedAt: f.tick()}, owner.ID, []byte("x")); !herald.IsKind(err, herald.AlreadyExists) {
		t.Fatalf("CreateBot with a taken name: %v", err)
	}
	if _, _, err := f.s.UserByName(ctx, "helper_bot"); err != nil {
		t.Fatalf("the bot's account: %v", err)
	}
	got, hash, err := bs.Bot(ctx, b.UserID)
	if err != nil || !bytes.Equal(hash, []byte("hash1")) || got.Deleted || got.DisplayName != "Helper" || !got.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("Bot = %+v %q %v", got, hash, err)
	}
	if _, _, err := bs.Bot(ctx, owner.ID); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("Bot(a person) = %v", err)
	}
	if err := bs.SetBotToken(ctx, b.UserID, []byte("hash2")); err != nil {
		t.Fatal(err)
	}
	if _, hash, _ := bs.Bot(ctx, b.UserID); !bytes.Equal(hash, []byte("hash2")) {
		t.Fatalf("token after SetBotToken: %q", hash)
	}
	got.ReadAll, got.WebhookURL, got.WebhookSecret, got.MaxConnections = true, "https://example.org/hook", "s", 40
	got.AllowedUpdates = []string{"message", "callback_query"}
	got.Commands = []herald.BotCommand{{Command: "start", Description: "Start"}}
	if err := bs.UpdateBot(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, _, _ := bs.Bot(ctx, b.UserID)
	if !again.ReadAll || again.WebhookURL != got.WebhookURL || len(again.AllowedUpdates) != 2 || len(again.Commands) != 1 || again.Commands[0].Command != "start" || again.MaxConnections != 40 {
		t.Fatalf("after UpdateBot: %+v", again)
	}
	hooks, err := bs.WebhookBots(ctx)
	if err != nil || len(hooks) != 1 || hooks[0].UserID != b.UserID {
		t.Fatalf("WebhookBots = %+v, %v", hooks, err)
	}
	list, err := bs.BotsOf(ctx, owner.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("BotsOf = %+v, %v", list, err)
	}

	// The bot's log: messages, then a press.
	person := f.user()
	chat := f.direct(person.ID, b.UserID)
	m := f.send(chat.ID, b.UserID, "pick one")
	if x, err := bs.Extra(ctx, chat.ID, m.Seq); err != nil || x != nil {
		t.Fatalf("Extra before SetExtra = %q, %v", x, err)
	}
	if err := bs.SetExtra(ctx, chat.ID, m.Seq, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := bs.SetExtra(ctx, chat.ID, m.Seq, []byte("sealed2")); err != nil {
		t.Fatal(err)
	}
	if x, _ := bs.Extra(ctx, chat.ID, m.Seq); string(x) != "sealed2" {
		t.Fatalf("Extra = %q", x)
	}
	// A keyboard sent with its message is stored in the same write, and
	// a retried send stores nothing twice.
	withKb := herald.Message{ChatID: chat.ID, SenderID: b.UserID, Body: []byte("with buttons"), Extra: []byte("kb"), RandomID: 77, SentAt: f.tick()}
	sent, ups, dup, err := f.s.AppendMessage(ctx, withKb)
	if err != nil || dup || len(ups) != 2 {
		t.Fatalf("AppendMessage with Extra = %+v, %d updates, %v, %v", sent, len(ups), dup, err)
	}
	if x, err := bs.Extra(ctx, chat.ID, sent.Seq); err != nil || string(x) != "kb" {
		t.Fatalf("Extra of a message appended with one = %q, %v", x, err)
	}
	withKb.Extra = []byte("kb, retried")
	if again, _, dup, err := f.s.AppendMessage(ctx, withKb); err != nil || !dup || again.Seq != sent.Seq {
		t.Fatalf("retried send = %+v, %v, %v", again, dup, err)
	}
	if x, _ := bs.Extra(ctx, chat.ID, sent.Seq); string(x) != "kb" {
		t.Fatalf("a retried send rewrote the keyboard: %q", x)
	}
	f.send(chat.ID, person.ID, "first")
	cb, up, err := bs.LogCallback(ctx, herald.Callback{BotID: b.UserID, UserID: person.ID, ChatID: chat.ID, Seq: m.Seq, Data: "a", At: f.tick()})
	if err != nil || cb.ID == 0 || up.Kind != herald.UpdCallback || up.UserID != b.UserID || len(up.Seqs) != 1 || up.Seqs[0] != cb.ID || up.Pts != f.pts(b.UserID) {
		t.Fatalf("LogCallback = %+v %+v %v", cb, up, err)
	}
	back, err := bs.Callback(ctx, cb.ID)
	if err != nil || back.Data != "a" || back.UserID != person.ID || back.Answered {
		t.Fatalf("Callback = %+v, %v", back, err)
	}
	if err := bs.AnswerCallback(ctx, cb.ID); err != nil {
		t.Fatal(err)
	}
	if err := bs.AnswerCallback(ctx, cb.ID); !herald.IsKind(err, herald.AlreadyExists) {
		t.Fatalf("second AnswerCallback: %v", err)
	}
	if err := bs.AnswerCallback(ctx, cb.ID+100); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("AnswerCallback(unknown): %v", err)
	}
	d, err := f.s.Difference(ctx, b.UserID, 0, 100)
	if err != nil || len(d.Updates) < 3 {
		t.Fatalf("bot's log = %+v, %v", d, err)
	}
	last := d.Updates[len(d.Updates)-1]
	if last.Kind != herald.UpdCallback || last.Seqs[0] != cb.ID || last.ActorID != person.ID {
		t.Fatalf("last entry = %+v", last)
	}
	// Confirming forgets everything below the offset, and nothing above.
	if err := bs.ForgetUpdates(ctx, b.UserID, last.Pts, time.Time{}); err != nil {
		t.Fatal(err)
	}
	d, _ = f.s.Difference(ctx, b.UserID, 0, 100)
	if len(d.Updates) != 1 || d.Updates[0].Pts != last.Pts {
		t.Fatalf("after ForgetUpdates: %+v", d.Updates)
	}
	if err := bs.ForgetUpdates(ctx, b.UserID, 0, f.tick()); err != nil {
		t.Fatal(err)
	}
	if d, _ = f.s.Difference(ctx, b.UserID, 0, 100); len(d.Updates) != 0 {
		t.Fatalf("after ForgetUpdates by age: %+v", d.Updates)
	}

	// Deletion keeps the account as a bot, without a token.
	if err := bs.DeleteBot(ctx, b.UserID); err != nil {
		t.Fatal(err)
	}
	gone, hash, err := bs.Bot(ctx, b.UserID)
	if err != nil || !gone.Deleted || hash != nil || gone.WebhookURL != "" {
		t.Fatalf("after DeleteBot: %+v %q %v", gone, hash, err)
	}
	for name, err := range map[string]error{
		"DeleteBot":   bs.DeleteBot(ctx, b.UserID),
		"SetBotToken": bs.SetBotToken(ctx, b.UserID, []byte("x")),
		"UpdateBot":   bs.UpdateBot(ctx, gone),
	} {
		if !herald.IsKind(err, herald.NotFound) {
			t.Errorf("%s of a deleted bot: %v", name, err)
		}
	}
	if list, _ := bs.BotsOf(ctx, owner.ID); len(list) != 0 {
		t.Fatalf("BotsOf after delete = %+v", list)
	}
	if hooks, _ := bs.WebhookBots(ctx); len(hooks) != 0 {
		t.Fatalf("WebhookBots after delete = %+v", hooks)
	}
}
