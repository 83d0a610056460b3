package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
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
	// A document that is not all one byte, so a shifted or truncated
	// download would show.
	doc := make([]byte, 300_000)
	for i := range doc {
		doc[i] = byte(i * 7 % 251)
	}
	fetched := make(chan []byte, 1)
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
		bot.WithMessageTextHandler("doc", bot.MatchTypeCommand, func(ctx context.Context, b *bot.Bot, u *models.Update) {
			m, err := b.SendDocument(ctx, &bot.SendDocumentParams{
				ChatID: u.Message.Chat.ID, Caption: "your report",
				Document: &models.InputFileUpload{Filename: "report.bin", Data: bytes.NewReader(doc)},
			})
			if err != nil || m.Document == nil {
				t.Errorf("sendDocument: %v %+v", err, m)
				return
			}
			// The bot fetches it back, as bots fetch what people send them.
			f, err := b.GetFile(ctx, &bot.GetFileParams{FileID: m.Document.FileID})
			if err != nil {
				t.Errorf("getFile: %v", err)
				return
			}
			resp, err := http.Get(b.FileDownloadLink(f))
			if err != nil {
				t.Errorf("download: %v", err)
				return
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			fetched <- got
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

	send(t, alice, to(name), "/doc")
	withDoc := next(t, alice, fromBot).GetNewMessage()
	if withDoc.Text != "your report" || withDoc.File == nil || withDoc.File.Name != "report.bin" || withDoc.File.Size != int64(len(doc)) {
		t.Fatalf("document message = %v", withDoc)
	}
	var got bytes.Buffer
	if _, _, err := alice.DownloadRange(ctxT(t), withDoc.File.Id, 0, &got, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), doc) {
		t.Fatalf("alice downloaded %d bytes that differ from the %d the bot sent", got.Len(), len(doc))
	}
	select {
	case back := <-fetched:
		if !bytes.Equal(back, doc) {
			t.Fatalf("the bot downloaded %d bytes that differ from what it sent", len(back))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bot did not download its document")
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
