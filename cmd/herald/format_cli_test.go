package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIFormats: sizes, counts and service messages read the same
// everywhere the CLI prints them (the format package's words).
func TestCLIFormats(t *testing.T) {
	srv := startServer(t)
	alice, bobby := srv.newDevice(t), srv.newDevice(t)
	alice.ok(t, "signup", "alice")
	bobby.ok(t, "signup", "bobby")

	// One subscriber, one view: singular nouns.
	alice.ok(t, "channel", "create", "dailynews", "--title", "Daily News")
	if out := alice.ok(t, "channel", "info", "@dailynews"); !strings.Contains(out, "1 subscriber,") {
		t.Errorf("channel info with one subscriber: %q", out)
	}
	alice.ok(t, "send", "@dailynews", "Edition 1")
	if out := alice.ok(t, "history", "@dailynews"); !strings.Contains(out, "(1 view)") {
		t.Errorf("a post with one view: %q", out)
	}
	bobby.ok(t, "join", "@dailynews")
	bobby.ok(t, "history", "@dailynews")
	if out := alice.ok(t, "history", "@dailynews"); !strings.Contains(out, "(2 views)") {
		t.Errorf("a post with two views: %q", out)
	}

	// A service message names who did it once.
	alice.ok(t, "send", "@bobby", "hi")
	alice.ok(t, "autodelete", "@bobby", "1d")
	for _, out := range []string{bobby.ok(t, "history", "@alice"), bobby.ok(t, "chats")} {
		if !strings.Contains(out, "@alice set messages to auto-delete") || strings.Contains(out, "@alice: @alice") {
			t.Errorf("a service message prints as:\n%s", out)
		}
	}

	// The same file's size reads the same in a chat and a secret chat.
	path := filepath.Join(t.TempDir(), "report.bin")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 54478), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.ok(t, "send", "--file", path, "@bobby")
	if out := bobby.ok(t, "history", "@alice"); !strings.Contains(out, "report.bin, 53.2 KiB") {
		t.Errorf("a 54478-byte file in history: %q", out)
	}
	alice.ok(t, "secret", "start", "@bobby")
	alice.ok(t, "secret", "send", "@bobby", "--file", path)
	if out := alice.ok(t, "secret", "history", "@bobby"); !strings.Contains(out, "report.bin, 53.2 KiB") {
		t.Errorf("a 54478-byte file in secret history: %q", out)
	}
}
