package server_test

import (
	"testing"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// TestBotPinAndReact: pinChatMessage, unpinChatMessage and
// setMessageReaction in a direct chat with a person, seen through the
// person's client.
func TestBotPinAndReact(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	send(t, alice, to(name), "/start")
	h, err := alice.History(ctxT(t), &pb.HistoryRequest{Peer: to(name)})
	if err != nil || len(h) != 1 {
		t.Fatalf("history = %v, %v", h, err)
	}
	msg := h[0]

	react := func(emoji ...string) apiResult {
		rs := []map[string]string{}
		for _, e := range emoji {
			rs = append(rs, map[string]string{"type": "emoji", "emoji": e})
		}
		return call(t, n, token, "setMessageReaction", map[string]any{"chat_id": alice.user.id, "message_id": msg.Id, "reaction": rs})
	}
	mine := func() map[string]int32 {
		h, err := alice.History(ctxT(t), &pb.HistoryRequest{Peer: to(name)})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int32{}
		for _, r := range h[0].Reactions {
			out[r.Emoji] = r.Count
		}
		return out
	}
	mustOK(t, react("👍", "🔥"), nil)
	if got := mine(); len(got) != 2 || got["👍"] != 1 || got["🔥"] != 1 {
		t.Fatalf("after setting two: %v", got)
	}
	mustOK(t, react("🔥"), nil) // exactly these: 👍 goes
	if got := mine(); len(got) != 1 || got["🔥"] != 1 {
		t.Fatalf("after setting one: %v", got)
	}
	if r := react("🦄"); r.ErrorCode != 400 {
		t.Fatalf("an emoji outside the set: %d %s", r.ErrorCode, r.Description)
	}
	mustOK(t, react(), nil)
	if got := mine(); len(got) != 0 {
		t.Fatalf("after clearing: %v", got)
	}

	mustOK(t, call(t, n, token, "pinChatMessage", map[string]any{"chat_id": alice.user.id, "message_id": msg.Id}), nil)
	pins, err := alice.Pins(ctxT(t), to(name))
	if err != nil || len(pins) != 1 || pins[0].Id != msg.Id || !pins[0].Pinned {
		t.Fatalf("pins = %v, %v", pins, err)
	}
	if r := call(t, n, token, "pinChatMessage", map[string]any{"chat_id": alice.user.id, "message_id": 999}); r.ErrorCode != 400 {
		t.Fatalf("pinning a missing message: %d %s", r.ErrorCode, r.Description)
	}
	mustOK(t, call(t, n, token, "unpinChatMessage", map[string]any{"chat_id": alice.user.id}), nil) // the newest
	if pins, err := alice.Pins(ctxT(t), to(name)); err != nil || len(pins) != 0 {
		t.Fatalf("pins after unpinning = %v, %v", pins, err)
	}
}
