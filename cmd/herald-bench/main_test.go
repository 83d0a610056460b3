package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

func noEnv(string) string { return "" }

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "usage:"},
		{"unknown command", []string{"uploads"}, `unknown command "uploads"`},
		{"not loopback", []string{"direct", "--server", "http://10.1.2.3:8080"}, "only targets loopback"},
		{"public name", []string{"sync", "--server", "http://example.com"}, "only targets loopback"},
		{"https", []string{"connect", "--server", "https://127.0.0.1:8443"}, "use http://"},
		{"bad flag", []string{"direct", "--nope"}, "flag provided but not defined"},
		{"positional", []string{"direct", "extra"}, `unexpected argument "extra"`},
		{"zero rate", []string{"direct", "--rate", "0"}, "--rate must be positive"},
		{"endless", []string{"direct", "--duration", "1000h"}, "--duration must be positive and at most"},
		{"zero pairs", []string{"direct", "--pairs", "0"}, "--pairs must be between"},
		{"group too big", []string{"group", "--members", "5000"}, "--members must be between 2 and 1000"},
		{"too many connections", []string{"connect", "--connections", "2000000"}, "--connections must be between"},
		{"no missed", []string{"sync", "--missed", "0"}, "--missed must be between"},
		{"no subscribers", []string{"channel", "--subscribers", "0"}, "--subscribers must be between"},
		{"no posts", []string{"channel", "--posts", "0"}, "--posts must be between"},
		{"bad size", []string{"files", "--size", "1GB"}, "not a size like"},
		{"huge file", []string{"files", "--size", "1TiB"}, "--size must be at most"},
		{"range beyond file", []string{"files", "--size", "1MiB", "--range-size", "2MiB"}, "--range-size must be"},
		{"negative ranges", []string{"files", "--ranges", "-1"}, "--ranges must be between"},
		{"max without time", []string{"direct", "--max", "--max-time", "0s"}, "--max-time must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), c.args, noEnv, &out, &errb)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Errorf("stderr %q does not mention %q", errb.String(), c.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q on a usage error", out.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"direct", "-h"}, noEnv, &out, &errb); code != 0 {
		t.Errorf("-h exits %d", code)
	}
	if !strings.Contains(errb.String(), "-pairs") {
		t.Errorf("direct -h does not list --pairs: %q", errb.String())
	}
}

// TestRunsAgainstServer runs the command itself against a real server:
// one JSON report and one table.
func TestRunsAgainstServer(t *testing.T) {
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := func(k string) string {
		if k == "HERALD_SERVER" {
			return n.URL()
		}
		return ""
	}

	var out, errb bytes.Buffer
	if code := run(ctx, []string{"direct", "--pairs", "1", "--rate", "20", "--duration", "500ms", "--json", "-q"}, env, &out, &errb); code != 0 {
		t.Fatalf("direct exited %d: %s", code, errb.String())
	}
	var res struct {
		Scenario  string `json:"scenario"`
		Scheduled int    `json:"scheduled"`
		Accepted  int    `json:"accepted"`
		Delivered int    `json:"delivered"`
		Latency   struct {
			Count int `json:"count"`
		} `json:"latency"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("--json printed %q: %v", out.String(), err)
	}
	if res.Scenario != "direct" || res.Scheduled != 10 || res.Accepted != 10 || res.Delivered != 10 || res.Latency.Count != 10 {
		t.Errorf("direct --json: %+v", res)
	}
	if errb.Len() != 0 {
		t.Errorf("-q still printed %q", errb.String())
	}

	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"sync", "--missed", "20", "--senders", "2"}, env, &out, &errb); code != 0 {
		t.Fatalf("sync exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "catch-up") || !strings.Contains(out.String(), "20 of 20") {
		t.Errorf("sync table:\n%s", out.String())
	}
	if errb.Len() == 0 {
		t.Error("no progress lines without -q")
	}

	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"files", "--size", "9MiB", "--ranges", "5", "--range-size", "64KiB", "--json", "-q"}, env, &out, &errb); code != 0 {
		t.Fatalf("files exited %d: %s", code, errb.String())
	}
	var fr struct {
		Size     int64 `json:"size_bytes"`
		Verified bool  `json:"download_verified"`
		RangesOK int   `json:"ranges_ok"`
	}
	if err := json.Unmarshal(out.Bytes(), &fr); err != nil {
		t.Fatalf("files --json printed %q: %v", out.String(), err)
	}
	if fr.Size != 9<<20 || !fr.Verified || fr.RangesOK != 5 {
		t.Errorf("files --json: %+v", fr)
	}
}
