package server_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/transport/botapi"
)

// TestWebhookRefusesInternalAddresses: by default a bot cannot point its
// webhook at the server's own machine or network (issue 22 item 3), by
// address or by a name that resolves there, nor at ports other than
// Telegram's.
func TestWebhookRefusesInternalAddresses(t *testing.T) {
	n := startBotNodeOpts(t, laxBots, botapi.Options{})
	alice := signup(t, n, "alice")
	_, token := newBot(t, alice)
	for _, u := range []string{
		"http://127.0.0.1/hook",
		"https://127.0.0.1:8443/hook",
		"http://[::1]/hook",
		"http://10.0.0.7/hook",
		"http://192.168.1.1/hook",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:127.0.0.1]/hook",
		"http://localhost/hook",
		"http://" + strings.TrimPrefix(n.URL(), "http://") + "/healthz",
		"https://8.8.8.8:6379/hook",
	} {
		r := call(t, n, token, "setWebhook", map[string]any{"url": u})
		if r.status != http.StatusBadRequest || !strings.HasPrefix(r.Description, "Bad Request: bad webhook") {
			t.Errorf("setWebhook %s: %d %q, want 400 bad webhook", u, r.status, r.Description)
		}
	}
	var info struct {
		URL string `json:"url"`
	}
	mustOK(t, call(t, n, token, "getWebhookInfo", nil), &info)
	if info.URL != "" {
		t.Fatalf("a refused webhook was kept: %q", info.URL)
	}
}

// TestWebhookNoRedirectGenericErrors: even where private addresses are
// allowed, a webhook that redirects is not followed (the redirect is the
// failed answer), and getWebhookInfo tells nothing of the network beyond
// what Telegram tells: no address, port or dialler's words.
func TestWebhookNoRedirectGenericErrors(t *testing.T) {
	n := startBotNodeOpts(t, laxBots, botapi.Options{WebhookAllowPrivate: true, WebhookBackoff: 10 * time.Millisecond})
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)

	var inner, outer atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.Add(1) }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outer.Add(1)
		http.Redirect(w, r, target.URL+"/internal", http.StatusFound)
	}))
	defer redir.Close()

	lastError := func() string {
		var info struct {
			LastErrorMessage string `json:"last_error_message"`
		}
		mustOK(t, call(t, n, token, "getWebhookInfo", nil), &info)
		return info.LastErrorMessage
	}
	mustOK(t, call(t, n, token, "setWebhook", map[string]any{"url": redir.URL + "/hook"}), nil)
	send(t, alice, to(name), "hello")
	waitUntil(t, "the redirect is reported", func() bool { return outer.Load() >= 2 && lastError() != "" })
	if got := lastError(); got != "Wrong response from the webhook: 302 Found" {
		t.Fatalf("last_error_message = %q", got)
	}
	if inner.Load() != 0 {
		t.Fatal("the redirect was followed")
	}

	// A closed port: the message names no address or port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	mustOK(t, call(t, n, token, "setWebhook", map[string]any{"url": "http://" + closed + "/hook"}), nil)
	waitUntil(t, "the refused connection is reported", func() bool { return strings.HasPrefix(lastError(), "Connection") })
	if got := lastError(); got != "Connection refused" {
		t.Fatalf("last_error_message = %q", got)
	}
}

// TestWebhookCheckedAtDial: a webhook URL that reaches an internal
// address only later (its name re-resolved, or stored before the operator
// turned -webhook-allow-private off; here written straight into the
// store) is refused when delivery dials it, and the bot is told only
// "Connection refused".
func TestWebhookCheckedAtDial(t *testing.T) {
	n := startBotNodeOpts(t, laxBots, botapi.Options{WebhookLease: 300 * time.Millisecond, WebhookBackoff: 10 * time.Millisecond})
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	var me struct {
		ID int64 `json:"id"`
	}
	mustOK(t, call(t, n, token, "getMe", nil), &me)

	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer hook.Close()
	if _, err := n.Service.SetWebhook(ctxT(t), service.Caller{UserID: me.ID, Username: name, Bot: true}, service.Webhook{URL: hook.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	send(t, alice, to(name), "hello")
	var info struct {
		URL              string `json:"url"`
		LastErrorMessage string `json:"last_error_message"`
	}
	waitUntil(t, "delivery is tried", func() bool {
		mustOK(t, call(t, n, token, "getWebhookInfo", nil), &info)
		return info.LastErrorMessage != ""
	})
	if info.URL != hook.URL+"/hook" || info.LastErrorMessage != "Connection refused" {
		t.Fatalf("webhook info %+v", info)
	}
	if hits.Load() != 0 {
		t.Fatal("the internal address was reached")
	}
}
