package server_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// Issue 22, item 14: chats.list answered 100,000 chats at once (2.7 MB in
// 2.75 s, and past the client's read limit the list never loaded again).
// The list now comes in pages of at most 500; a client from before paging,
// which sends Empty, gets the first of them.
func TestChatListIsPaged(t *testing.T) {
	n := startNode(t, "")
	// Nobody here reads the log: no connection follows it.
	alice := newClient(t, n.URL(), "", false, -1)
	res, err := alice.Signup(ctxT(t), &pb.SignupRequest{Username: fmt.Sprint("alice", userSeq.Add(1)), Password: password, DeviceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const chats = 503
	var newest atomic.Int64
	// Requests of one connection run in turn: four connections make it
	// quicker.
	devs := []*client.Client{alice}
	for range 3 {
		devs = append(devs, newClient(t, n.URL(), res.Token, false, -1))
	}
	var wg sync.WaitGroup
	for w, d := range devs {
		wg.Go(func() {
			for i := w; i < chats; i += len(devs) {
				g, err := d.CreateGroup(ctxT(t), fmt.Sprint("group ", i), nil)
				if err != nil {
					t.Errorf("group %d: %v", i, err)
					return
				}
				for cur := newest.Load(); g.Id > cur && !newest.CompareAndSwap(cur, g.Id); cur = newest.Load() {
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var old pb.DialogList
	if err := alice.Call(ctxT(t), "chats.list", &pb.Empty{}, &old); err != nil {
		t.Fatal(err)
	}
	if len(old.Dialogs) != 500 || old.Dialogs[0].Chat.Id != newest.Load() {
		t.Fatalf("a request without a limit got %d chats, the first %d; want the newest 500, from %d", len(old.Dialogs), old.Dialogs[0].Chat.Id, newest.Load())
	}

	// Pages of 200, each from the last one's cursor, list every chat once.
	seen := map[int64]bool{}
	var sizes []int
	req := &pb.ChatsRequest{Limit: 200}
	for {
		page, err := alice.ChatsPage(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Dialogs))
		for _, d := range page.Dialogs {
			if seen[d.Chat.Id] {
				t.Fatalf("chat %d listed twice", d.Chat.Id)
			}
			seen[d.Chat.Id] = true
		}
		if page.Next == nil {
			break
		}
		req = &pb.ChatsRequest{Limit: 200, Offset: page.Next}
	}
	if fmt.Sprint(sizes) != "[200 200 103]" || len(seen) != chats {
		t.Fatalf("pages of %v with %d chats; want [200 200 103] with %d", sizes, len(seen), chats)
	}
	// The SDK's Chats reads them all.
	all, err := alice.Chats(ctxT(t))
	if err != nil || len(all) != chats || all[0].Chat.Id != newest.Load() {
		t.Fatalf("Chats: %d, %v", len(all), err)
	}
}
