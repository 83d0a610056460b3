package nats_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/bus/bustest"
	"github.com/heraldim/herald/bus/nats"
)

// patience bounds every wait. It is a deadlock guard, not a performance
// goal: the tests poll and never assert how long anything took.
const patience = 15 * time.Second

// startServer runs an embedded nats-server on loopback. Port -1 (the
// default here) picks a free port.
func startServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	opts.Host = "127.0.0.1"
	if opts.Port == 0 {
		opts.Port = -1
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(patience) {
		t.Fatalf("nats-server not ready within %v", patience)
	}
	return s
}

// logger sends the bus's log to the test's output, shown on failure or
// with -v.
func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func open(t testing.TB, urls string, opts ...nats.Option) *nats.Bus {
	t.Helper()
	opts = append([]nats.Option{nats.Logger(logger(t)), nats.ReconnectBackoff(10*time.Millisecond, 100*time.Millisecond)}, opts...)
	b, err := nats.Open(urls, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", urls, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBus(t *testing.T) {
	s := startServer(t, nil)
	bustest.Run(t, func(t *testing.T) bus.Bus {
		b, err := nats.Open(s.ClientURL(), nats.Logger(logger(t)))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	})
}

// inbox collects what one subscription receives.
type inbox chan []byte

func (in inbox) fn(data []byte) {
	select {
	case in <- bytes.Clone(data):
	default:
		panic("test inbox overflowed")
	}
}

// converge publishes probes until one arrives, which shows that the
// subscription's interest has reached the publisher's server. Publishing
// may fail while a connection is being re-established; that is the point
// of retrying.
func converge(t *testing.T, pub bus.Bus, topic string, in inbox, tag string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no probe delivered within %v", tag, patience)
		}
		err := pub.Publish(t.Context(), topic, fmt.Appendf(nil, "probe %s %d", tag, i))
		if err != nil && !herald.IsKind(err, herald.Unavailable) {
			t.Fatalf("%s: Publish: %v", tag, err)
		}
		select {
		case m := <-in:
			if strings.HasPrefix(string(m), "probe "+tag) {
				return
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func numbered(i int) []byte { return binary.BigEndian.AppendUint32([]byte("n"), uint32(i)) }

// sendAndCheck publishes n numbered messages and checks that all arrive in
// order. Probes left over from converge are skipped: they were published
// earlier, so they can only come first.
func sendAndCheck(t *testing.T, pub bus.Bus, topic string, in inbox, n int) {
	t.Helper()
	for i := range n {
		if err := pub.Publish(t.Context(), topic, numbered(i)); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	for i := 0; i < n; {
		select {
		case m := <-in:
			if strings.HasPrefix(string(m), "probe ") {
				continue
			}
			if !bytes.Equal(m, numbered(i)) {
				t.Fatalf("message %d: got %q, want %q", i, m, numbered(i))
			}
			i++
		case <-time.After(patience):
			t.Fatalf("message %d of %d not delivered within %v", i, n, patience)
		}
	}
}

// TestClusterFailover runs three routed servers: a subscriber on A receives
// from a publisher on C, and keeps receiving after A, its own server and
// the one the others were told to route to, is shut down.
func TestClusterFailover(t *testing.T) {
	cluster := func(routes ...*url.URL) *server.Options {
		return &server.Options{
			Cluster: server.ClusterOpts{Name: "herald-test", Host: "127.0.0.1", Port: -1},
			Routes:  routes,
		}
	}
	a := startServer(t, cluster())
	seed := &url.URL{Scheme: "nats-route", Host: a.ClusterAddr().String()}
	b := startServer(t, cluster(seed))
	c := startServer(t, cluster(seed))
	servers := []*server.Server{a, b, c}
	// B and C learn of each other from A; wait for the full mesh so that
	// losing A does not split them.
	waitFor(t, "full mesh", func() bool {
		for _, s := range servers {
			if s.NumRemotes() != 2 {
				return false
			}
		}
		return true
	})

	var reconnects atomic.Int32
	// DontRandomize pins each client to the first URL, to put them on
	// different servers; every URL is still there to fail over to.
	subBus := open(t, a.ClientURL()+","+b.ClientURL()+","+c.ClientURL(),
		nats.NATSOptions(natsgo.DontRandomize()),
		nats.OnLoss(func(topic string) {
			if topic == "" {
				reconnects.Add(1)
			}
		}))
	pubBus := open(t, c.ClientURL()+","+b.ClientURL()+","+a.ClientURL(), nats.NATSOptions(natsgo.DontRandomize()))
	if got := subBus.ConnectedURL(); got != a.ClientURL() {
		t.Fatalf("subscriber connected to %s, want A (%s)", got, a.ClientURL())
	}
	if got := pubBus.ConnectedURL(); got != c.ClientURL() {
		t.Fatalf("publisher connected to %s, want C (%s)", got, c.ClientURL())
	}

	topic := bus.UserTopic(42)
	in := make(inbox, 10_000)
	if _, err := subBus.Subscribe(topic, in.fn); err != nil {
		t.Fatal(err)
	}
	converge(t, pubBus, topic, in, "A<-C")
	sendAndCheck(t, pubBus, topic, in, 1000)

	a.Shutdown()
	a.WaitForShutdown()
	converge(t, pubBus, topic, in, "after A")
	if got := subBus.ConnectedURL(); got == "" || got == a.ClientURL() {
		t.Fatalf("subscriber connected to %q after A went down", got)
	}
	sendAndCheck(t, pubBus, topic, in, 1000)
	waitFor(t, "OnLoss after the reconnect", func() bool { return reconnects.Load() > 0 })
}

// TestReconnect restarts the only server: Publish reports UNAVAILABLE while
// it is down, subscriptions — even one made during the outage — work again
// once it is back, and OnLoss says events may have been missed.
func TestReconnect(t *testing.T) {
	s := startServer(t, nil)
	port := s.Addr().(*net.TCPAddr).Port
	var losses atomic.Int32
	b := open(t, s.ClientURL(), nats.OnLoss(func(topic string) {
		if topic == "" {
			losses.Add(1)
		}
	}))
	before := make(inbox, 1000)
	if _, err := b.Subscribe("before", before.fn); err != nil {
		t.Fatal(err)
	}
	converge(t, b, "before", before, "up")

	s.Shutdown()
	s.WaitForShutdown()
	// The client notices the closed socket asynchronously; until then a
	// publish may still go into the dead connection.
	waitFor(t, "Publish to fail", func() bool {
		err := b.Publish(t.Context(), "before", []byte("lost"))
		if err != nil && !herald.IsKind(err, herald.Unavailable) {
			t.Fatalf("Publish while down: %v, want kind %s", err, herald.Unavailable)
		}
		return err != nil
	})
	if got := b.ConnectedURL(); got != "" {
		t.Errorf("ConnectedURL while down = %q, want empty", got)
	}
	during := make(inbox, 1000)
	if _, err := b.Subscribe("during", during.fn); err != nil {
		t.Fatalf("Subscribe while down: %v", err)
	}

	startServer(t, &server.Options{Port: port})
	converge(t, b, "before", before, "restarted")
	converge(t, b, "during", during, "restarted")
	sendAndCheck(t, b, "before", before, 100)
	waitFor(t, "OnLoss after the reconnect", func() bool { return losses.Load() > 0 })
}

// TestSlowConsumer stalls a handler: messages beyond the pending limit are
// dropped, OnLoss names the topic, order is kept, and delivery resumes.
func TestSlowConsumer(t *testing.T) {
	s := startServer(t, nil)
	lost := make(chan string, 100)
	b := open(t, s.ClientURL(), nats.PendingLimits(8, 1<<20), nats.OnLoss(func(topic string) {
		select {
		case lost <- topic:
		default:
		}
	}))
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the bus closes: Close waits for the handler
	var mu sync.Mutex
	var got []int
	fence := make(chan struct{})
	var fenceOnce sync.Once
	if _, err := b.Subscribe("slow", func(data []byte) {
		<-release // a handler that breaks the rules
		if string(data) == "fence" {
			fenceOnce.Do(func() { close(fence) })
			return
		}
		mu.Lock()
		got = append(got, int(binary.BigEndian.Uint32(data[1:])))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if err := b.Publish(t.Context(), "slow", numbered(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case topic := <-lost:
		if topic != "slow" {
			t.Errorf("OnLoss(%q), want the topic %q", topic, "slow")
		}
	case <-time.After(patience):
		t.Fatalf("no OnLoss within %v", patience)
	}
	unblock()
	// The queue may still be full when a fence arrives, and then the fence
	// is dropped too, so send fences until one gets through.
	deadline := time.Now().Add(patience)
	for resumed := false; !resumed; {
		if time.Now().After(deadline) {
			t.Fatalf("delivery did not resume within %v", patience)
		}
		if err := b.Publish(t.Context(), "slow", []byte("fence")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fence:
			resumed = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || len(got) >= n {
		t.Errorf("%d of %d messages delivered, want some dropped and some delivered", len(got), n)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("message %d delivered after %d", got[i], got[i-1])
		}
	}
}

// TestSubjects checks the topic-to-subject mapping from outside, with a
// plain NATS client, and that topics that are not literal subjects are
// refused.
func TestSubjects(t *testing.T) {
	s := startServer(t, nil)
	b := open(t, s.ClientURL(), nats.Prefix("acme.herald"))
	raw, err := natsgo.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rawSub, err := raw.SubscribeSync("acme.herald.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), bus.UserTopic(123), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := rawSub.NextMsg(patience)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "acme.herald.u.123" || string(m.Data) != "hi" {
		t.Errorf("got %q on %q, want %q on %q", m.Data, m.Subject, "hi", "acme.herald.u.123")
	}

	for _, topic := range []string{"", "u.*", "c.>", ">", "u..1", ".u", "u.", "u 1", "u\n1"} {
		if err := b.Publish(t.Context(), topic, nil); !herald.IsKind(err, herald.Invalid) {
			t.Errorf("Publish(%q): err = %v, want kind %s", topic, err, herald.Invalid)
		}
		if _, err := b.Subscribe(topic, func([]byte) {}); !herald.IsKind(err, herald.Invalid) {
			t.Errorf("Subscribe(%q): err = %v, want kind %s", topic, err, herald.Invalid)
		}
	}
	if _, err := nats.Open(s.ClientURL(), nats.Prefix("a.*")); !herald.IsKind(err, herald.Invalid) {
		t.Errorf("Open with a wildcard prefix: err = %v, want kind %s", err, herald.Invalid)
	}
}

func TestOpenUnreachable(t *testing.T) {
	// A listener that is closed at once gives a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = nats.Open("nats://herald:s3cret@" + addr)
	if !herald.IsKind(err, herald.Unavailable) {
		t.Fatalf("Open: err = %v, want kind %s", err, herald.Unavailable)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// BenchmarkPublishDeliver measures one topic from a publisher connection
// to a subscriber connection, as between two nodes.
func BenchmarkPublishDeliver(b *testing.B) {
	benchFanout(b, 1)
}

// BenchmarkFanout100 measures one topic with 100 subscriptions on another
// connection; deliveries/s counts every handler call.
func BenchmarkFanout100(b *testing.B) {
	benchFanout(b, 100)
}

func benchFanout(b *testing.B, subs int) {
	s := startServer(b, nil)
	quiet := nats.Logger(slog.New(slog.DiscardHandler))
	var lost atomic.Int32
	// Limits far above the window below, so nothing should be dropped;
	// OnLoss would make any drop fail the benchmark rather than hang it.
	subBus := open(b, s.ClientURL(), quiet, nats.PendingLimits(1<<20, 1<<30), nats.OnLoss(func(string) { lost.Add(1) }))
	pubBus := open(b, s.ClientURL(), quiet)
	var delivered atomic.Int64
	for range subs {
		if _, err := subBus.Subscribe("bench", func([]byte) { delivered.Add(1) }); err != nil {
			b.Fatal(err)
		}
	}
	in := make(inbox, 1000)
	if _, err := subBus.Subscribe("bench.ready", in.fn); err != nil {
		b.Fatal(err)
	}
	// The subscriptions travel in order on one connection, so once a probe
	// on the last one arrives, the others are in place too.
	for {
		if err := pubBus.Publish(b.Context(), "bench.ready", []byte("probe")); err != nil {
			b.Fatal(err)
		}
		select {
		case <-in:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	msg := make([]byte, 128)
	// Deliveries published but not yet handled are bounded, so that the
	// benchmark measures sustained throughput rather than how much the
	// queues absorb, and so that the server's outbound buffer to the
	// subscriber connection (max_pending, 64 MiB) never overflows: the
	// server would cut it off as a slow consumer.
	const inFlight = 1 << 15
	window := max(inFlight/subs, 1)
	step := max(window/8, 1)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := range b.N {
		if i%step == 0 {
			for int64(i-window)*int64(subs) > delivered.Load() {
				if lost.Load() > 0 {
					b.Fatal("messages dropped")
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
		if err := pubBus.Publish(b.Context(), "bench", msg); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * int64(subs)
	deadline := time.Now().Add(patience)
	for delivered.Load() < want {
		if lost.Load() > 0 || time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries (lost: %v)", delivered.Load(), want, lost.Load() > 0)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
}
