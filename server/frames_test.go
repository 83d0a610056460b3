package server_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// rawConn is a WebSocket that speaks frames by hand, to send what no
// well-behaved client would.
type rawConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, url string) *rawConn {
	ws, _, err := websocket.Dial(ctxT(t), strings.Replace(url, "http://", "ws://", 1)+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &rawConn{t: t, ws: ws}
}

func (r *rawConn) write(typ websocket.MessageType, b []byte) error {
	return r.ws.Write(ctxT(r.t), typ, b)
}

func (r *rawConn) request(id uint64, method string, params []byte) {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: id, Method: method, Params: params}}})
	if err := r.write(websocket.MessageBinary, b); err != nil {
		r.t.Fatal(err)
	}
}

// response reads frames until a response arrives.
func (r *rawConn) response() *pb.Response {
	r.t.Helper()
	for {
		_, b, err := r.ws.Read(ctxT(r.t))
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		var f pb.Frame
		if err := proto.Unmarshal(b, &f); err != nil {
			r.t.Fatalf("server sent a bad frame: %v", err)
		}
		if resp := f.GetResponse(); resp != nil {
			return resp
		}
	}
}

func marshal(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return b
}

func TestMalformedFramesGetErrorsAndConnectionSurvives(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	r := dialRaw(t, n.URL())

	// Before authenticating, methods that need it are refused.
	r.request(1, "messages.send", marshal(&pb.SendRequest{Peer: to(bobby.user.name), Text: "x"}))
	if e := r.response().Error; e.GetKind() != "UNAUTHENTICATED" {
		t.Fatalf("unauthenticated send: %v", e)
	}
	r.request(2, "auth.resume", marshal(&pb.AuthRequest{Token: alice.token}))
	if resp := r.response(); resp.Error != nil || resp.Id != 2 {
		t.Fatalf("resume: %v", resp)
	}

	// Text with invalid UTF-8, built by hand because the encoder refuses it.
	var bad []byte
	bad = protowire.AppendTag(bad, 1, protowire.BytesType)
	bad = protowire.AppendBytes(bad, marshal(to(bobby.user.name)))
	bad = protowire.AppendTag(bad, 2, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte("caf\xe9 \xff"))

	cases := []struct {
		name string
		send func()
		kind string
	}{
		{"garbage bytes", func() { r.write(websocket.MessageBinary, []byte{0xff, 0x13, 0x37}) }, "INVALID_ARGUMENT"},
		{"text frame", func() { r.write(websocket.MessageText, []byte(`{"method":"messages.send"}`)) }, "INVALID_ARGUMENT"},
		{"unknown method", func() { r.request(3, "no.such.method", nil) }, "NOT_FOUND"},
		{"bad params", func() { r.request(4, "messages.send", []byte{0x0a, 0xff}) }, "INVALID_ARGUMENT"},
		{"bad UTF-8", func() { r.request(5, "messages.send", bad) }, "INVALID_ARGUMENT"},
		{"response frame from a client", func() {
			r.write(websocket.MessageBinary, marshal(&pb.Frame{Kind: &pb.Frame_Response{Response: &pb.Response{Id: 9}}}))
		}, "INVALID_ARGUMENT"},
	}
	for _, c := range cases {
		c.send()
		resp := r.response()
		if resp.Error.GetKind() != c.kind || resp.Error.GetMessage() == "" || len(resp.Result) != 0 {
			t.Errorf("%s: got %v, want %s with a sentence", c.name, resp, c.kind)
		}
	}
	// The same connection still works.
	r.request(6, "messages.send", marshal(&pb.SendRequest{Peer: to(bobby.user.name), Text: "still here"}))
	if resp := r.response(); resp.Error != nil {
		t.Fatalf("send after errors: %v", resp.Error)
	}
	if m := nextMessage(t, bobby); m.Text != "still here" {
		t.Fatalf("bobby got %q", m.Text)
	}
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	r := dialRaw(t, n.URL())
	r.request(1, "auth.resume", marshal(&pb.AuthRequest{Token: alice.token}))
	r.response()
	huge := marshal(&pb.SendRequest{Peer: to(bobby.user.name), Text: strings.Repeat("x", 70_000)})
	r.request(2, "messages.send", huge)
	_, _, err := r.ws.Read(ctxT(t))
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: got %v, want close 1009", err)
	}
	// The server and everyone else carry on.
	send(t, alice, to(bobby.user.name), "after the big one")
	if m := nextMessage(t, bobby); m.Text != "after the big one" {
		t.Fatalf("got %q", m.Text)
	}
}
