package web

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEngineLeavesOutNetHTTP keeps the browser's download small: in the
// engine the SDK speaks through the browser's WebSocket and fetch, and a
// client/ import of net/http or coder/websocket in a file that also
// builds for js would link net/http, crypto/tls and crypto/x509 back in
// (about 6 MB of the module, 0.9 MB of every first visit's download).
func TestEngineLeavesOutNetHTTP(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list the engine's packages with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "./wasm")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["github.com/heraldim/herald/client"] {
		t.Fatalf("the engine does not build on the SDK any more? go list said:\n%s", out)
	}
	for _, p := range []string{"net/http", "crypto/tls", "crypto/x509", "github.com/coder/websocket"} {
		if deps[p] {
			t.Errorf("the wasm engine links %s; keep it behind a !js build tag (see docs/WEB.md, \"When the SDK changes\")", p)
		}
	}
}
