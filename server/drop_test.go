package server_test

import (
	"fmt"
	"testing"
)

// TestDropCatchesUp: a connection abandoned with Drop (what the web client
// does when the browser reports the network gone) is replaced, and what
// was sent meanwhile arrives once, in order, by push or by sync.
func TestDropCatchesUp(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	bobby := signup(t, n, "bobby")
	send(t, alice, to(bobby.user.name), "before")
	if m := nextMessage(t, bobby); m.Text != "before" {
		t.Fatalf("got %q", m.Text)
	}
	for round := range 3 {
		bobby.Drop()
		var want []string
		for i := range 3 {
			text := fmt.Sprintf("round %d message %d", round, i)
			send(t, alice, to(bobby.user.name), text)
			want = append(want, text)
		}
		for _, w := range want {
			if m := nextMessage(t, bobby); m.Text != w {
				t.Fatalf("after drop %d: got %q, want %q", round, m.Text, w)
			}
		}
	}
	send(t, alice, to(bobby.user.name), "after")
	if m := nextMessage(t, bobby); m.Text != "after" {
		t.Fatalf("a duplicate or a gap: got %q, want %q", m.Text, "after")
	}
}
