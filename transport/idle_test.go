package transport

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// An idle connection costs the server one goroutine, its read loop: no
// writer, no keepalive loop (issue 16: three per connection).
func TestIdleConnectionIsOneGoroutine(t *testing.T) {
	const conns = 30
	n := startTestNode(t, Limits{}, nil)
	_, token := n.signup(t, "alice")
	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	for i := 0; i < conns; i++ {
		c := n.dial(t)
		if k := c.resume(t, token); k != "" {
			t.Fatal(k)
		}
	}
	// The writer that sent each answer ends once the queue is empty.
	var per float64
	for i := 0; i < 300; i++ {
		per = float64(settle()-before) / conns
		if per <= 1.1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%.2f goroutines per idle connection, want 1", per)
}

// A peer that stops answering pings is dropped.
func TestKeepaliveDropsADeadPeer(t *testing.T) {
	n := startTestNode(t, Limits{PingInterval: 50 * time.Millisecond}, nil)
	_, token := n.signup(t, "alice")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	// The client reads no more, so it answers no ping.
	for i := 0; n.srv.followEntries() != 0; i++ {
		if i > 1000 {
			t.Fatal("a peer that answers no ping is still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A peer that answers pings stays.
func TestKeepaliveKeepsALivePeer(t *testing.T) {
	// Generous: the pong must come back within half the interval, on a
	// shared machine under the race detector.
	n := startTestNode(t, Limits{PingInterval: time.Second}, nil)
	_, token := n.signup(t, "alice")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	ctx := c.ws.CloseRead(context.Background()) // reads, so answers pings
	time.Sleep(300 * time.Millisecond)          // fifteen pings
	if ctx.Err() != nil {
		t.Fatal("a peer that answers pings was closed")
	}
	if n.srv.followEntries() == 0 {
		t.Fatal("a live peer was dropped")
	}
}

// A socket that does not authenticate in time is closed with a reason.
func TestUnauthenticatedSocketIsClosed(t *testing.T) {
	n := startTestNode(t, Limits{AuthTimeout: 50 * time.Millisecond}, nil)
	c := n.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.next(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !strings.Contains(err.Error(), "authenticate first") {
		t.Fatalf("got %v, want close 1008 authenticate first", err)
	}
}

// A connection that does not read what is pushed to it is cut off once
// its queue is full, and the rest of the node is unaffected.
func TestSlowConsumerIsCutOff(t *testing.T) {
	n := startTestNode(t, Limits{QueueFrames: 4, WriteTimeout: time.Minute}, nil)
	_, token := n.signup(t, "alice")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	var sc *conn
	n.srv.mu.Lock()
	for x := range n.srv.conns {
		sc = x
	}
	n.srv.mu.Unlock()
	big := make([]byte, 60<<10)
	for i := 0; i < 2000 && counter(n.srv.metrics.slowConsumers) == 0; i++ {
		sc.push(big) // the client reads nothing: socket buffers fill, then the queue
	}
	if counter(n.srv.metrics.slowConsumers) != 1 {
		t.Fatal("a connection that reads nothing was never cut off")
	}
	select {
	case <-sc.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow consumer's connection did not end")
	}
	// Others are still served.
	other := n.dial(t)
	if r, err := other.call("no.such", &pb.Empty{}); err != nil || r.Error == nil {
		t.Fatalf("another connection after the cut-off: %v %v", r, err)
	}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// A write that stalls past WriteTimeout drops the socket, on the same
// timer that keeps the connection alive; the queue never filled.
func TestStalledWriteDropsTheSocket(t *testing.T) {
	n := startTestNode(t, Limits{QueueFrames: 1 << 16, WriteTimeout: 200 * time.Millisecond, PingInterval: time.Hour}, nil)
	_, token := n.signup(t, "alice")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	var sc *conn
	n.srv.mu.Lock()
	for x := range n.srv.conns {
		sc = x
	}
	n.srv.mu.Unlock()
	big := make([]byte, 60<<10)
	deadline := time.After(30 * time.Second)
	for {
		sc.push(big) // the client reads nothing: socket buffers fill, the write stalls
		select {
		case <-sc.done:
			if counter(n.srv.metrics.slowConsumers) != 0 {
				t.Fatal("cut off by the queue, not by the stalled write")
			}
			return
		case <-deadline:
			t.Fatal("a stalled write did not drop the socket")
		case <-time.After(time.Millisecond):
		}
	}
}

// Whatever a tick handles, it arms the timer for a deadline still ahead:
// a stalled write's deadline left in place would fire the timer again at
// once, without end.
func TestTickArmsTheTimerAhead(t *testing.T) {
	n := startTestNode(t, Limits{}, nil)
	_, token := n.signup(t, "alice")
	c := n.dial(t)
	if k := c.resume(t, token); k != "" {
		t.Fatal(k)
	}
	var sc *conn
	n.srv.mu.Lock()
	for x := range n.srv.conns {
		sc = x
	}
	n.srv.mu.Unlock()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	now := clock()
	for _, tc := range []struct {
		name                   string
		writeBy, pingDue, born time.Duration
		unauth                 bool
	}{
		{"a stalled write", now - time.Millisecond, now + time.Hour, sc.born, false},
		{"a ping due", 0, now - time.Millisecond, sc.born, false},
		{"the authentication deadline", 0, now + time.Hour, now - time.Hour, true},
		{"all at once", now - time.Second, now - time.Second, now - time.Hour, true},
	} {
		sc.writeBy, sc.pingDue, sc.born, sc.unauth = tc.writeBy, tc.pingDue, tc.born, tc.unauth
		stalled, _, ping := sc.dueLocked(now)
		if tc.writeBy != 0 && !stalled || tc.pingDue < now && !ping {
			t.Fatalf("%s: stalled %v ping %v", tc.name, stalled, ping)
		}
		if sc.armed <= now {
			t.Fatalf("%s: the timer is armed %v ahead", tc.name, sc.armed-now)
		}
	}
}
