package server_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// TestGrammY runs a bot written with grammY, the popular JavaScript Bot
// API library, on Node.js against a real server, in long-polling and in
// webhook mode (server/testdata/grammy/bot.js). Only its apiRoot differs
// from a Telegram bot.
func TestGrammY(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI for the grammY test: %v", tool, err)
			}
			t.Skipf("%s is not installed; the grammY test needs Node.js 20 and npm", tool)
		}
	}
	dir := "testdata/grammy"
	ci := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	ci.Dir = dir
	if out, err := ci.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	for _, mode := range []string{"poll", "webhook"} {
		t.Run(mode, func(t *testing.T) { grammyConversation(t, dir, mode) })
	}
}

func grammyConversation(t *testing.T, dir, mode string) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "bot.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TOKEN="+token, "API_ROOT="+n.URL(), "MODE="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	waitLine := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the grammY bot exited before printing %s", want)
				}
				t.Logf("bot: %s", l)
				if strings.HasPrefix(l, "ERROR") {
					t.Fatalf("the grammY bot failed: %s", l)
				}
				if l == want {
					return
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the grammY bot did not print %s", want)
			}
		}
	}
	waitLine("READY")

	fromBot := func(u *pb.Update) bool { return u.GetNewMessage().GetFrom() == name }
	send(t, alice, to(name), "/start")
	hi := next(t, alice, fromBot).GetNewMessage()
	if hi.Text != "Hi alice"+strings.TrimPrefix(alice.user.name, "alice")+" from grammY" || len(hi.Buttons) != 1 || hi.Buttons[0].Buttons[0].Data != "tap" {
		t.Fatalf("reply to /start = %v", hi)
	}
	send(t, alice, to(name), "ping")
	if echo := next(t, alice, fromBot).GetNewMessage(); echo.Text != "grammY "+mode+": ping" {
		t.Fatalf("echo = %v", echo)
	}
	qid, err := alice.Press(ctxT(t), hi.ChatId, hi.Id, "tap")
	if err != nil {
		t.Fatal(err)
	}
	waitLine("ANSWERED")
	for {
		select {
		case ev := <-alice.Events():
			if a := ev.CallbackAnswer; a != nil {
				if a.QueryId != qid || a.Text != "tapped in "+mode {
					t.Fatalf("answer = %v", a)
				}
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("alice got no answer")
		}
	}
}
