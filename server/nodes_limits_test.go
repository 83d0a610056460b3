package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/transport/botapi"
)

// TestLimitsAcrossNodes: abuse limits count a user's requests on every
// node together. Spreading sends, or password guesses, over two nodes
// gets no more through than one node would let.
func TestLimitsAcrossNodes(t *testing.T) {
	strict := lax
	strict.DirectPerSecond = 0.001 // one message, then a wait of 1000 s
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) { c.AbuseLimits = strict })
	a, b := node(), node()
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")
	alice2 := loginVia(t, b.URL(), alice.user)

	send(t, alice, to(bobby.user.name), "the one message alice may send for now")
	_, err := alice2.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: "the same again, through node B"})
	var he *herald.Error
	if !errorsAs(err, &he) || he.Kind != herald.RateLimited || he.RetryAfter < 900*time.Second {
		t.Fatalf("alice's second message, through the other node: %v", err)
	}
	// bobby's bucket is his own.
	send(t, bobby, to(alice.user.name), "bobby's first")

	// Five wrong passwords are allowed per username, wherever they go.
	anon := []*client.Client{newClient(t, a.URL(), "", false, -1), newClient(t, b.URL(), "", false, -1)}
	for i := range 5 {
		_, err := anon[i%2].Login(ctxT(t), &pb.LoginRequest{Username: bobby.user.name, Password: "guess"})
		if !herald.IsKind(err, herald.Unauthenticated) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	for i, c := range anon {
		_, err := c.Login(ctxT(t), &pb.LoginRequest{Username: bobby.user.name, Password: password})
		if !errorsAs(err, &he) || he.Kind != herald.RateLimited || he.RetryAfter <= 0 {
			t.Fatalf("login on node %d after five wrong guesses spread over both: %v", i+1, err)
		}
	}
}

// TestWebhookOnceAcrossNodes: with two nodes, each update reaches a bot's
// webhook once, from one node; when that node dies, the other takes over
// once its lease lapses, and nothing is lost.
func TestWebhookOnceAcrossNodes(t *testing.T) {
	var mu sync.Mutex
	hits := map[int64][]string{} // update_id → the nodes that posted it
	from := map[string]string{}  // message text → the node that posted it
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u apiUpdate
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &u)
		// A slow bot: two nodes both delivering would both post an
		// update before either had it confirmed.
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		hits[u.UpdateID] = append(hits[u.UpdateID], r.Header.Get("X-Node"))
		if u.Message != nil {
			from[u.Message.Text] = r.Header.Get("X-Node")
		}
		mu.Unlock()
	}))
	defer hook.Close()

	names := []string{"A", "B"}
	made := 0
	node := sharedNodes(t, pgtest.Schema(t), func(c *server.Config) {
		c.BotLimits = laxBots
		c.BotAPI = botapi.Options{
			WebhookLease:        time.Second,
			WebhookAllowPrivate: true,
			WebhookBackoff:      10 * time.Millisecond,
			WebhookClient:       &http.Client{Timeout: 10 * time.Second, Transport: tagged{names[made]}},
		}
		made++
	})
	nodes := []*server.Node{node(), node()}
	alice := signup(t, nodes[0], "alice")
	name, token := newBot(t, alice)
	mustOK(t, call(t, nodes[1], token, "setWebhook", map[string]any{"url": hook.URL}), nil)

	// Both nodes find the webhook within a lease (one was told, the
	// other looks again every lease); then each update comes once.
	delivered := func(want []string) (who string) {
		t.Helper()
		waitUntil(t, fmt.Sprintf("the webhook got %q", want), func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, w := range want {
				if from[w] == "" {
					return false
				}
			}
			return true
		})
		// Long enough for a second node, were it delivering too, to
		// have posted the same updates again.
		time.Sleep(3 * time.Second)
		mu.Lock()
		defer mu.Unlock()
		for id, by := range hits {
			if len(by) != 1 {
				t.Fatalf("update %d was posted %d times, by %v", id, len(by), by)
			}
		}
		return from[want[len(want)-1]]
	}
	var first []string
	for i := range 5 {
		first = append(first, fmt.Sprintf("before %d", i))
		send(t, alice, to(name), first[i])
		time.Sleep(200 * time.Millisecond) // over more than one renewal
	}
	holder := delivered(first)
	var info struct {
		Pending int `json:"pending_update_count"`
	}
	waitUntil(t, "every update confirmed", func() bool {
		mustOK(t, call(t, nodes[0], token, "getWebhookInfo", nil), &info)
		return info.Pending == 0
	})

	// The delivering node dies without handing over; the other waits
	// out the lease and goes on.
	dead, alive, aliveName := nodes[0], nodes[1], "B"
	if holder == "B" {
		dead, alive, aliveName = nodes[1], nodes[0], "A"
	}
	dead.Kill()
	alice = loginVia(t, alive.URL(), alice.user)
	var after []string
	for i := range 3 {
		after = append(after, fmt.Sprintf("after %d", i))
		send(t, alice, to(name), after[i])
	}
	delivered(append(first, after...))
	mu.Lock()
	defer mu.Unlock()
	for _, text := range after {
		if from[text] != aliveName {
			t.Fatalf("%q was posted by node %s after node %s died", text, from[text], holder)
		}
	}
}

// tagged marks a node's webhook posts, so the test knows who sent each.
type tagged struct{ node string }

func (t tagged) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Node", t.node)
	return http.DefaultTransport.RoundTrip(r)
}
