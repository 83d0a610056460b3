package server_test

import (
	"strings"
	"testing"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// TestBotPrivacyReads: a bot in privacy mode cannot read, by id, a group
// message it would not have received as an update (issue 22 item 5):
// forwardMessage, copyMessage and a reply's reply_to_message all refuse
// it, while what the bot may see (commands, mentions, its own messages)
// stays readable.
func TestBotPrivacyReads(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	bob := signup(t, n, "bobby")
	name, token := newBot(t, alice)
	g, err := alice.CreateGroup(ctxT(t), "team", []string{bob.user.name, name})
	if err != nil {
		t.Fatal(err)
	}
	gid := -g.Id
	gp := &pb.Peer{ChatId: g.Id}
	secret := send(t, bob, gp, "the secret plan is at dawn")
	command := send(t, bob, gp, "/status please")
	var own struct {
		MessageID int64 `json:"message_id"`
	}
	mustOK(t, call(t, n, token, "sendMessage", map[string]any{"chat_id": gid, "text": "bot here"}), &own)

	for _, tc := range []struct {
		method string
		params map[string]any
	}{
		{"forwardMessage", map[string]any{"chat_id": gid, "from_chat_id": gid, "message_id": secret.Id}},
		{"copyMessage", map[string]any{"chat_id": gid, "from_chat_id": gid, "message_id": secret.Id}},
	} {
		r := call(t, n, token, tc.method, tc.params)
		if r.OK || r.status != 400 || strings.Contains(string(r.Result), "dawn") {
			t.Errorf("%s of an unseen message: %d %q %s", tc.method, r.status, r.Description, r.Result)
		}
	}
	var sent struct {
		ReplyTo *struct {
			Text string `json:"text"`
		} `json:"reply_to_message"`
	}
	r := call(t, n, token, "sendMessage", map[string]any{"chat_id": gid, "text": "re", "reply_to_message_id": secret.Id})
	if r.OK {
		mustOK(t, r, &sent)
		if sent.ReplyTo != nil && strings.Contains(sent.ReplyTo.Text, "dawn") {
			t.Errorf("a reply showed the bot an unseen message: %s", r.Result)
		}
	}

	// What the bot may see it may forward and copy.
	for _, id := range []int64{command.Id, own.MessageID} {
		mustOK(t, call(t, n, token, "copyMessage", map[string]any{"chat_id": gid, "from_chat_id": gid, "message_id": id}), nil)
		mustOK(t, call(t, n, token, "forwardMessage", map[string]any{"chat_id": gid, "from_chat_id": gid, "message_id": id}), nil)
	}

	// With privacy off the bot sees, and so may read, everything.
	if _, err := alice.SetBotPrivacy(ctxT(t), name, false); err != nil {
		t.Fatal(err)
	}
	mustOK(t, call(t, n, token, "copyMessage", map[string]any{"chat_id": gid, "from_chat_id": gid, "message_id": secret.Id}), nil)
}
