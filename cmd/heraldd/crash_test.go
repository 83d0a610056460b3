package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func heralddBinary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "heraldd-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "heraldd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is heraldd running as a child process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// startProc runs heraldd on dataDir, with extra flags, and waits for its
// "listening" log line.
func startProc(t *testing.T, dataDir, listen string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(heralddBinary(t), append([]string{"-listen", listen, "-data", dataDir, "-send-rate", "1000000"}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "heraldd listening" {
				addrCh <- line.Addr
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.addr = <-addrCh:
	case <-p.done:
		t.Fatalf("heraldd exited before listening: %v", p.err)
	case <-time.After(60 * time.Second):
		t.Fatal("heraldd did not start listening")
	}
	return p
}

func (p *proc) url() string { return "http://" + p.addr }

func connect(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: url, Token: token, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAcknowledgedMessagesSurviveKill9 sends from many goroutines, kills
// the server with SIGKILL mid-stream, restarts it on the same data, and
// checks that every message the server acknowledged is there: on SQLite,
// and on PostgreSQL (whose writer stores concurrent sends together).
func TestAcknowledgedMessagesSurviveKill9(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags func(t *testing.T) []string
	}{
		{"sqlite", func(*testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { return []string{"-db", pgtest.Schema(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) { survivesKill9(t, tc.flags(t)) })
	}
}

func survivesKill9(t *testing.T, flags []string) {
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0", flags...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	anon := connect(t, p.url(), "")
	bob, err := anon.Signup(ctx, &pb.SignupRequest{Username: "bobby", Password: "long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	const senders = 8
	var mu sync.Mutex
	acked := map[string]int64{} // text → id
	var wg sync.WaitGroup
	killed := make(chan struct{})
	clients := make([]*client.Client, senders)
	for i := range clients {
		clients[i] = connect(t, p.url(), "")
		if _, err := clients[i].Signup(ctx, &pb.SignupRequest{Username: fmt.Sprintf("sender%d", i), Password: "long enough password"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		name := fmt.Sprintf("sender%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				text := fmt.Sprintf("%s #%d", name, j)
				sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
				m, err := c.Send(sctx, &pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: text})
				scancel()
				if err != nil {
					select {
					case <-killed:
						return
					default:
						continue
					}
				}
				mu.Lock()
				acked[text] = m.Id
				n := len(acked)
				mu.Unlock()
				if n == 300 {
					p.cmd.Process.Signal(syscall.SIGKILL)
					close(killed)
				}
			}
		}()
	}
	wg.Wait()
	<-p.done
	anon.Close()

	p2 := startProc(t, dir, "127.0.0.1:0", flags...)
	bc := connect(t, p2.url(), bob.Token)
	stored := map[string]bool{}
	for i := range senders {
		hist, err := bc.History(ctx, &pb.HistoryRequest{Peer: &pb.Peer{Username: fmt.Sprintf("sender%d", i)}, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hist {
			stored[m.Text] = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 300 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}
	for text := range acked {
		if !stored[text] {
			t.Errorf("acknowledged message %q is missing after kill -9", text)
		}
	}
}

// TestGracefulShutdown checks SIGTERM stops the server cleanly and that
// what it acknowledged is there after a restart.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := connect(t, p.url(), "")
	res, err := c.Signup(ctx, &pb.SignupRequest{Username: "alice", Password: "long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, &pb.SendRequest{Peer: &pb.Peer{Username: "alice"}, Text: "note to self"}); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("heraldd exited with %v after SIGTERM", p.err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("heraldd did not stop after SIGTERM")
	}
	p2 := startProc(t, dir, "127.0.0.1:0")
	c2 := connect(t, p2.url(), res.Token)
	hist, err := c2.History(ctx, &pb.HistoryRequest{Peer: &pb.Peer{Username: "alice"}})
	if err != nil || len(hist) != 1 || hist[0].Text != "note to self" {
		t.Fatalf("after restart: %v, %v", hist, err)
	}
}
