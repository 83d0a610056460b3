package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/transport"
	"github.com/heraldim/herald/transport/botapi"
)

// findMarker reports the files under dirs that contain marker.
func findMarker(t *testing.T, marker []byte, dirs ...string) []string {
	t.Helper()
	var found []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, marker) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// TestBotUploadNeverOnDiskInClear: a 2 MB file part of a bot's multipart
// upload never reaches the temporary directory or the data directory as
// plaintext, while the request is under way or after it (issue 22 item 6:
// the standard library spooled parts over 1 MiB to the temp dir).
func TestBotUploadNeverOnDiskInClear(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	data := t.TempDir()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: data, PasswordCost: cheap, AbuseLimits: lax, BotLimits: laxBots,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BotAPI: botapi.Options{WebhookAllowPrivate: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	send(t, alice, to(name), "/start")
	ups := poll(t, n, token, 0)
	chat := ups[0].Message.Chat.ID

	m := make([]byte, 16)
	rand.Read(m)
	marker := []byte("MARKER-" + hex.EncodeToString(m))
	file := bytes.Repeat(append(append([]byte{}, marker...), bytes.Repeat([]byte{'.'}, 1000)...), 2<<20/(len(marker)+1000))

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL()+"/bot"+token+"/sendDocument", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan apiResult, 1)
	go func() { done <- do(t, req) }()
	mw.WriteField("chat_id", fmt.Sprint(chat))
	part, _ := mw.CreateFormFile("document", "plans.txt")
	// The pipe hands the server each write before the next: once all
	// is written, all but the transport's buffers has been read.
	for i := 0; i < len(file); i += 64 << 10 {
		part.Write(file[i:min(i+64<<10, len(file))])
	}
	if f := findMarker(t, marker, tmp, data); len(f) > 0 {
		t.Errorf("mid-request, the upload's plaintext is on disk in %v", f)
	}
	mw.Close()
	pw.Close()
	r := <-done
	mustOK(t, r, nil)
	if f := findMarker(t, marker, tmp, data); len(f) > 0 {
		t.Errorf("after the request, the upload's plaintext is on disk in %v", f)
	}
}

// TestSlowBodyCutOff: a request body that trickles in below the minimum
// rate is cut off, on the Bot API and on the other handlers, rather than
// holding the request open for as long as the client likes.
func TestSlowBodyCutOff(t *testing.T) {
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax, BotLimits: laxBots,
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: transport.Limits{BodyWindow: 300 * time.Millisecond, BodyMinRate: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	alice := signup(t, n, "alice")
	_, token := newBot(t, alice)

	// A body that came whole lifts the deadline: a long poll longer than
	// the window waits its timeout, in JSON and in multipart (as
	// go-telegram/bot polls), rather than being ended by it.
	for _, enc := range []string{"json", "multipart"} {
		t.Run("poll "+enc, func(t *testing.T) {
			var body bytes.Buffer
			ct := "application/json"
			if enc == "json" {
				body.WriteString(`{"timeout":2}`)
			} else {
				mw := multipart.NewWriter(&body)
				mw.WriteField("timeout", "2")
				mw.Close()
				ct = mw.FormDataContentType()
			}
			req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL()+"/bot"+token+"/getUpdates", &body)
			req.Header.Set("Content-Type", ct)
			start := time.Now()
			mustOK(t, do(t, req), nil)
			if waited := time.Since(start); waited < 2*time.Second {
				t.Fatalf("the poll ended after %v, before its 2 s timeout", waited)
			}
		})
	}

	for _, path := range []string{"/bot" + token + "/sendMessage", "/v1/uploads/"} {
		t.Run(strings.Trim(path[:5], "/"), func(t *testing.T) {
			c, err := net.Dial("tcp", n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 100000\r\n\r\n{", path)
			// 10 bytes/s: finishing would take hours.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			// A generous bound that only a request held open fails.
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 400 || (strings.HasPrefix(path, "/bot") && resp.StatusCode != http.StatusRequestTimeout) {
					t.Fatalf("the trickling request was answered %s", resp.Status)
				}
				// Answered with an error: the connection must close too.
				_, err = io.Copy(io.Discard, c)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the trickling request was still open after 30 s")
			}
		})
	}
}

// TestBotUploadOnlyToFileMethods: only the methods that take a file
// accept a multipart body past 1 MiB; any other answers 413 before
// spooling anything, so a bot cannot make the server encrypt and store
// 50 MB per getMe.
func TestBotUploadOnlyToFileMethods(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	_, token := newBot(t, alice)
	for _, method := range []string{"getMe", "sendMessage", "setWebhook"} {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("chat_id", fmt.Sprint(alice.user.id))
		mw.WriteField("text", "hi")
		fw, _ := mw.CreateFormFile("document", "big.bin")
		fw.Write(make([]byte, 2<<20))
		mw.Close()
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL()+"/bot"+token+"/"+method, &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if r := do(t, req); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a 2 MB file: %d %q", method, r.status, r.Description)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Fatalf("files left in the temp directory: %v", left)
	}
}
