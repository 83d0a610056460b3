package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// TestBotAcrossNodes: a bot long-polling one node gets a message sent
// through another, and its answer to a button press reaches the presser
// on the other node (PostgreSQL and NATS between them).
func TestBotAcrossNodes(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) { c.BotLimits = laxBots })
	a, b := node(), node()
	alice := signup(t, a, "alice")
	name, token := newBot(t, alice)

	// Waiting on node B before the message is sent through node A (no
	// t.Fatal off the test's goroutine: failures arrive as an empty list).
	polled := make(chan []apiUpdate, 1)
	go func() {
		var ups []apiUpdate
		for range 3 {
			resp, err := http.Post(b.URL()+"/bot"+token+"/getUpdates", "application/json", strings.NewReader(`{"timeout":10}`))
			if err != nil {
				break
			}
			var r struct {
				Result []apiUpdate `json:"result"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if ups = r.Result; len(ups) > 0 {
				break
			}
		}
		polled <- ups
	}()
	send(t, alice, to(name), "across nodes")
	var ups []apiUpdate
	select {
	case ups = <-polled:
	case <-time.After(30 * time.Second):
		t.Fatal("the bot on node B got nothing")
	}
	if len(ups) != 1 || ups[0].Message.Text != "across nodes" {
		t.Fatalf("updates = %+v", ups)
	}
	kb := map[string]any{"inline_keyboard": [][]map[string]string{{{"text": "Go", "callback_data": "go"}}}}
	mustOK(t, call(t, b, token, "sendMessage", map[string]any{"chat_id": alice.user.id, "text": "Press", "reply_markup": kb}), nil)
	m := next(t, alice, func(u *pb.Update) bool { return u.GetNewMessage().GetFrom() == name }).GetNewMessage()
	if len(m.Buttons) != 1 {
		t.Fatalf("alice on node A got %v", m)
	}
	qid, err := alice.Press(ctxT(t), m.ChatId, m.Id, "go")
	if err != nil {
		t.Fatal(err)
	}
	cq := poll(t, b, token, ups[0].UpdateID+1)[0].CallbackQuery
	if cq == nil {
		t.Fatal("no callback query on node B")
	}
	mustOK(t, call(t, b, token, "answerCallbackQuery", map[string]any{"callback_query_id": cq.ID, "text": "done"}), nil)
	for {
		select {
		case ev := <-alice.Events():
			if a := ev.CallbackAnswer; a != nil {
				if a.QueryId != qid || a.Text != "done" {
					t.Fatalf("answer = %v", a)
				}
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("alice on node A got no answer")
		}
	}
}

// TestBotPollConflictAcrossNodes: a newer getUpdates on one node ends an
// older one waiting on another with 409, as on one node, so two instances
// of a bot behind a load balancer are told, not fed the same updates.
func TestBotPollConflictAcrossNodes(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) { c.BotLimits = laxBots })
	a, b := node(), node()
	alice := signup(t, a, "alice")
	_, token := newBot(t, alice)
	pollsConflict(t, a, b, token)
}

// TestSetWebhookEndsPollAcrossNodes: a webhook set through one node ends
// the bot's getUpdates waiting on another (issue 23 item 3).
func TestSetWebhookEndsPollAcrossNodes(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) {
		c.BotLimits = laxBots
		c.BotAPI.WebhookAllowPrivate = true
	})
	a, b := node(), node()
	alice := signup(t, a, "alice")
	_, token := newBot(t, alice)
	webhookEndsPoll(t, a, b, token)
}
