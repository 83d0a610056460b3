package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// broadcaster is the connect scenario's closing broadcast: a channel
// every user of the run joined before the ramp, and one post to it that
// every idle connection should receive.
type broadcaster struct {
	name   string
	chatID int64
	owner  *client.Client

	start   atomic.Int64 // Unix ns of the send; 0 until then
	target  atomic.Int64
	reached atomic.Int64
	last    atomic.Int64 // ns from the send to the latest arrival
	hist    *Histogram
	done    chan struct{}
	once    sync.Once
}

func newBroadcaster(ctx context.Context, server string, owner Account, members []Account, clients []*http.Client, url string, log io.Writer) (*broadcaster, error) {
	oc, err := client.New(client.Options{Server: server, Token: owner.Token})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := oc.Connect(cctx); err != nil {
		oc.Close()
		return nil, fmt.Errorf("connect as %s: %w", owner.Username, err)
	}
	b := &broadcaster{name: channelName(), owner: oc, hist: NewHistogram(), done: make(chan struct{})}
	b.target.Store(1 << 62)
	ch, err := oc.CreateChannel(cctx, &pb.CreateChannelRequest{Username: b.name, Title: "herald-bench " + b.name})
	if err != nil {
		oc.Close()
		return nil, fmt.Errorf("channels.create: %w", err)
	}
	b.chatID = ch.Id
	fmt.Fprintf(log, "channel @%s for the closing broadcast: %d users joining\n", b.name, len(members))
	var limited atomic.Int64
	err = forEach(ctx, len(members), 16, func(i int) error {
		if err := joinChannel(ctx, clients[i%len(clients)], url, members[i].Token, b.name, &limited); err != nil {
			return fmt.Errorf("%s joining @%s: %w", members[i].Username, b.name, err)
		}
		return nil
	})
	if err != nil {
		oc.Close()
		return nil, err
	}
	return b, nil
}

// saw is called with every frame an idle connection reads.
func (b *broadcaster) saw(data []byte) {
	t0 := b.start.Load()
	if t0 == 0 {
		return
	}
	var f pb.Frame
	if proto.Unmarshal(data, &f) != nil || f.GetUpdate().GetNewMessage().GetChatId() != b.chatID {
		return
	}
	d := time.Now().UnixNano() - t0
	b.hist.Record(time.Duration(d))
	for {
		l := b.last.Load()
		if d <= l || b.last.CompareAndSwap(l, d) {
			break
		}
	}
	if b.reached.Add(1) >= b.target.Load() {
		b.once.Do(func() { close(b.done) })
	}
}

// post sends the post and waits until open connections have it, or the
// timeout.
func (b *broadcaster) post(ctx context.Context, open int, timeout time.Duration) (BroadcastResult, error) {
	res := BroadcastResult{Channel: b.name}
	b.target.Store(int64(open))
	b.start.Store(time.Now().UnixNano())
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := b.owner.Send(sctx, &pb.SendRequest{Peer: &pb.Peer{ChatId: b.chatID}, Text: "herald-bench broadcast", RandomId: client.RandomID()})
	cancel()
	if err != nil {
		return res, fmt.Errorf("posting the broadcast: %w", err)
	}
	if open == 0 {
		b.once.Do(func() { close(b.done) })
	}
	select {
	case <-b.done:
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	res.Reached = int(b.reached.Load())
	res.Missing = max(0, open-res.Reached)
	res.LastMS = float64(b.last.Load()) / float64(time.Millisecond)
	res.Delivery = b.hist.Summary()
	return res, nil
}

func (b *broadcaster) close() { b.owner.Close() }
