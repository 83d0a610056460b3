package main

import (
	"strings"
	"testing"
)

// everydayLine is what history --json says of reactions, pins and edits.
type everydayLine struct {
	ID        int64            `json:"id"`
	Text      string           `json:"text"`
	Service   bool             `json:"service"`
	ReplyTo   int64            `json:"reply_to"`
	Entities  []map[string]any `json:"entities"`
	Reactions map[string]struct {
		Count int
		Mine  bool
	} `json:"reactions"`
	Pinned   bool `json:"pinned"`
	Edited   bool `json:"edited"`
	Mentions bool `json:"mentions_me"`
}

// TestCLIReactPinGroupLife: react toggles, pin and unpin, and a group's
// life in service messages, through the binary against a real server.
func TestCLIReactPinGroupLife(t *testing.T) {
	srv := startServer(t)
	alice, bobby, carol := srv.newDevice(t), srv.newDevice(t), srv.newDevice(t)
	alice.ok(t, "signup", "alice")
	bobby.ok(t, "signup", "bobby")
	carol.ok(t, "signup", "carol")
	g := strings.TrimSpace(alice.ok(t, "group", "create", "Trip", "@bobby"))
	alice.ok(t, "group", "add", g, "@carol")
	id := strings.TrimSpace(bobby.ok(t, "send", g, "hello @carol"))
	bobby.ok(t, "edit", g, id, "hello @carol!")

	// react toggles, and history --json carries counts and my own.
	if out := alice.ok(t, "react", g, id, "👍"); strings.TrimSpace(out) != "[👍 1*]" {
		t.Errorf("react = %q", out)
	}
	carol.ok(t, "react", g, id, "👍")
	carol.ok(t, "react", g, id, "🔥")
	carol.ok(t, "react", g, id, "🔥") // again: off
	alice.fails(t, "INVALID_ARGUMENT", "react", g, id, "🦄")
	alice.fails(t, "NOT_FOUND", "react", g, "999", "👍")

	// Only admins pin in a group; pinning posts a service message.
	bobby.fails(t, "PERMISSION_DENIED", "pin", g, id)
	alice.ok(t, "pin", g, id)
	if out := carol.ok(t, "pins", g); !strings.Contains(out, "hello @carol!") {
		t.Errorf("pins = %q", out)
	}

	alice.ok(t, "group", "title", g, "Trip 2027")
	carol.ok(t, "leave", g)
	alice.ok(t, "group", "remove", g, "@bobby")

	lines := jsonLines[everydayLine](t, alice.ok(t, "--json", "history", g))
	var msg *everydayLine
	var notes []string
	for i := range lines {
		if lines[i].Service {
			notes = append(notes, lines[i].Text)
		} else {
			msg = &lines[i]
		}
	}
	if msg == nil || msg.Reactions["👍"].Count != 2 || !msg.Reactions["👍"].Mine || len(msg.Reactions) != 1 || !msg.Pinned || !msg.Edited || msg.Entities == nil {
		t.Fatalf("history --json message = %+v", msg)
	}
	want := []string{"@alice added @carol", "@alice pinned “hello @carol!”", "@alice changed the title to “Trip 2027”", "@carol left", "@alice removed @bobby"}
	if strings.Join(notes, "|") != strings.Join(want, "|") {
		t.Fatalf("service messages:\n got %q\nwant %q", notes, want)
	}
	if out := alice.ok(t, "history", g); !strings.Contains(out, "(edited) [👍 2*] (pinned)") || !strings.Contains(out, "@carol left") {
		t.Errorf("history:\n%s", out)
	}

	// Forward with and without the author.
	alice.ok(t, "forward", g, id, "--to", "@bobby")
	alice.ok(t, "forward", g, id, "--to", "@bobby", "--hide-author")
	type fwdLine struct {
		Text string `json:"text"`
		From string `json:"forwarded_from"`
	}
	fw := jsonLines[fwdLine](t, bobby.ok(t, "--json", "history", "@alice"))
	if len(fw) != 2 || fw[0].From != "bobby" || fw[1].From != "" || fw[1].Text != "hello @carol!" {
		t.Fatalf("forwarded = %+v; want one naming bobby, one naming nobody", fw)
	}

	alice.ok(t, "unpin", g, id)
	if out := alice.ok(t, "pins", g); out != "" {
		t.Errorf("pins after unpin = %q", out)
	}
}
