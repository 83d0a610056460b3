package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/internal/e2e"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// cheap keeps Argon2id fast in tests; production uses the default cost.
var cheap = service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}

// lax lifts the abuse limits: the browser tests sign up several people
// from one address and seed history in a burst.
var lax = service.Limits{
	SignupsPerHourPerAddr: 1 << 30, DirectPerSecond: 1 << 30, GroupPerSecond: 1 << 30, ChannelPerSecond: 1 << 30,
	NewAccountChatsPerDay: 1 << 30, JoinsPerMinutePerChat: 1 << 30,
	CreatesPerHour: 1 << 30, MaxOwnedChats: 1 << 30, ReportsPerHour: 1 << 30, MemberChangesPerMinute: 1 << 30,
}

// startNode starts a real heraldd node on a free loopback port.
func startNode(t *testing.T) *server.Node {
	t.Helper()
	return startNodeIn(t, t.TempDir())
}

// startNodeIn is startNode with its data directory in dir, for a test
// that looks through what the server stored.
func startNodeIn(t *testing.T, dir string) *server.Node {
	t.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// makeBot signs up a bot's owner over the protocol and creates a bot, for
// the browser scenario in which a person presses a bot's button.
func makeBot(t *testing.T, ctx context.Context, url string) *pb.Bot {
	t.Helper()
	c, err := client.New(client.Options{Server: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Signup(ctx, &pb.SignupRequest{Username: "botowner", Password: "correct horse battery", DeviceName: "test"}); err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateBot(ctx, "pressbot", "Press")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// The default transport would ask for gzip itself and hide
	// Content-Encoding; these tests look at the wire.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// TestSecurityHeaders checks that every response of the web client, found
// or not, carries the policy, and that the policy is the strict one.
func TestSecurityHeaders(t *testing.T) {
	n := startNode(t)
	for _, path := range []string{"/", "/app.js", "/style.css", "/wasm_exec.js", "/herald.wasm", "/icon.svg", "/nope", "/v1/nope"} {
		res := get(t, n.URL()+path, map[string]string{"Accept-Encoding": "gzip"})
		want := http.StatusOK
		if strings.Contains(path, "nope") {
			want = http.StatusNotFound
		}
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{
			"default-src 'none'", "script-src 'self' 'wasm-unsafe-eval';", "style-src 'self';",
			"connect-src 'self' ws://" + n.Addr() + " wss://" + n.Addr() + ";", "frame-ancestors 'none'", "base-uri 'none'",
		} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "'unsafe-eval'") {
			t.Errorf("GET %s: the policy allows inline or eval'd script: %q", path, csp)
		}
		// Calls need the camera and microphone, for this origin only.
		pp := h.Get("Permissions-Policy")
		for _, d := range []string{"camera=(self)", "microphone=(self)", "display-capture=(self)", "geolocation=()"} {
			if !strings.Contains(pp, d) {
				t.Errorf("GET %s: Permissions-Policy %q lacks %q", path, pp, d)
			}
		}
		if strings.Contains(pp, "*") {
			t.Errorf("GET %s: Permissions-Policy %q lets other origins in", path, pp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if h.Get(k) != v {
				t.Errorf("GET %s: %s = %q, want %q", path, k, h.Get(k), v)
			}
		}
	}
	// The API's own endpoints are not the web client's business.
	if res := get(t, n.URL()+"/healthz", nil); res.StatusCode != 200 {
		t.Errorf("/healthz: %d", res.StatusCode)
	}
}

// TestPageHasNoInlineScript holds the page to what the policy enforces,
// so a change that would be blocked in the browser fails here first.
func TestPageHasNoInlineScript(t *testing.T) {
	n := startNode(t)
	body, _ := io.ReadAll(get(t, n.URL()+"/", nil).Body)
	page := string(body)
	for _, bad := range []string{"<script>", " onclick=", " onload=", " onsubmit=", "javascript:", "style=\""} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q, which the Content-Security-Policy blocks", bad)
		}
	}
	if !strings.Contains(page, `<script src="wasm_exec.js"`) || !strings.Contains(page, `<script type="module" src="app.js">`) {
		t.Error("the page does not load its scripts from files")
	}
}

// TestWasmServedCompressed checks the wasm is sent with Brotli or gzip to
// browsers that accept them, as-is to clients that do not, with the type
// that WebAssembly.instantiateStreaming requires, revalidated by ETag, and
// under a content-addressed path that may be cached for good.
func TestWasmServedCompressed(t *testing.T) {
	n := startNode(t)
	res := get(t, n.URL()+"/herald.wasm", map[string]string{"Accept-Encoding": "gzip"})
	if ce, ct := res.Header.Get("Content-Encoding"), res.Header.Get("Content-Type"); ce != "gzip" || ct != "application/wasm" {
		t.Fatalf("Content-Encoding %q, Content-Type %q", ce, ct)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(unzipped, []byte("\x00asm")) {
		t.Fatal("the gzipped body is not a wasm module")
	}
	plain := get(t, n.URL()+"/herald.wasm", nil)
	if plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("sent %q to a client that did not ask", plain.Header.Get("Content-Encoding"))
	}
	raw, _ := io.ReadAll(plain.Body)
	if !bytes.Equal(raw, unzipped) {
		t.Fatal("the identity and gzip bodies differ")
	}
	if none := get(t, n.URL()+"/herald.wasm", map[string]string{"Accept-Encoding": "gzip;q=0"}); none.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip;q=0 still got gzip")
	}
	etag := res.Header.Get("ETag")
	again := get(t, n.URL()+"/herald.wasm", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag})
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation with %s: %d, want 304", etag, again.StatusCode)
	}

	// Brotli, where the browser offers it (every current one does).
	br := get(t, n.URL()+"/herald.wasm", map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"})
	if ce := br.Header.Get("Content-Encoding"); ce != "br" {
		t.Fatalf("a browser offering br got Content-Encoding %q", ce)
	}
	brBody, err := io.ReadAll(br.Body)
	if err != nil {
		t.Fatal(err)
	}
	unbr, err := io.ReadAll(brotli.NewReader(bytes.NewReader(brBody)))
	if err != nil || !bytes.Equal(unbr, raw) {
		t.Fatalf("the Brotli body does not decode to the module (%v)", err)
	}
	if n, _ := strconv.Atoi(br.Header.Get("Content-Length")); n <= 0 || n >= len(unzipped)/5 {
		t.Errorf("Brotli body %d bytes for a %d-byte module", n, len(raw))
	}
	if none := get(t, n.URL()+"/herald.wasm", map[string]string{"Accept-Encoding": "br;q=0, gzip"}); none.Header.Get("Content-Encoding") != "gzip" {
		t.Fatal("br;q=0 still got br")
	}

	// The page names the engine by its content; that path is immutable,
	// and the plain path keeps being revalidated.
	page, _ := io.ReadAll(get(t, n.URL()+"/", nil).Body)
	m := regexp.MustCompile(`<link rel="preload" href="(herald\.[A-Za-z0-9_-]+\.wasm)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("the page does not preload a content-addressed engine:\n%s", page)
	}
	hashed := get(t, n.URL()+"/"+string(m[1]), map[string]string{"Accept-Encoding": "br"})
	if cc := hashed.Header.Get("Cache-Control"); hashed.StatusCode != 200 || !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
		t.Fatalf("%s: %d, Cache-Control %q", m[1], hashed.StatusCode, cc)
	}
	if hb, _ := io.ReadAll(hashed.Body); !bytes.Equal(hb, brBody) {
		t.Fatalf("%s is not the engine", m[1])
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("/herald.wasm Cache-Control %q, want no-cache", cc)
	}
	t.Logf("herald.wasm: %d bytes, %s gzipped, %s with Brotli", len(raw), res.Header.Get("Content-Length"), br.Header.Get("Content-Length"))
}

// TestWasmIsCurrent rebuilds the wasm and fails if the committed one
// differs: the web client must be rebuilt (go generate ./web) whenever the
// SDK or the bridge changes. The build is reproducible, so the comparison
// is byte for byte.
func TestWasmIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm (about half a minute)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./internal/genwasm", "-check")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// TestBrowser runs the end-to-end scenarios of e2e/test.mjs: Debian's
// Chromium driven by playwright-core against this test's real server.
// Without node or chromium it skips, except under CI=true, where it fails.
// needBrowser returns the Chromium to drive, once web/e2e's packages are
// installed; without Chromium or Node the test skips, or fails under CI.
func needBrowser(t *testing.T, ctx context.Context) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	missing := func(what string) {
		if ci {
			t.Fatalf("%s is missing (.ci/run installs it)", what)
		}
		t.Skipf("%s is missing; apt-get install -y chromium nodejs npm", what)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("chromium")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(tool)
		}
	}
	if err := e2e.Install("e2e"); err != nil {
		t.Fatal(err)
	}
	return chromium
}

func TestBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	chromium := needBrowser(t, ctx)
	// The scenarios search the data directory for markers in secret
	// messages and files: the server must have stored ciphertext only.
	data := t.TempDir()
	n := startNodeIn(t, data)
	artifacts, err := filepath.Abs(filepath.Join("..", "test-artifacts", "web"))
	if err != nil {
		t.Fatal(err)
	}
	bot := makeBot(t, ctx, n.URL())
	node := exec.CommandContext(ctx, "node", "test.mjs")
	node.Dir = "e2e"
	node.Env = append(os.Environ(), "HERALD_URL="+n.URL(), "HERALD_ARTIFACTS="+artifacts, "CHROMIUM="+chromium,
		"HERALD_BOT_TOKEN="+bot.Token, "HERALD_BOT="+bot.User.Username, "HERALD_DATA="+data)
	out, err := node.CombinedOutput()
	t.Logf("screenshots in %s\n%s", artifacts, out)
	if err != nil {
		t.Fatalf("browser scenarios failed: %v", err)
	}
}

// TestBrowserCalls runs web/e2e/calls.mjs: a video call between two
// Chromium pages with fake camera and microphone, over WebRTC on
// loopback, signalled through a real heraldd.
func TestBrowserCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	chromium := needBrowser(t, ctx)
	// With the relay on loopback, allowed to reach loopback peers.
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax,
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Media: server.Media{UDP: "127.0.0.1:0", AllowPrivate: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	artifacts, err := filepath.Abs(filepath.Join("..", "test-artifacts", "web"))
	if err != nil {
		t.Fatal(err)
	}
	node := exec.CommandContext(ctx, "node", "calls.mjs")
	node.Dir = "e2e"
	node.Env = append(os.Environ(), "HERALD_URL="+n.URL(), "CHROMIUM="+chromium, "HERALD_ARTIFACTS="+artifacts)
	out, err := node.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("call scenarios failed: %v", err)
	}
}

// TestServiceWorkerKeepsShell: the service worker must keep every script
// and style of the page, or the app opened offline fails on the one it
// forgot.
func TestServiceWorkerKeepsShell(t *testing.T) {
	sw, err := os.ReadFile("static/sw.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)const FILES = \[(.*?)\];`).FindSubmatch(sw)
	if m == nil {
		t.Fatal("sw.js has no FILES list")
	}
	kept := map[string]bool{}
	for _, f := range regexp.MustCompile(`'/([^']*)'`).FindAllSubmatch(m[1], -1) {
		kept[string(f[1])] = true
	}
	entries, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if (strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".css")) && name != "sw.js" && !kept[name] {
			t.Errorf("sw.js does not keep /%s: the app opened offline would fail to load it", name)
		}
	}
}
