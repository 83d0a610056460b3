package transport

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// Requests run on workers, yet a connection's requests are still handled
// one at a time in arrival order: sends written back to back, without
// waiting for answers, are answered and stored in the order they were sent.
func TestPipelinedRequestsAreHandledInOrder(t *testing.T) {
	const sends = 40
	n := startTestNode(t, Limits{}, nil)
	_, token := n.signup(t, "alice")
	n.signup(t, "bobby")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i <= sends; i++ {
		p, _ := proto.Marshal(&pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: fmt.Sprint("m", i), RandomId: int64(i)})
		f, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: uint64(1000 + i), Method: "messages.send", Params: p}}})
		if err := c.ws.Write(ctx, websocket.MessageBinary, f); err != nil {
			t.Fatal(err)
		}
	}
	var last int64
	for i := 1; i <= sends; {
		fr, err := c.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := fr.GetResponse()
		if r == nil {
			continue // the sends' own updates
		}
		var m pb.Message
		if r.Id != uint64(1000+i) || r.Error != nil || proto.Unmarshal(r.Result, &m) != nil {
			t.Fatalf("answer %d: %v, want the answer to request %d", i, r, 1000+i)
		}
		if m.Text != fmt.Sprint("m", i) || m.Id <= last {
			t.Fatalf("answer %d: message %d %q after message %d", i, m.Id, m.Text, last)
		}
		last = m.Id
		i++
	}
}
