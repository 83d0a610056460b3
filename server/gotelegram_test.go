package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// TestGoTelegramEchoBot runs an echo bot written with a real Telegram bot
// library, github.com/go-telegram/bot, against a real server: only its
// API root is changed. It long-polls, answers /start with an inline
// keyboard, echoes text, and answers the button press.
func TestGoTelegramEchoBot(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)

	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	answered := make(chan error, 1)
	b, err := bot.New(token,
		bot.WithServerURL(n.URL()),
		bot.WithDefaultHandler(func(ctx context.Context, b *bot.Bot, u *models.Update) {
			if u.Message != nil {
				b.SendMessage(ctx, &bot.SendMessageParams{ChatID: u.Message.Chat.ID, Text: "echo: " + u.Message.Text})
			}
		}),
		bot.WithMessageTextHandler("start", bot.MatchTypeCommand, func(ctx context.Context, b *bot.Bot, u *models.Update) {
			b.SendMessage(ctx, &bot.SendMessageParams{
				ChatID: u.Message.Chat.ID, Text: "Welcome, *" + bot.EscapeMarkdown(u.Message.From.FirstName) + "*\\!",
				ParseMode: models.ParseModeMarkdown,
				ReplyMarkup: models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{
					{{Text: "Press me", CallbackData: "pressed"}},
				}},
			})
		}),
		bot.WithCallbackQueryDataHandler("pressed", bot.MatchTypeExact, func(ctx context.Context, b *bot.Bot, u *models.Update) {
			_, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: u.CallbackQuery.ID, Text: "got it"})
			answered <- err
		}),
	)
	if err != nil {
		t.Fatalf("bot.New against Herald: %v", err)
	}
	done := make(chan struct{})
	go func() {
		b.Start(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	fromBot := func(u *pb.Update) bool { return u.GetNewMessage().GetFrom() == name }
	send(t, alice, to(name), "/start")
	welcome := next(t, alice, fromBot).GetNewMessage()
	if !strings.HasPrefix(welcome.Text, "Welcome, ") || !strings.HasSuffix(welcome.Text, "!") || len(welcome.Buttons) != 1 {
		t.Fatalf("welcome = %v", welcome)
	}
	send(t, alice, to(name), "hello there")
	if echo := next(t, alice, fromBot).GetNewMessage(); echo.Text != "echo: hello there" {
		t.Fatalf("echo = %v", echo)
	}

	qid, err := alice.Press(ctxT(t), welcome.ChatId, welcome.Id, welcome.Buttons[0].Buttons[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("answerCallbackQuery: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bot saw no callback query")
	}
	for {
		select {
		case ev := <-alice.Events():
			if a := ev.CallbackAnswer; a != nil {
				if a.QueryId != qid || a.Text != "got it" {
					t.Fatalf("answer = %v", a)
				}
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("alice got no answer")
		}
	}
}
