package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// TestTokenNotTakenFromURL: the server never reads a token from a URL, so
// no client can be tempted to put one there (where it would land in
// proxy logs, browser history and Referer headers). A socket opened with
// a valid token in its query string is not authenticated.
func TestTokenNotTakenFromURL(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(client.Options{Server: n.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := c.Signup(ctx, &pb.SignupRequest{Username: "urltoken", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"token", "access_token", "auth", "bearer"} {
		ws, _, err := websocket.Dial(ctx, "ws://"+n.Addr()+"/v1/ws?"+q+"="+res.Token, nil)
		if err != nil {
			t.Fatal(err)
		}
		params, _ := proto.Marshal(&pb.Empty{})
		frame, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 1, Method: "users.me", Params: params}}})
		if err := ws.Write(ctx, websocket.MessageBinary, frame); err != nil {
			t.Fatal(err)
		}
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var f pb.Frame
		if err := proto.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		r := f.GetResponse()
		if r == nil || r.Error == nil || r.Error.Kind != "UNAUTHENTICATED" {
			t.Fatalf("?%s=TOKEN: users.me answered %v, want UNAUTHENTICATED", q, r)
		}
		ws.Close(websocket.StatusNormalClosure, "")
	}
}
