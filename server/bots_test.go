package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/transport/botapi"
)

// laxBots lifts the bots' send rates for tests that are not about them.
var laxBots = service.BotLimits{PerSecond: 1 << 20, PerChatPerSecond: 1 << 20, PerChatBurst: 1 << 20}

// startBotNode starts a real server whose bots have the given rates.
// Its webhooks may point at loopback (-webhook-allow-private), where the
// tests' bots run.
func startBotNode(t *testing.T, limits service.BotLimits) *server.Node {
	t.Helper()
	return startBotNodeOpts(t, limits, botapi.Options{WebhookAllowPrivate: true})
}

func startBotNodeOpts(t *testing.T, limits service.BotLimits, opts botapi.Options) *server.Node {
	t.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax, BotLimits: limits,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BotAPI: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// newBot creates a bot owned by d and returns its username and token.
func newBot(t *testing.T, d *device) (string, string) {
	t.Helper()
	name := fmt.Sprintf("test%d_bot", userSeq.Add(1))
	b, err := d.CreateBot(ctxT(t), name, "Test Bot")
	if err != nil {
		t.Fatalf("create bot: %v", err)
	}
	if !b.User.IsBot || b.Token == "" {
		t.Fatalf("create bot: %+v", b)
	}
	return name, b.Token
}

// apiResult is a Bot API answer.
type apiResult struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
	status int
}

// call makes a Bot API call with a JSON body.
func call(t *testing.T, n *server.Node, token, method string, params map[string]any) apiResult {
	t.Helper()
	body, _ := json.Marshal(params)
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL()+"/bot"+token+"/"+method, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) apiResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", req.URL.Path, ct)
	}
	var r apiResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", req.URL.Path, err)
	}
	r.status = resp.StatusCode
	if r.OK != (resp.StatusCode == 200) || (!r.OK && r.ErrorCode != resp.StatusCode) {
		t.Errorf("%s: status %d with ok=%v error_code=%d", req.URL.Path, resp.StatusCode, r.OK, r.ErrorCode)
	}
	return r
}

func mustOK(t *testing.T, r apiResult, v any) {
	t.Helper()
	if !r.OK {
		t.Fatalf("call failed: %d %s", r.ErrorCode, r.Description)
	}
	if v != nil {
		if err := json.Unmarshal(r.Result, v); err != nil {
			t.Fatalf("result %s: %v", r.Result, err)
		}
	}
}

type apiUpdate struct {
	UpdateID int64 `json:"update_id"`
	Message  *struct {
		MessageID int64  `json:"message_id"`
		Text      string `json:"text"`
		Chat      struct {
			ID   int64  `json:"id"`
			Type string `json:"type"`
		} `json:"chat"`
		From struct {
			ID       int64  `json:"id"`
			Username string `json:"username"`
		} `json:"from"`
		Entities []struct {
			Type   string `json:"type"`
			Offset int    `json:"offset"`
			Length int    `json:"length"`
		} `json:"entities"`
	} `json:"message"`
	CallbackQuery *struct {
		ID      string `json:"id"`
		Data    string `json:"data"`
		Message struct {
			MessageID int64 `json:"message_id"`
		} `json:"message"`
	} `json:"callback_query"`
}

// poll long-polls until at least one update arrives.
func poll(t *testing.T, n *server.Node, token string, offset int64) []apiUpdate {
	t.Helper()
	for range 10 {
		var ups []apiUpdate
		mustOK(t, call(t, n, token, "getUpdates", map[string]any{"offset": offset, "timeout": 5}), &ups)
		if len(ups) > 0 {
			return ups
		}
	}
	t.Fatal("no updates after 10 long polls")
	return nil
}

func TestBotConversation(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)

	var me struct {
		ID       int64  `json:"id"`
		IsBot    bool   `json:"is_bot"`
		Username string `json:"username"`
	}
	mustOK(t, call(t, n, token, "getMe", nil), &me)
	if !me.IsBot || me.Username != name {
		t.Fatalf("getMe = %+v", me)
	}

	// A bot cannot write first.
	if r := call(t, n, token, "sendMessage", map[string]any{"chat_id": alice.user.id, "text": "hi"}); r.ErrorCode != 403 {
		t.Fatalf("first message from a bot: %d %s", r.ErrorCode, r.Description)
	}

	send(t, alice, to(name), "/start")
	ups := poll(t, n, token, 0)
	m := ups[0].Message
	if m == nil || m.Text != "/start" || m.Chat.ID != alice.user.id || m.Chat.Type != "private" || m.From.Username != alice.user.name {
		t.Fatalf("update = %+v", ups[0])
	}
	if len(m.Entities) != 1 || m.Entities[0].Type != "bot_command" || m.Entities[0].Length != 6 {
		t.Fatalf("entities = %+v", m.Entities)
	}

	kb := map[string]any{"inline_keyboard": [][]map[string]string{{{"text": "Yes", "callback_data": "y"}, {"text": "No", "callback_data": "n"}}}}
	var sent struct {
		MessageID int64 `json:"message_id"`
		Entities  []struct {
			Type string `json:"type"`
		} `json:"entities"`
	}
	mustOK(t, call(t, n, token, "sendMessage", map[string]any{
		"chat_id": alice.user.id, "text": "<b>Ready?</b>", "parse_mode": "HTML", "reply_markup": kb,
	}), &sent)
	if len(sent.Entities) != 1 || sent.Entities[0].Type != "bold" {
		t.Fatalf("sent = %+v", sent)
	}
	got := next(t, alice, func(u *pb.Update) bool { return u.GetNewMessage().GetFrom() == name }).GetNewMessage()
	if got.Text != "Ready?" || len(got.Buttons) != 1 || len(got.Buttons[0].Buttons) != 2 || got.Buttons[0].Buttons[1].Data != "n" {
		t.Fatalf("alice got %v", got)
	}
	// The formatting reaches Herald's own clients, live and in history.
	if e := got.Entities; len(e) != 1 || e[0].Type != "bold" || e[0].Offset != 0 || e[0].Length != 6 {
		t.Fatalf("alice got entities %v", e)
	}
	if h, err := alice.History(ctxT(t), &pb.HistoryRequest{Peer: to(name)}); err != nil || len(h) == 0 || len(h[len(h)-1].Entities) != 1 {
		t.Fatalf("history: %v, %v", h, err)
	}

	qid, err := alice.Press(ctxT(t), got.ChatId, got.Id, "y")
	if err != nil {
		t.Fatal(err)
	}
	ups = poll(t, n, token, ups[len(ups)-1].UpdateID+1)
	cq := ups[0].CallbackQuery
	if cq == nil || cq.Data != "y" || cq.Message.MessageID != got.Id || cq.ID != fmt.Sprint(qid) {
		t.Fatalf("callback update = %+v", ups[0])
	}
	mustOK(t, call(t, n, token, "answerCallbackQuery", map[string]any{"callback_query_id": cq.ID, "text": "noted"}), nil)
	var ans *pb.CallbackAnswer
	for ans == nil {
		select {
		case ev := <-alice.Events():
			ans = ev.CallbackAnswer
		case <-time.After(20 * time.Second):
			t.Fatal("no callback answer")
		}
	}
	if ans.Text != "noted" || ans.QueryId != qid || ans.Bot != name {
		t.Fatalf("answer = %+v", ans)
	}
	if r := call(t, n, token, "answerCallbackQuery", map[string]any{"callback_query_id": cq.ID}); r.ErrorCode != 400 {
		t.Fatalf("second answer: %d %s", r.ErrorCode, r.Description)
	}

	// Confirmed updates are forgotten.
	var rest []apiUpdate
	mustOK(t, call(t, n, token, "getUpdates", map[string]any{"offset": ups[len(ups)-1].UpdateID + 1}), &rest)
	if len(rest) != 0 {
		t.Fatalf("after confirming: %+v", rest)
	}
	mustOK(t, call(t, n, token, "getUpdates", nil), &rest)
	if len(rest) != 0 {
		t.Fatalf("confirmed updates came back: %+v", rest)
	}

	// Edits reach the person; the keyboard goes with an edit without one.
	mustOK(t, call(t, n, token, "editMessageText", map[string]any{"chat_id": alice.user.id, "message_id": got.Id, "text": "Done"}), nil)
	ed := next(t, alice, func(u *pb.Update) bool { return u.GetEditMessage() != nil }).GetEditMessage()
	if ed.Text != "Done" || len(ed.Buttons) != 0 {
		t.Fatalf("edited = %v", ed)
	}
}

// TestBotTokenRotation: the old token is refused the moment a new one is
// issued.
func TestBotTokenRotation(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, old := newBot(t, alice)
	mustOK(t, call(t, n, old, "getMe", nil), nil)
	b, err := alice.RotateBotToken(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, n, old, "getMe", nil); r.status != 401 || r.Description != "Unauthorized" {
		t.Fatalf("old token: %d %q", r.status, r.Description)
	}
	mustOK(t, call(t, n, b.Token, "getMe", nil), nil)

	// Nobody else can rotate, list or delete it.
	bob := signup(t, n, "bobby")
	if _, err := bob.RotateBotToken(ctxT(t), name); err == nil {
		t.Fatal("bob rotated alice's bot")
	}
	list, err := alice.Bots(ctxT(t))
	if err != nil || len(list) != 1 || list[0].User.Username != name || list[0].Token != "" {
		t.Fatalf("bots = %v, %v", list, err)
	}
	if err := alice.DeleteBot(ctxT(t), name); err != nil {
		t.Fatal(err)
	}
	if r := call(t, n, b.Token, "getMe", nil); r.status != 401 {
		t.Fatalf("deleted bot's token: %d", r.status)
	}
}

// TestBotAPIShapes checks the four request encodings, case-insensitive
// method names and every error shape.
func TestBotAPIShapes(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	bob := signup(t, n, "bobby")
	name, token := newBot(t, alice)
	send(t, alice, to(name), "hello")
	g, err := bob.CreateGroup(ctxT(t), "bob's group", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := n.URL() + "/bot" + token + "/"

	multipartBody := func(fields map[string]string) (io.Reader, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for k, v := range fields {
			w.WriteField(k, v)
		}
		w.Close()
		return &b, w.FormDataContentType()
	}
	chat := fmt.Sprint(alice.user.id)
	for _, tc := range []struct {
		name     string
		req      func() *http.Request
		status   int
		contains string
	}{
		{"query string", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendMessage?"+url.Values{"chat_id": {chat}, "text": {"q"}}.Encode(), nil)
			return r
		}, 200, ""},
		{"url-encoded", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"sendMessage", strings.NewReader(url.Values{"chat_id": {chat}, "text": {"f"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 200, ""},
		{"json", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"sendMessage", strings.NewReader(`{"chat_id":`+chat+`,"text":"j"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 200, ""},
		{"multipart", func() *http.Request {
			body, ct := multipartBody(map[string]string{"chat_id": chat, "text": "m"})
			r, _ := http.NewRequest(http.MethodPost, base+"sendMessage", body)
			r.Header.Set("Content-Type", ct)
			return r
		}, 200, ""},
		{"case-insensitive method", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"GETME", nil)
			return r
		}, 200, ""},
		{"unknown method", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendStarship", nil)
			return r
		}, 404, "Not Found: method not found"},
		{"bad token", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, n.URL()+"/bot123:nope/getMe", nil)
			return r
		}, 401, "Unauthorized"},
		{"missing parameter", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendMessage?chat_id="+chat, nil)
			return r
		}, 400, `"text"`},
		{"chat the bot is not in", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendMessage?"+url.Values{"chat_id": {fmt.Sprint(-g.Id)}, "text": {"x"}}.Encode(), nil)
			return r
		}, 403, "Forbidden"},
		{"file by URL", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendDocument?"+url.Values{"chat_id": {chat}, "document": {"https://example.org/a.pdf"}}.Encode(), nil)
			return r
		}, 400, "does not fetch files from URLs"},
		{"unknown file_id", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendPhoto?"+url.Values{"chat_id": {chat}, "photo": {"0123456789abcdef0123456789abcdef"}}.Encode(), nil)
			return r
		}, 400, "wrong file identifier"},
		{"missing file", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendDocument?chat_id="+chat, nil)
			return r
		}, 400, `"document"`},
		{"bad parse_mode markup", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"sendMessage?"+url.Values{"chat_id": {chat}, "text": {"<b>x"}, "parse_mode": {"HTML"}}.Encode(), nil)
			return r
		}, 400, "can't parse entities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.req().WithContext(ctxT(t)))
			if r.status != tc.status || !strings.Contains(r.Description, tc.contains) {
				t.Fatalf("got %d %q, want %d containing %q", r.status, r.Description, tc.status, tc.contains)
			}
		})
	}

	// A webhook makes getUpdates a conflict.
	mustOK(t, call(t, n, token, "setWebhook", map[string]any{"url": "http://127.0.0.1:1/hook"}), nil)
	if r := call(t, n, token, "getUpdates", nil); r.status != 409 {
		t.Fatalf("getUpdates with a webhook: %d %s", r.status, r.Description)
	}
	mustOK(t, call(t, n, token, "deleteWebhook", nil), nil)
	mustOK(t, call(t, n, token, "getUpdates", nil), nil)
}

// TestBotRateLimit: past its per-chat rate a bot gets 429 with
// retry_after.
func TestBotRateLimit(t *testing.T) {
	n := startBotNode(t, service.BotLimits{PerSecond: 1000, PerChatPerSecond: 0.001, PerChatBurst: 2})
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	send(t, alice, to(name), "hi")
	for i := range 2 {
		mustOK(t, call(t, n, token, "sendMessage", map[string]any{"chat_id": alice.user.id, "text": fmt.Sprint(i)}), nil)
	}
	r := call(t, n, token, "sendMessage", map[string]any{"chat_id": alice.user.id, "text": "too many"})
	if r.status != 429 || r.Parameters.RetryAfter < 1 || !strings.HasPrefix(r.Description, "Too Many Requests: retry after") {
		t.Fatalf("third message: %d %q retry_after=%d", r.status, r.Description, r.Parameters.RetryAfter)
	}
}

// TestBotGroupPrivacy: in a group a bot in privacy mode sees commands,
// mentions and replies to itself only; with privacy off it sees all.
// Groups have negative ids.
func TestBotGroupPrivacy(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	bob := signup(t, n, "bobby")
	name, token := newBot(t, alice)
	g, err := alice.CreateGroup(ctxT(t), "team", []string{bob.user.name, name})
	if err != nil {
		t.Fatal(err)
	}
	gid := -g.Id

	var chat struct {
		ID    int64  `json:"id"`
		Type  string `json:"type"`
		Title string `json:"title"`
	}
	mustOK(t, call(t, n, token, "getChat", map[string]any{"chat_id": gid}), &chat)
	if chat.ID != gid || chat.Type != "group" || chat.Title != "team" {
		t.Fatalf("getChat = %+v", chat)
	}
	var count int
	mustOK(t, call(t, n, token, "getChatMemberCount", map[string]any{"chat_id": gid}), &count)
	var member struct {
		Status string `json:"status"`
	}
	mustOK(t, call(t, n, token, "getChatMember", map[string]any{"chat_id": gid, "user_id": alice.user.id}), &member)
	if count != 3 || member.Status != "creator" {
		t.Fatalf("count %d, alice is %q", count, member.Status)
	}

	var mine struct {
		MessageID int64 `json:"message_id"`
	}
	mustOK(t, call(t, n, token, "sendMessage", map[string]any{"chat_id": gid, "text": "I am here"}), &mine)
	g1 := pb.Peer{ChatId: g.Id}
	send(t, bob, &g1, "just chatting")
	send(t, bob, &g1, "/help")
	send(t, bob, &g1, "hey @"+name+" look")
	if _, err := bob.Send(ctxT(t), &pb.SendRequest{Peer: &g1, Text: "a reply", ReplyTo: mine.MessageID}); err != nil {
		t.Fatal(err)
	}
	send(t, bob, &g1, "/other@someone_bot")
	send(t, bob, &g1, "/last")
	var seen []string
	offset := int64(0)
	for len(seen) < 4 {
		for _, u := range poll(t, n, token, offset) {
			offset = u.UpdateID + 1
			if u.Message.Chat.ID != gid {
				t.Fatalf("chat id %d, want %d", u.Message.Chat.ID, gid)
			}
			seen = append(seen, u.Message.Text)
		}
	}
	if strings.Join(seen, "|") != "/help|hey @"+name+" look|a reply|/last" {
		t.Fatalf("in privacy mode the bot saw %q", seen)
	}
	if _, err := alice.SetBotPrivacy(ctxT(t), name, false); err != nil {
		t.Fatal(err)
	}
	send(t, bob, &g1, "plain talk")
	if ups := poll(t, n, token, offset); ups[0].Message.Text != "plain talk" {
		t.Fatalf("with privacy off: %+v", ups[0].Message)
	}
	mustOK(t, call(t, n, token, "leaveChat", map[string]any{"chat_id": gid}), nil)
	if r := call(t, n, token, "sendMessage", map[string]any{"chat_id": gid, "text": "still here?"}); r.status != 403 {
		t.Fatalf("after leaving: %d %s", r.status, r.Description)
	}
}

// TestBotChannel: a bot that is a channel's admin receives its posts as
// channel_post (copied from the channel's own log when it reads) under
// the channel's -100… id, and posts to it by id or @name.
func TestBotChannel(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	chName := fmt.Sprintf("news%d", userSeq.Add(1))
	ch, err := alice.CreateChannel(ctxT(t), &pb.CreateChannelRequest{Username: chName, Title: "News"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SetRole(ctxT(t), ch.Id, name, true); err != nil {
		t.Fatal(err)
	}
	apiID := service.ChannelIDBase - ch.Id
	if !strings.HasPrefix(fmt.Sprint(apiID), "-100") {
		t.Fatalf("channel id %d", apiID)
	}
	// Posted before the bot ever read: it still gets it, from its join on.
	send(t, alice, &pb.Peer{ChatId: ch.Id}, "Edition 1")
	var ups []struct {
		UpdateID    int64 `json:"update_id"`
		ChannelPost *struct {
			MessageID  int64  `json:"message_id"`
			Text       string `json:"text"`
			SenderChat struct {
				ID int64 `json:"id"`
			} `json:"sender_chat"`
			Chat struct {
				ID       int64  `json:"id"`
				Type     string `json:"type"`
				Username string `json:"username"`
			} `json:"chat"`
		} `json:"channel_post"`
	}
	for range 10 {
		mustOK(t, call(t, n, token, "getUpdates", map[string]any{"timeout": 5}), &ups)
		if len(ups) > 0 {
			break
		}
	}
	if len(ups) != 1 || ups[0].ChannelPost == nil {
		t.Fatalf("updates = %+v", ups)
	}
	p := ups[0].ChannelPost
	if p.Text != "Edition 1" || p.Chat.ID != apiID || p.Chat.Type != "channel" || p.Chat.Username != chName || p.SenderChat.ID != apiID {
		t.Fatalf("channel_post = %+v", p)
	}
	mustOK(t, call(t, n, token, "getUpdates", map[string]any{"offset": ups[0].UpdateID + 1}), nil)
	for _, id := range []any{apiID, "@" + chName} {
		mustOK(t, call(t, n, token, "sendMessage", map[string]any{"chat_id": id, "text": "from the bot"}), nil)
	}
	hist, err := alice.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: ch.Id}})
	if err != nil || len(hist) != 3 || hist[2].Text != "from the bot" {
		t.Fatalf("history = %v, %v", hist, err)
	}
	// Its own posts do not come back to it.
	var rest []json.RawMessage
	mustOK(t, call(t, n, token, "getUpdates", nil), &rest)
	if len(rest) != 0 {
		t.Fatalf("the bot got its own posts: %s", rest)
	}
}

// TestBotWebhookRetries: updates are POSTed with the secret header; a
// failing webhook is retried with backoff and its error shown by
// getWebhookInfo; a method call in the answer is carried out.
func TestBotWebhookRetries(t *testing.T) {
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax, BotLimits: laxBots,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BotAPI: botapi.Options{WebhookBackoff: 10 * time.Millisecond, WebhookAllowPrivate: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)

	type hit struct {
		secret string
		body   []byte
	}
	hits := make(chan hit, 16)
	fails := 2
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- hit{r.Header.Get("X-Telegram-Bot-Api-Secret-Token"), body}
		if fails > 0 {
			fails--
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		var u struct {
			Message struct {
				Chat struct {
					ID int64 `json:"id"`
				} `json:"chat"`
			} `json:"message"`
		}
		json.Unmarshal(body, &u)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": "sendMessage", "chat_id": u.Message.Chat.ID, "text": "answered in the webhook's reply"})
	}))
	defer hook.Close()
	mustOK(t, call(t, n, token, "setWebhook", map[string]any{"url": hook.URL + "/h", "secret_token": "abc_123"}), nil)
	send(t, alice, to(name), "knock knock")
	var first []byte
	for i := range 3 {
		select {
		case h := <-hits:
			if h.secret != "abc_123" {
				t.Fatalf("secret header %q", h.secret)
			}
			if i == 0 {
				first = h.body
			} else if !bytes.Equal(h.body, first) {
				t.Fatalf("retry %d sent %s, first try %s", i, h.body, first)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("webhook try %d did not come", i+1)
		}
	}
	if !strings.Contains(string(first), "knock knock") {
		t.Fatalf("webhook body %s", first)
	}
	reply := next(t, alice, func(u *pb.Update) bool { return u.GetNewMessage().GetFrom() == name }).GetNewMessage()
	if reply.Text != "answered in the webhook's reply" {
		t.Fatalf("reply = %v", reply)
	}
	var info struct {
		URL              string `json:"url"`
		Pending          int    `json:"pending_update_count"`
		LastErrorMessage string `json:"last_error_message"`
	}
	// The update is confirmed right after the webhook's answer was acted
	// on, so alice may see the reply a moment before.
	for range 200 {
		mustOK(t, call(t, n, token, "getWebhookInfo", nil), &info)
		if info.Pending == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info.URL != hook.URL+"/h" || info.Pending != 0 || !strings.Contains(info.LastErrorMessage, "500") {
		t.Fatalf("webhook info = %+v", info)
	}
	select {
	case h := <-hits:
		t.Fatalf("a delivered update came again: %s", h.body)
	default:
	}
}

// TestBotPollConflict: a second waiting getUpdates of the same bot ends
// the one waiting with 409, as Telegram does when two instances of a bot
// run; a getUpdates that does not wait takes nobody's place.
func TestBotPollConflict(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	_, token := newBot(t, alice)
	pollsConflict(t, n, n, token)
}

// pollsConflict starts a long getUpdates on node a, then short ones on
// node b, and checks that the long one is ended with 409 by a newer one.
func pollsConflict(t *testing.T, a, b *server.Node, token string) {
	t.Helper()
	longPoll := func(n *server.Node, timeout int) chan apiResult {
		done := make(chan apiResult, 1)
		go func() {
			body := strings.NewReader(fmt.Sprintf(`{"timeout":%d}`, timeout))
			req, _ := http.NewRequest(http.MethodPost, n.URL()+"/bot"+token+"/getUpdates", body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- apiResult{}
				return
			}
			defer resp.Body.Close()
			var r apiResult
			json.NewDecoder(resp.Body).Decode(&r)
			r.status = resp.StatusCode
			done <- r
		}()
		return done
	}
	first := longPoll(a, 30)
	// Whichever of two waiting polls arrives second wins; keep starting
	// short ones until the long one has lost to one of them.
	for {
		mustOK(t, call(t, b, token, "getUpdates", map[string]any{"timeout": 0}), nil)
		second := longPoll(b, 1)
		select {
		case r := <-first:
			if r.status != 409 || !strings.HasPrefix(r.Description, "Conflict: terminated by other getUpdates request") {
				t.Fatalf("the replaced poll: %d %q", r.status, r.Description)
			}
			<-second
			return
		case <-second:
		}
	}
}
