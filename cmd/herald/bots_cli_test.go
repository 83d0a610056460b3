package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// startEchoBot runs an echo bot written with github.com/go-telegram/bot
// against the server until the test ends.
func startEchoBot(t *testing.T, srv *testServer, token string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bot.New(token,
		bot.WithServerURL(srv.url),
		bot.WithDefaultHandler(func(ctx context.Context, b *bot.Bot, u *models.Update) {
			if u.Message != nil {
				b.SendMessage(ctx, &bot.SendMessageParams{ChatID: u.Message.Chat.ID, Text: "echo: " + u.Message.Text})
			}
		}),
		bot.WithMessageTextHandler("start", bot.MatchTypeCommand, func(ctx context.Context, b *bot.Bot, u *models.Update) {
			b.SendMessage(ctx, &bot.SendMessageParams{
				ChatID: u.Message.Chat.ID, Text: "Welcome",
				ReplyMarkup: models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{
					{{Text: "Press me", CallbackData: "pressed"}, {Text: "Docs", URL: "https://example.org/"}},
				}},
			})
		}),
		bot.WithMessageTextHandler("format", bot.MatchTypeCommand, func(ctx context.Context, b *bot.Bot, u *models.Update) {
			b.SendMessage(ctx, &bot.SendMessageParams{
				ChatID: u.Message.Chat.ID, ParseMode: models.ParseModeHTML,
				Text: `<b>Bold</b> and <a href="https://example.org/docs">docs</a> &lt;i&gt;`,
			})
		}),
		bot.WithCallbackQueryDataHandler("pressed", bot.MatchTypeExact, func(ctx context.Context, b *bot.Bot, u *models.Update) {
			b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: u.CallbackQuery.ID, Text: "you pressed it"})
		}),
	)
	if err != nil {
		cancel()
		t.Fatalf("bot.New: %v", err)
	}
	done := make(chan struct{})
	go func() { b.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestCLIBots drives bots through the built herald and heraldd: create
// one, talk to it, press its button, rotate its token, delete it.
func TestCLIBots(t *testing.T) {
	srv := startServer(t)
	alice := srv.newDevice(t)
	alice.ok(t, "signup", "alice")

	token := strings.TrimSuffix(alice.ok(t, "bot", "create", "echo_bot", "--name", "Echo"), "\n")
	if !strings.Contains(token, ":") || strings.Contains(token, "\n") {
		t.Fatalf("bot create printed %q, want the token alone", token)
	}
	alice.fails(t, "INVALID_ARGUMENT", "bot", "create", "notabotname")
	startEchoBot(t, srv, token)

	listen := func(send ...string) message {
		t.Helper()
		base := srv.resumes(t)
		l := alice.listen(t, "--count", "1", "--timeout", "20s", "--json")
		srv.waitListeners(t, base, l)
		alice.ok(t, send...)
		r := l.wait(t)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("listen: %s", r)
		}
		return checkMessage(t, strings.TrimSuffix(r.stdout, "\n"))
	}
	welcome := listen("send", "@echo_bot", "/start")
	if welcome.From != "echo_bot" || welcome.Text != "Welcome" {
		t.Fatalf("reply to /start: %+v", welcome)
	}
	hist := alice.ok(t, "history", "@echo_bot", "--json")
	var last struct {
		Buttons [][]struct {
			Text string `json:"text"`
			Data string `json:"data"`
			URL  string `json:"url"`
		} `json:"buttons"`
	}
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if len(last.Buttons) != 1 || len(last.Buttons[0]) != 2 || last.Buttons[0][0].Data != "pressed" || last.Buttons[0][1].URL != "https://example.org/" {
		t.Fatalf("history --json buttons: %s", lines[len(lines)-1])
	}
	if plain := alice.ok(t, "history", "@echo_bot"); !strings.Contains(plain, "Welcome [Press me] [Docs]") {
		t.Fatalf("history shows %q", plain)
	}
	// A bot's formatting: entities as data beside the plain text with
	// --json; without, a link's address follows its text (and styles are
	// for terminals only, so none here).
	base := srv.resumes(t)
	l := alice.listen(t, "--count", "1", "--timeout", "20s", "--json")
	srv.waitListeners(t, base, l)
	alice.ok(t, "send", "@echo_bot", "/format")
	r := l.wait(t)
	var formatted struct {
		Text     string `json:"text"`
		Entities []struct {
			Type   string `json:"type"`
			Offset int    `json:"offset"`
			Length int    `json:"length"`
			URL    string `json:"url"`
		} `json:"entities"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &formatted); err != nil {
		t.Fatalf("listen printed %q: %v", r.stdout, err)
	}
	if e := formatted.Entities; formatted.Text != "Bold and docs <i>" || len(e) != 2 || e[0].Type != "bold" || e[0].Length != 4 ||
		e[1].Type != "text_link" || e[1].Offset != 9 || e[1].URL != "https://example.org/docs" {
		t.Errorf("a formatted message with --json: %+v", formatted)
	}
	if plain := alice.ok(t, "history", "@echo_bot"); !strings.Contains(plain, ": Bold and docs (https://example.org/docs) <i>\n") || strings.Contains(plain, "\x1b") {
		t.Errorf("a formatted message in history: %q", plain)
	}
	if echo := listen("send", "@echo_bot", "hello bot"); echo.Text != "echo: hello bot" {
		t.Fatalf("echo: %+v", echo)
	}
	id := strconv.FormatInt(welcome.ID, 10)
	if got := alice.ok(t, "press", "@echo_bot", id, "Press me"); got != "you pressed it\n" {
		t.Fatalf("press printed %q", got)
	}
	alice.fails(t, "NOT_FOUND", "press", "@echo_bot", id, "No such button")
	alice.fails(t, "INVALID_ARGUMENT", "press", "@echo_bot", id, "Docs")

	list := jsonLines[struct {
		Username string `json:"username"`
		Privacy  bool   `json:"privacy"`
	}](t, alice.ok(t, "bot", "list", "--json"))
	if len(list) != 1 || list[0].Username != "echo_bot" || !list[0].Privacy {
		t.Fatalf("bot list --json: %+v", list)
	}
	if r := alice.run(t, "bot", "token", "echo_bot"); r.code != 2 {
		t.Fatalf("bot token without --rotate: %s", r)
	}
	alice.ok(t, "bot", "privacy", "echo_bot", "off")
	fresh := strings.TrimSuffix(alice.ok(t, "bot", "token", "echo_bot", "--rotate"), "\n")
	if fresh == token {
		t.Fatal("rotation gave the same token")
	}
	for tok, want := range map[string]int{token: 401, fresh: 200} {
		resp, err := http.Get(srv.url + "/bot" + tok + "/getMe")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("getMe after rotation: %d, want %d", resp.StatusCode, want)
		}
	}
	alice.ok(t, "bot", "delete", "echo_bot")
	if out := alice.ok(t, "bot", "list"); out != "" {
		t.Fatalf("bot list after delete: %q", out)
	}
}
