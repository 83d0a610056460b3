package web_test

import (
	"context"
	"fmt"
	"github.com/heraldim/herald/internal/e2e"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// switchable is a reverse proxy in front of the server that a test can
// turn off, as a network that went away: the browser's requests then
// fail, and only the service worker's cache can serve the app.
type switchable struct {
	off   atomic.Bool
	proxy *httputil.ReverseProxy
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.off.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close() // a connection that dies, not an answer
				return
			}
		}
		http.Error(w, "offline", http.StatusBadGateway)
		return
	}
	s.proxy.ServeHTTP(w, r)
}

// TestBrowserPush runs e2e/push.mjs: the installable app, its service
// worker and the notifications it shows for pushes delivered through the
// DevTools protocol (ServiceWorker.deliverPushMessage), against a real
// server behind a proxy the scenario can switch off.
func TestBrowserPush(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	for _, need := range []string{chromium, "node", "npm"} {
		if _, err := exec.LookPath(need); err != nil {
			if ci {
				t.Fatalf("%s is missing (.ci/run installs it)", need)
			}
			t.Skipf("%s is missing; apt-get install -y chromium nodejs npm", need)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if err := e2e.Install("e2e"); err != nil {
		t.Fatal(err)
	}
	n := startNode(t)
	target, _ := url.Parse(n.URL())
	sw := &switchable{proxy: httputil.NewSingleHostReverseProxy(target)}
	// The app's origin must stay the same for the whole scenario (the
	// service worker and its cache belong to it): a fixed listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := &httptest.Server{Listener: ln, Config: &http.Server{Handler: sw}}
	front.Start()
	defer front.Close()
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw.off.Store(r.URL.Path == "/off")
	}))
	defer control.Close()

	// A person with a group whose notifications the scenario shows.
	c, err := client.New(client.Options{Server: n.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Signup(ctx, &pb.SignupRequest{Username: "pushy", Password: "correct horse battery", DeviceName: "seed"}); err != nil {
		t.Fatal(err)
	}
	g, err := c.CreateGroup(ctx, "Crag", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Send(ctx, &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, Text: "first pitch is wet"})
	if err != nil {
		t.Fatal(err)
	}

	artifacts, err := filepath.Abs(filepath.Join("..", "test-artifacts", "web"))
	if err != nil {
		t.Fatal(err)
	}
	node := exec.CommandContext(ctx, "node", "push.mjs")
	node.Dir = "e2e"
	node.Env = append(os.Environ(), "HERALD_URL="+front.URL, "HERALD_CONTROL="+control.URL, "HERALD_ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium, "HERALD_USER=pushy", fmt.Sprintf("HERALD_CHAT=%d", g.Id), fmt.Sprintf("HERALD_SEQ=%d", m.Id))
	out, err := node.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("browser push scenarios failed: %v", err)
	}
}
