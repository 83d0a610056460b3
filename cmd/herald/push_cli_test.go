package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/push/pushtest"
)

// TestCLIPush: herald push add registers a UnifiedPush-style endpoint
// with keys the CLI makes and keeps in its home; a message to the user
// arrives there encrypted to those keys (the test push service decrypts
// it with the kept private key and checks the VAPID signature); push list
// shows it under --json and push remove deletes it. A server without
// -push-allow-private refuses a loopback endpoint.
func TestCLIPush(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	srv := startServer(t, "-push-allow-private")
	alice, bobby := srv.newDevice(t), srv.newDevice(t)
	alice.ok(t, "signup", "alice")
	bobby.ok(t, "signup", "bobby")

	endpoint := ps.URL() + "/push/bobby-cli"
	out := bobby.ok(t, "push", "add", endpoint)
	if !strings.Contains(out, endpoint) {
		t.Errorf("push add printed %q", out)
	}
	b, err := os.ReadFile(filepath.Join(bobby.home, "push-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(bobby.home, "push-keys.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("push-keys.json mode: %v, %v", fi.Mode(), err)
	}
	var keys map[string]PushKey
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	k, ok := keys[endpoint]
	if !ok {
		t.Fatalf("push-keys.json has no key for %s: %s", endpoint, b)
	}
	if err := ps.AddKeys(endpoint, k.Private, k.Auth); err != nil {
		t.Fatal(err)
	}

	type line struct {
		Endpoint string `json:"endpoint"`
	}
	if ls := jsonLines[line](t, bobby.ok(t, "push", "list", "--json")); len(ls) != 1 || ls[0].Endpoint != endpoint {
		t.Errorf("push list --json = %+v", ls)
	}

	alice.ok(t, "send", "@bobby", "ping over unified push")
	if !ps.Wait(20*time.Second, func(got []pushtest.Push) bool { return len(got) > 0 }) {
		t.Fatalf("no push arrived; refused as malformed: %v", ps.Bad())
	}
	var pl struct {
		Kind, Title, Body string
	}
	if err := ps.Got()[0].Decode(&pl); err != nil {
		t.Fatal(err)
	}
	if pl.Kind != "message" || pl.Title != "alice" || pl.Body != "ping over unified push" {
		t.Errorf("decrypted payload = %+v (%s)", pl, ps.Got()[0].Payload)
	}

	bobby.ok(t, "push", "remove", endpoint)
	if out := bobby.ok(t, "push", "list", "--json"); strings.TrimSpace(out) != "" {
		t.Errorf("push list after remove = %q", out)
	}
	bobby.fails(t, "NOT_FOUND", "push", "remove", endpoint)

	strict := startServer(t)
	carol := strict.newDevice(t)
	carol.ok(t, "signup", "carol")
	carol.fails(t, "INVALID_ARGUMENT", "push", "add", ps.URL()+"/push/carol")
}
