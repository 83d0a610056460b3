package transport

import (
	"context"
	"strings"
	"testing"

	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkEncodeUpdate measures the server's per-recipient cost of turning
// a new-message update into a frame.
func BenchmarkEncodeUpdate(b *testing.B) {
	u := &pb.Update{Pts: 123456, At: 1764460800000, Kind: &pb.Update_NewMessage{NewMessage: &pb.Message{
		ChatId: 42, Id: 1001, FromId: 7, From: "alice", Text: strings.Repeat("hello ", 20), SentAt: 1764460800000, RandomId: 99,
	}}}
	b.ReportAllocs()
	for b.Loop() {
		if len(encodeUpdate(u)) == 0 {
			b.Fatal("empty frame")
		}
	}
}

// BenchmarkDecodeRequest measures parsing a send request: the frame, then
// its parameters.
func BenchmarkDecodeRequest(b *testing.B) {
	data := frame(b, "messages.send", &pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: strings.Repeat("hello ", 20), RandomId: 99})
	m := methods["messages.send"]
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		req, err := decodeRequest(true, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.decode(req.Params); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeResponse measures the reply to a send.
func BenchmarkEncodeResponse(b *testing.B) {
	res, _ := proto.Marshal(&pb.Message{ChatId: 42, Id: 1001, FromId: 7, From: "alice", Text: strings.Repeat("hello ", 20), SentAt: 1764460800000})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Response{Response: &pb.Response{Id: 5, Result: res}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeFrame measures the server's whole cost of one request
// frame on a connection, from the frame read to the answer queued: a
// cheap refusal (an unknown method) and a cheap read (users.me).
func BenchmarkServeFrame(b *testing.B) {
	node := newFuzzNode(b)
	for _, bc := range []struct {
		name, method string
	}{{"unknown", "no.such"}, {"users.me", "users.me"}} {
		b.Run(bc.name, func(b *testing.B) {
			data := frame(b, bc.method, &pb.Empty{})
			c := socketless(node.srv)
			c.caller, c.user, c.device = node.alice, node.alice.UserID, node.alice.DeviceID
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				c.serveFrame(ctx, true, data)
				if _, ok := c.queued(); !ok {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkWorkerHandoff measures what running a request on a worker adds
// to it: the handoff to an idle worker and the wait for it to finish.
func BenchmarkWorkerHandoff(b *testing.B) {
	stopped := make(chan struct{})
	defer close(stopped)
	w := &workers{tasks: make(chan *task), stopped: stopped}
	t := &task{fn: func() {}, done: make(chan struct{}, 1)}
	b.ReportAllocs()
	for b.Loop() {
		w.do(t)
	}
}
