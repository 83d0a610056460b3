package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"google.golang.org/protobuf/proto"
)

// nextGroupText waits for the message with text on d, skipping
// membership events and other messages; an error event fails the test.
func nextGroupText(t *testing.T, d *sdev, text string) *client.SecretMessage {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.s.Events():
			if ev.Err != nil {
				t.Fatalf("%s: %v", d.user.name, ev.Err)
			}
			if ev.Message != nil && ev.Message.Text == text {
				return ev.Message
			}
		case <-timeout:
			t.Fatalf("%s: no secret message %q within 20s", d.user.name, text)
		}
	}
}

// groupOf makes three users with two devices each, all receiving, and a
// secret group of them made by the first. With several urls (nodes), the
// first devices go to the first node and the second to the next.
func groupOf(t *testing.T, urls ...string) (string, [][2]*sdev) {
	t.Helper()
	var users [][2]*sdev
	for i, prefix := range []string{"alice", "bobby", "carol"} {
		c := newClient(t, urls[i%len(urls)], "", true, -1)
		name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
		res, err := c.Signup(ctxT(t), &pb.SignupRequest{Username: name, Password: password, DeviceName: "one"})
		if err != nil {
			t.Fatal(err)
		}
		u := user{name: name, id: res.User.Id}
		d1 := secretOn(t, &device{Client: c, user: u, token: res.Token}, nil, nil, true)
		c2 := newClient(t, urls[(i+1)%len(urls)], "", true, -1)
		res2, err := c2.Login(ctxT(t), &pb.LoginRequest{Username: name, Password: password, DeviceName: "two"})
		if err != nil {
			t.Fatal(err)
		}
		d2 := secretOn(t, &device{Client: c2, user: u, token: res2.Token}, nil, nil, true)
		users = append(users, [2]*sdev{d1, d2})
	}
	a := users[0][0]
	id, err := a.s.CreateGroup(ctxT(t), "the plan", []string{"@" + users[1][0].user.name, users[2][0].user.name})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !strings.HasPrefix(id, "sg-") {
		t.Fatalf("group id %q", id)
	}
	return id, users
}

func groupSend(t *testing.T, d *sdev, chat, text string, opts client.SecretSendOptions) *client.SecretMessage {
	t.Helper()
	m, err := d.s.Send(ctxT(t), chat, text, opts)
	if err != nil {
		t.Fatalf("%s: group send: %v", d.user.name, err)
	}
	return m
}

// A secret group of three users with two devices each: every other
// device decrypts what one sends, and the server never sees the text or
// the title: a marker appears nowhere under the data directory, in the
// logs, or on the wire between clients and the server.
func TestSecretGroupFanOut(t *testing.T) {
	const marker = "OKAPI-91c3-GROUP-MARKER"
	dir := t.TempDir()
	logs := &syncBuffer{}
	n, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax, Log: slogTo(logs)})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	rec := &recorder{}
	url := proxy(t, n, rec)
	chat, us := groupOf(t, url)
	all := []*sdev{us[0][0], us[0][1], us[1][0], us[1][1], us[2][0], us[2][1]}

	sent := groupSend(t, us[0][0], chat, "first "+marker, client.SecretSendOptions{})
	if sent.ChatID != chat || sent.GroupID == 0 {
		t.Fatalf("sent %+v", sent)
	}
	for _, d := range all[1:] {
		m := nextGroupText(t, d, "first "+marker)
		if m.ID != sent.ID || m.ChatID != chat || m.From != us[0][0].user.name {
			t.Errorf("%s got %+v", d.user.name, m)
		}
	}
	// Everyone can answer, from either device; the title reached every
	// device inside the ciphertext.
	for i, d := range []*sdev{us[1][1], us[2][0]} {
		text := fmt.Sprintf("reply %d %s", i, marker)
		groupSend(t, d, chat, text, client.SecretSendOptions{})
		for _, o := range all {
			if o != d {
				nextGroupText(t, o, text)
			}
		}
	}
	for _, d := range all {
		title, members, err := d.s.Group(ctxT(t), chat)
		if err != nil || title != "the plan" || len(members) != 3 {
			t.Errorf("%s: group %q %+v, %v", d.user.name, title, members, err)
		}
	}
	// A file, encrypted on the device.
	plain := bytes.Repeat([]byte(marker+" attached page\n"), 2000)
	fm := groupSend(t, us[2][1], chat, "file "+marker, client.SecretSendOptions{File: bytes.NewReader(plain), FileSize: int64(len(plain)), FileName: "plan.txt"})
	got := nextGroupText(t, us[0][0], "file "+marker)
	var buf bytes.Buffer
	if _, err := us[0][0].s.DownloadMessage(ctxT(t), chat, fm.ID, &buf); err != nil || !bytes.Equal(buf.Bytes(), plain) || got.File == nil {
		t.Fatalf("download: %v (%d bytes)", err, buf.Len())
	}
	// The self-destruct timer travels inside the ciphertext and starts
	// when the message is read.
	groupSend(t, us[0][1], chat, "timed "+marker, client.SecretSendOptions{TTL: time.Minute})
	if m := nextGroupText(t, us[1][0], "timed "+marker); m.TTL != time.Minute || !m.ExpiresAt.IsZero() {
		t.Errorf("the timed message arrived with TTL %s, expiring %v", m.TTL, m.ExpiresAt)
	}
	h, err := us[1][0].s.History(ctxT(t), chat)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range h {
		if m.Event == "" {
			texts = append(texts, m.Text)
		}
		if m.TTL > 0 && m.ExpiresAt.IsZero() {
			t.Errorf("read, but its timer did not start: %+v", m)
		}
	}
	if len(texts) != 5 {
		t.Errorf("bobby's history: %q", texts)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	files := 0
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		files++
		b, _ := os.ReadFile(p)
		for _, s := range []string{marker, "the plan"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%q is in %s", s, p)
			}
		}
		return nil
	})
	if files < 2 {
		t.Fatalf("found %d files under the data directory", files)
	}
	if strings.Contains(logs.b.String(), marker) {
		t.Error("the marker is in the server's logs")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, f := range rec.all {
		if bytes.Contains(f, []byte(marker)) || bytes.Contains(f, []byte("the plan")) {
			t.Fatalf("plaintext crossed the wire: %q", f[:min(len(f), 200)])
		}
	}
	if len(rec.all) < 50 {
		t.Fatalf("recorded only %d frames: the recording is broken", len(rec.all))
	}
}

var _ = herald.MaxSecretGroupMembers

// groupEnvelopes returns the secret group envelopes of group gid among
// recorded frames: every byte of them the server pushed.
func groupEnvelopes(rec *recorder, gid int64) []*pb.Envelope {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []*pb.Envelope
	for _, b := range rec.all {
		var f pb.Frame
		if proto.Unmarshal(b, &f) != nil {
			continue
		}
		if e := f.GetEnvelope(); e != nil && e.GroupId == gid && e.Type == int32(herald.EnvelopeSenderKey) {
			out = append(out, e)
		}
	}
	return out
}

// copyStore is a device's secret store as it stands: what a removed
// member keeps if it ignores being removed.
func copyStore(t *testing.T, st client.SecretStore) *client.MemoryStore {
	t.Helper()
	keys, err := st.Keys("")
	if err != nil {
		t.Fatal(err)
	}
	out := &client.MemoryStore{}
	for _, k := range keys {
		v, _, _ := st.Get(k)
		out.Put(k, v)
	}
	return out
}

// openAll feeds envelopes to a device built on st and returns the texts
// it could read.
func openAll(t *testing.T, d *sdev, st client.SecretStore, envs []*pb.Envelope) []string {
	t.Helper()
	// Not Init: the store's keys are used as they were kept.
	s := client.NewSecret(d.Client, client.SecretOptions{Store: st})
	var texts []string
	for _, e := range envs {
		ev, err := s.Open(ctxT(t), e)
		if err == nil && ev != nil && ev.Message != nil {
			texts = append(texts, ev.Message.Text)
		}
	}
	return texts
}

// Removing a member, and separately one of a member's devices, rotates
// every sender's key: the removed device, keeping its keys and given
// every group ciphertext the server pushed, reads what came before and
// nothing after. Every remaining device sees who removed whom.
func TestSecretGroupRemovalRotates(t *testing.T) {
	n := startNode(t, "")
	rec := &recorder{}
	url := proxy(t, n, rec)
	chat, us := groupOf(t, url)
	gid, _ := client.ParseGroupChatID(chat)
	a, b, c := us[0], us[1], us[2]
	groupSend(t, a[0], chat, "warm up", client.SecretSendOptions{})
	groupSend(t, b[0], chat, "warm up too", client.SecretSendOptions{})
	for _, d := range []*sdev{c[0], b[1]} {
		nextGroupText(t, d, "warm up")
		nextGroupText(t, d, "warm up too")
	}
	carolKept := copyStore(t, c[0].store)
	groupSend(t, a[0], chat, "before", client.SecretSendOptions{})
	nextGroupText(t, c[0], "before")
	nextGroupText(t, b[1], "before")

	// Only admins remove; bobby is not one.
	if err := b[0].s.GroupRemove(ctxT(t), chat, c[0].user.name); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("bobby removing carol: %v, want PERMISSION_DENIED", err)
	}
	if err := a[0].s.GroupRemove(ctxT(t), chat, c[0].user.name); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*sdev{b[0], b[1], a[1], c[1]} {
		m := nextEvent(t, d, "remove")
		if m.From != a[0].user.name || m.Text != "removed @"+c[0].user.name {
			t.Errorf("%s saw %+v", d.user.name, m)
		}
	}
	if _, err := c[1].s.Send(ctxT(t), chat, "still here?", client.SecretSendOptions{}); err == nil {
		t.Error("carol could still send to the group")
	}
	groupSend(t, a[0], chat, "after carol", client.SecretSendOptions{})
	groupSend(t, b[0], chat, "after carol from bobby", client.SecretSendOptions{})
	nextGroupText(t, b[1], "after carol")
	nextGroupText(t, a[1], "after carol from bobby")
	bobby2Kept := copyStore(t, b[1].store)
	groupSend(t, a[0], chat, "last before the logout", client.SecretSendOptions{})
	nextGroupText(t, b[0], "last before the logout")

	// Bobby's second device is logged out: the next messages rotate again.
	if err := b[1].Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	groupSend(t, a[0], chat, "after bobby's phone", client.SecretSendOptions{})
	nextGroupText(t, b[0], "after bobby's phone")
	nextGroupText(t, a[1], "after bobby's phone")

	envs := groupEnvelopes(rec, gid)
	got := openAll(t, c[0], carolKept, envs)
	if !slices.Contains(got, "before") {
		t.Fatalf("carol's kept keys read %q from %d envelopes: the test cannot tell", got, len(envs))
	}
	for _, s := range got {
		if strings.HasPrefix(s, "after") {
			t.Errorf("carol, removed, read %q", s)
		}
	}
	got = openAll(t, b[0], bobby2Kept, envs)
	if !slices.Contains(got, "last before the logout") {
		t.Fatalf("bobby's second device read %q before it was logged out", got)
	}
	if slices.Contains(got, "after bobby's phone") {
		t.Error("bobby's logged-out device read a message sent after")
	}
}

// nextEvent waits for a membership event of kind on d.
func nextEvent(t *testing.T, d *sdev, kind string) *client.SecretMessage {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.s.Events():
			if ev.Err != nil {
				t.Fatalf("%s: %v", d.user.name, ev.Err)
			}
			if ev.Message != nil && ev.Message.Event == kind {
				return ev.Message
			}
		case <-timeout:
			t.Fatalf("%s: no %s event within 20s", d.user.name, kind)
		}
	}
}

// A device refuses what it should: a message from someone the server
// made a member behind the admins' backs, a sender who would encrypt for
// them, and replays of every envelope it already opened. A sender key
// that arrives after the message it opens is waited for.
func TestSecretGroupForgeryReplayOrder(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	rec := &recorder{}
	url := proxy(t, n, rec)
	chat, us := groupOf(t, url)
	gid, _ := client.ParseGroupChatID(chat)
	a, b := us[0], us[1]
	groupSend(t, a[0], chat, "one", client.SecretSendOptions{})
	groupSend(t, b[0], chat, "two", client.SecretSendOptions{})
	nextGroupText(t, b[1], "one")
	nextGroupText(t, b[1], "two")

	// Replays: every group envelope pushed so far, opened again.
	h0, _ := b[1].s.Stored(-gid)
	for _, e := range groupEnvelopes(rec, gid) {
		if ev, err := b[1].s.Open(ctxT(t), e); (ev != nil && ev.Message != nil) || (err != nil && e.DeviceId == selfDevice(b[1])) {
			t.Errorf("a replayed envelope: %+v, %v", ev, err)
		}
	}
	if h1, _ := b[1].s.Stored(-gid); len(h1) != len(h0) {
		t.Errorf("replays changed the history: %d messages, then %d", len(h0), len(h1))
	}

	// Out of order: dave is added; his device is offline while alice
	// sends, then opens the group message before alice's sender key.
	dave := secretOn(t, signup(t, n, "daveo"), nil, nil, false)
	if err := a[0].s.GroupAdd(ctxT(t), chat, dave.user.name); err != nil {
		t.Fatal(err)
	}
	groupSend(t, a[0], chat, "welcome dave", client.SecretSendOptions{})
	var l pb.EnvelopeList
	if err := dave.Call(ctxT(t), "secret.fetch", &pb.FetchRequest{}, &l); err != nil {
		t.Fatal(err)
	}
	var pair []*pb.Envelope
	var group *pb.Envelope
	for _, e := range l.Envelopes {
		if e.Type == int32(herald.EnvelopeSenderKey) {
			group = e
		} else {
			pair = append(pair, e)
		}
	}
	if group == nil || len(pair) != 2 {
		t.Fatalf("dave's queue: %d pairwise, group %v", len(pair), group != nil)
	}
	if ev, err := dave.s.Open(ctxT(t), pair[0]); err != nil || ev == nil || ev.Message == nil || ev.Message.Event != "add" {
		t.Fatalf("dave opening the add: %+v, %v", ev, err)
	}
	if ev, err := dave.s.Open(ctxT(t), group); err != nil || ev != nil {
		t.Fatalf("the message before its key: %+v, %v; want it held", ev, err)
	}
	ev, err := dave.s.Open(ctxT(t), pair[1])
	if err != nil || ev == nil || ev.Message == nil || ev.Message.Text != "welcome dave" {
		t.Fatalf("the key after its message: %+v, %v; want the held message", ev, err)
	}

	// The server adds mallory to the group on its own.
	mallory := secretOn(t, signup(t, n, "mallory"), nil, nil, false)
	db, err := sql.Open("sqlite", filepath.Join(dir, "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO secret_group_members (group_id, user_id, admin) VALUES (?, ?, 1)`, gid, mallory.user.id); err != nil {
		t.Fatal(err)
	}
	var info pb.SecretGroupInfo
	if err := mallory.Call(ctxT(t), "secret.group.get", &pb.SecretGroupRequest{GroupId: gid}, &info); err != nil {
		t.Fatal(err)
	}
	req := &pb.SecretGroupSendRequest{GroupId: gid, Body: bytes.Repeat([]byte{7}, 300)}
	for _, m := range info.Members {
		var ids pb.IdentityList
		if err := mallory.Call(ctxT(t), "keys.identities", &pb.IdentitiesRequest{Username: m.Username}, &ids); err != nil {
			t.Fatal(err)
		}
		set := &pb.DeviceSet{UserId: m.UserId}
		for _, d := range ids.Devices {
			if d.DeviceId != selfDevice(mallory) {
				set.DeviceIds = append(set.DeviceIds, d.DeviceId)
			}
		}
		req.Devices = append(req.Devices, set)
	}
	if err := mallory.Call(ctxT(t), "secret.group.send", req, &pb.SecretSendResult{}); err != nil {
		t.Fatal(err)
	}
	if err := nextGroupErr(t, b[0]); !herald.IsKind(err, herald.PermissionDenied) || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("bobby, given mallory's message: %v", err)
	}
	// And nobody encrypts for her: alice's send stops.
	if _, err := a[0].s.Send(ctxT(t), chat, "not for mallory", client.SecretSendOptions{}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Errorf("alice sending with mallory on the server's list: %v, want PERMISSION_DENIED", err)
	}
}

func selfDevice(d *sdev) int64 {
	_, id := d.Self()
	return id
}

// nextGroupErr waits for the next error event on d, skipping messages.
func nextGroupErr(t *testing.T, d *sdev) error {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.s.Events():
			if ev.Err != nil {
				return ev.Err
			}
		case <-timeout:
			t.Fatalf("%s: no error event within 20s", d.user.name)
		}
	}
}

// Three users with two devices each, spread over two nodes that share a
// store and a NATS bus: one ciphertext reaches every other device, and a
// removal made through one node rotates keys for devices on both.
func TestSecretGroupTwoNodes(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	dir := t.TempDir()
	node := func() *server.Node {
		n, err := server.Open(server.Config{
			Listen: "127.0.0.1:0", DataDir: dir, Bus: ns.ClientURL(), PasswordCost: cheap, AbuseLimits: lax,
			Log: slogTo(io.Discard),
		})
		if err != nil {
			t.Fatal(err)
		}
		n.Serve()
		t.Cleanup(func() { n.Shutdown(context.Background()) })
		return n
	}
	a, b := node(), node()
	chat, us := groupOf(t, a.URL(), b.URL())
	all := []*sdev{us[0][0], us[0][1], us[1][0], us[1][1], us[2][0], us[2][1]}
	for i, d := range all {
		text := fmt.Sprintf("from device %d", i)
		groupSend(t, d, chat, text, client.SecretSendOptions{})
		for _, o := range all {
			if o != d {
				nextGroupText(t, o, text)
			}
		}
	}
	if err := us[0][1].s.GroupRemove(ctxT(t), chat, us[2][0].user.name); err != nil {
		t.Fatal(err)
	}
	groupSend(t, us[1][1], chat, "without carol", client.SecretSendOptions{})
	for _, d := range []*sdev{us[0][0], us[0][1], us[1][0]} {
		nextGroupText(t, d, "without carol")
	}
	h, err := us[2][1].s.History(ctxT(t), chat)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h {
		if m.Text == "without carol" {
			t.Error("carol's device read a message sent after her removal")
		}
	}
}

// A sender-key distribution that never arrives: the device holds the
// message it cannot read, asks the sender, and reads the sender's next
// messages, which come with the key again.
func TestSecretGroupLostKeyRecovers(t *testing.T) {
	n := startNode(t, "")
	chat, us := groupOf(t, n.URL())
	gid, _ := client.ParseGroupChatID(chat)
	a := us[0]
	dave := secretOn(t, signup(t, n, "davel"), nil, nil, false)
	if err := a[0].s.GroupAdd(ctxT(t), chat, dave.user.name); err != nil {
		t.Fatal(err)
	}
	groupSend(t, a[0], chat, "the key is lost", client.SecretSendOptions{})
	var l pb.EnvelopeList
	if err := dave.Call(ctxT(t), "secret.fetch", &pb.FetchRequest{}, &l); err != nil || len(l.Envelopes) != 3 {
		t.Fatalf("dave's queue: %d envelopes, %v", len(l.Envelopes), err)
	}
	var ids []int64
	for _, e := range l.Envelopes {
		ids = append(ids, e.Id)
	}
	if ev, err := dave.s.Open(ctxT(t), l.Envelopes[0]); err != nil || ev == nil || ev.Message.Event != "add" {
		t.Fatalf("the add: %+v, %v", ev, err)
	}
	// The key (the second envelope) is lost.
	if ev, err := dave.s.Open(ctxT(t), l.Envelopes[2]); err != nil || ev != nil {
		t.Fatalf("the message without its key: %+v, %v", ev, err)
	}
	if err := dave.Call(ctxT(t), "secret.ack", &pb.AckRequest{Ids: ids}, nil); err != nil {
		t.Fatal(err)
	}
	// Alice's device learns of the request as it receives; her next
	// message carries the key again.
	for i := 0; ; i++ {
		text := fmt.Sprintf("again %d", i)
		groupSend(t, a[0], chat, text, client.SecretSendOptions{})
		if err := dave.s.Sync(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		ms, _ := dave.s.Stored(-gid)
		if slices.ContainsFunc(ms, func(m *client.SecretMessage) bool { return m.Text == text }) {
			break
		}
		if i == 20 {
			t.Fatal("dave never got alice's key again")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A sender whose device has not yet read a removal learns of it from the
// server's list, reads the admin's word first, and gives the removed
// member no new key: carol, keeping her keys and every ciphertext, cannot
// read what bobby sent after.
func TestSecretGroupSenderBehindRemoval(t *testing.T) {
	n := startNode(t, "")
	rec := &recorder{}
	url := proxy(t, n, rec)
	mk := func(prefix string, receive bool) *sdev {
		c := newClient(t, url, "", true, -1)
		name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
		res, err := c.Signup(ctxT(t), &pb.SignupRequest{Username: name, Password: password, DeviceName: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return secretOn(t, &device{Client: c, user: user{name: name, id: res.User.Id}, token: res.Token}, nil, nil, receive)
	}
	a, b, c := mk("alice", true), mk("bobby", false), mk("carol", true)
	chat, err := a.s.CreateGroup(ctxT(t), "t", []string{b.user.name, c.user.name})
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := client.ParseGroupChatID(chat)
	groupSend(t, b, chat, "before", client.SecretSendOptions{})
	nextGroupText(t, c, "before")
	carolKept := copyStore(t, c.store)
	groupSend(t, b, chat, "still before", client.SecretSendOptions{})
	nextGroupText(t, c, "still before")
	if err := a.s.GroupRemove(ctxT(t), chat, c.user.name); err != nil {
		t.Fatal(err)
	}
	// Bobby's device has not read the removal when it sends.
	groupSend(t, b, chat, "after", client.SecretSendOptions{})
	nextGroupText(t, a, "after")
	got := openAll(t, c, carolKept, groupEnvelopes(rec, gid))
	if !slices.Contains(got, "still before") {
		t.Fatalf("carol's kept keys read %q: the test cannot tell", got)
	}
	if slices.Contains(got, "after") {
		t.Error("carol, removed, read bobby's message sent after")
	}
}
