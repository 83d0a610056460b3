package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// patience bounds every wait in the failover tests. It is a guard against
// hanging, not a performance goal: the tests poll and never assert how
// long recovery took.
const patience = 90 * time.Second

// balancer is the load balancer in front of the nodes: a TCP proxy that
// gives each new connection to the next backend in turn that accepts it,
// so that once a node is down its clients' reconnections land on live
// ones. When a backend drops a connection, the balancer drops the
// client's side too, as a real one does.
type balancer struct {
	ln       net.Listener
	backends []string

	mu   sync.Mutex
	next int
	wg   sync.WaitGroup
}

func newBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: backends}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *balancer) URL() string { return "http://" + b.ln.Addr().String() }

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.pipe(c) }()
	}
}

// pipe connects c to the first backend, from the next in turn, that
// accepts a connection, and copies both ways until either side ends.
func (b *balancer) pipe(c net.Conn) {
	defer c.Close()
	b.mu.Lock()
	start := b.next
	b.next++
	b.mu.Unlock()
	var be net.Conn
	for i := range b.backends {
		var err error
		if be, err = net.DialTimeout("tcp", b.backends[(start+i)%len(b.backends)], 5*time.Second); err == nil {
			break
		}
	}
	if be == nil {
		return // every backend is down: the client retries
	}
	defer be.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(be, c); done <- struct{}{} }()
	go func() { io.Copy(c, be); done <- struct{}{} }()
	<-done // either side ended: end both
}

// pgNode starts a node on the shared PostgreSQL schema dsn and the bus
// busURL, with the cluster's shared master key.
func pgNode(t *testing.T, dsn, busURL, key string) *server.Node {
	t.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), DB: dsn, Bus: busURL, MasterKeyFile: key,
		PasswordCost: cheap, AbuseLimits: lax, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// natsServer starts an embedded nats-server; opts may name a cluster.
func natsServer(t *testing.T, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	if opts == nil {
		opts = &natsserver.Options{}
	}
	opts.Host, opts.NoLog, opts.NoSigs = "127.0.0.1", true, true
	if opts.Port == 0 {
		opts.Port = -1
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(patience) {
		t.Fatal("nats-server not ready")
	}
	return ns
}

// signupVia creates a fresh user whose device connects through url (a
// node or the balancer), following updates from signup on.
func signupVia(t *testing.T, url, prefix string) *device {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	c := newClient(t, url, "", true, -1)
	res, err := c.Signup(ctxT(t), &pb.SignupRequest{Username: name, Password: password, DeviceName: "test"})
	if err != nil {
		t.Fatalf("signup %s: %v", name, err)
	}
	return &device{Client: c, user: user{name: name, id: res.User.Id}, token: res.Token}
}

// loginVia adds a device for u that connects through url.
func loginVia(t *testing.T, url string, u user) *device {
	t.Helper()
	c := newClient(t, url, "", true, -1)
	res, err := c.Login(ctxT(t), &pb.LoginRequest{Username: u.name, Password: password, DeviceName: "phone"})
	if err != nil {
		t.Fatalf("login %s: %v", u.name, err)
	}
	return &device{Client: c, user: u, token: res.Token}
}

// conversation is a sender sending to a receiver without pause, and a
// record of what was acknowledged and of what arrived on each device
// that watches the chat: the receiver, the sender's own device (every
// member's devices get each new message, the sender's included), and any
// others.
type conversation struct {
	t        *testing.T
	from, to *device
	watchers []*device
	stop     chan struct{}
	sent     chan struct{} // closed when the sender has stopped

	mu       sync.Mutex
	acked    []int64             // ids the sender was answered with, in order
	failures map[herald.Kind]int // sends answered with an error, by kind
	received [][]int64           // per watcher: ids of the sender's new messages that reached it, in order
	changed  chan struct{}
}

// converse starts from sending to to, and collects what to, from and
// others receive. Sends run one at a time. The SDK resends one whose
// connection dropped (same random id); one answered UNAVAILABLE is sent
// again here, also with the same random id, as an application would, so
// a send whose outcome was unknown is stored once.
func converse(t *testing.T, from, to *device, others ...*device) *conversation {
	cv := &conversation{t: t, from: from, to: to, watchers: append([]*device{to, from}, others...),
		stop: make(chan struct{}), sent: make(chan struct{}), changed: make(chan struct{}, 1), failures: map[herald.Kind]int{}}
	cv.received = make([][]int64, len(cv.watchers))
	go func() {
		defer close(cv.sent)
		for i := 0; !cv.stopping(); i++ {
			req := &pb.SendRequest{Peer: to.user.peer(), Text: fmt.Sprintf("message %d", i)}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				m, err := from.Send(ctx, req)
				cancel()
				cv.mu.Lock()
				if err == nil {
					cv.acked = append(cv.acked, m.Id)
				} else {
					cv.failures[herald.ErrorKind(err)]++
				}
				cv.mu.Unlock()
				cv.poke()
				if err == nil || !herald.IsKind(err, herald.Unavailable) || cv.stopping() {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	for i, d := range cv.watchers {
		go func() {
			for ev := range d.Events() {
				if m := ev.Update.GetNewMessage(); m != nil && m.FromId == from.user.id {
					cv.mu.Lock()
					cv.received[i] = append(cv.received[i], m.Id)
					cv.mu.Unlock()
					cv.poke()
				}
			}
		}()
	}
	t.Cleanup(cv.halt)
	return cv
}

func (u user) peer() *pb.Peer { return &pb.Peer{Username: u.name} }

func (cv *conversation) poke() {
	select {
	case cv.changed <- struct{}{}:
	default:
	}
}

func (cv *conversation) stopping() bool {
	select {
	case <-cv.stop:
		return true
	default:
		return false
	}
}

// halt stops the sender and waits for its last send to be answered.
func (cv *conversation) halt() {
	select {
	case <-cv.stop:
	default:
		close(cv.stop)
	}
	<-cv.sent
}

// counts returns how many sends were acknowledged, and the fewest
// messages any watching device has received.
func (cv *conversation) counts() (acked, received int) {
	cv.mu.Lock()
	defer cv.mu.Unlock()
	received = len(cv.received[0])
	for _, r := range cv.received {
		received = min(received, len(r))
	}
	return len(cv.acked), received
}

// waitFor polls cond, on every change of the conversation and at least
// every 100 ms, until it holds or patience runs out.
func (cv *conversation) waitFor(what string, cond func(acked, received int) bool) {
	cv.t.Helper()
	deadline := time.After(patience)
	for {
		if cond(cv.counts()) {
			return
		}
		select {
		case <-cv.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			a, r := cv.counts()
			cv.t.Fatalf("%s: not within %v (%d acknowledged, %d received by the device furthest behind)", what, patience, a, r)
		}
	}
}

// progress waits until k more messages than now have been acknowledged
// and received on every watching device: delivery goes on.
func (cv *conversation) progress(what string, k int) {
	cv.t.Helper()
	a0, _ := cv.counts()
	cv.waitFor(what, func(a, r int) bool { return a >= a0+k && r >= a0+k })
}

// check stops the sender, waits for every watching device to have every
// acknowledged message, and asserts that each got each exactly once, in
// the chat's order. Sends may have failed only with the kinds in allowed.
func (cv *conversation) check(allowed ...herald.Kind) {
	cv.t.Helper()
	cv.halt()
	cv.mu.Lock()
	acked := slices.Clone(cv.acked)
	failures := maps.Clone(cv.failures)
	cv.mu.Unlock()
	if len(acked) == 0 {
		cv.t.Fatal("nothing was acknowledged")
	}
	last := slices.Max(acked)
	cv.waitFor("every acknowledged message reaches every device", func(int, int) bool {
		cv.mu.Lock()
		defer cv.mu.Unlock()
		for _, r := range cv.received {
			if len(r) == 0 || r[len(r)-1] < last {
				return false
			}
		}
		return true
	})
	for w, d := range cv.watchers {
		cv.mu.Lock()
		got := slices.Clone(cv.received[w])
		cv.mu.Unlock()
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				cv.t.Fatalf("%s received out of order or twice: id %d after %d (%v)", d.user.name, got[i], got[i-1], got)
			}
		}
		in := map[int64]bool{}
		for _, id := range got {
			in[id] = true
		}
		for _, id := range acked {
			if !in[id] {
				cv.t.Fatalf("acknowledged message %d never reached a device of %s", id, d.user.name)
			}
		}
	}
	for k, n := range failures {
		if !slices.Contains(allowed, k) {
			cv.t.Errorf("%d sends failed with %s", n, k)
		}
	}
	cv.t.Logf("%d messages acknowledged; each reached all %d devices once and in order; failed sends by kind: %v", len(acked), len(cv.watchers), failures)
}

// TestNodeKilledMidConversation runs three nodes on one PostgreSQL
// schema and one NATS server behind a load balancer. The node the
// receiver is on dies abruptly while a sender on another node keeps
// sending; the receiver's device reconnects through the balancer to a live
// node and ends up with every acknowledged message exactly once, in
// order. Then the sender's node dies too, with a send in flight: the SDK
// resends it with the same random id, so it is stored once. The
// receiver's second device, on the third node, and the sender's own
// device converge on the same messages.
func TestNodeKilledMidConversation(t *testing.T) {
	dsn := pgtest.Schema(t)
	ns := natsServer(t, nil)
	key := t.TempDir() + "/master.key"
	nodes := []*server.Node{pgNode(t, dsn, ns.ClientURL(), key), pgNode(t, dsn, ns.ClientURL(), key), pgNode(t, dsn, ns.ClientURL(), key)}
	lb := newBalancer(t, nodes[0].Addr(), nodes[1].Addr(), nodes[2].Addr())

	// Round robin: the receiver lands on node 0, the sender on node 1,
	// the receiver's second device on node 2.
	bobby := signupVia(t, lb.URL(), "bobby")
	alice := signupVia(t, lb.URL(), "alice")
	phone := loginVia(t, lb.URL(), bobby.user)
	cv := converse(t, alice, bobby, phone)
	cv.progress("delivery before any failure", 20)

	nodes[0].Kill()
	cv.progress("delivery after the receiver's node died", 50)

	nodes[1].Kill()
	cv.progress("delivery after the sender's node died as well", 50)
	cv.check()
}

// TestNATSServerLost runs two nodes on PostgreSQL with a three-server
// NATS cluster, each node given all three URLs. The NATS server the
// sender's node is connected to is shut down while the sender keeps
// sending: its publishes fail or vanish until it reconnects to another
// server. Then, if the receiver's node is on yet another server, that
// one goes too (one server of three is left), so the receiving side's
// subscription also misses events while it moves. Delivery continues, and
// every acknowledged message reaches the receiver once, in order.
func TestNATSServerLost(t *testing.T) {
	dsn := pgtest.Schema(t)
	cluster := func(routes ...*url.URL) *natsserver.Options {
		return &natsserver.Options{
			Cluster: natsserver.ClusterOpts{Name: "herald-failover", Host: "127.0.0.1", Port: -1},
			Routes:  routes,
		}
	}
	first := natsServer(t, cluster())
	seed := &url.URL{Scheme: "nats-route", Host: first.ClusterAddr().String()}
	servers := []*natsserver.Server{first, natsServer(t, cluster(seed)), natsServer(t, cluster(seed))}
	waitUntil(t, "a full mesh of NATS routes", func() bool {
		for _, s := range servers {
			if s.NumRemotes() != 2 {
				return false
			}
		}
		return true
	})
	urls := servers[0].ClientURL() + "," + servers[1].ClientURL() + "," + servers[2].ClientURL()
	key := t.TempDir() + "/master.key"
	a, b := pgNode(t, dsn, urls, key), pgNode(t, dsn, urls, key)
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")
	cv := converse(t, alice, bobby)
	cv.progress("delivery before any failure", 20)

	down := map[string]bool{}
	kill := func(url string) {
		for _, s := range servers {
			if s.ClientURL() == url {
				s.Shutdown()
				s.WaitForShutdown()
				down[url] = true
				return
			}
		}
		t.Fatalf("no NATS server at %q", url)
	}
	moved := func(n *server.Node) func() bool {
		return func() bool { u := n.BusURL(); return u != "" && !down[u] }
	}
	t.Logf("sender's node on %s, receiver's on %s", a.BusURL(), b.BusURL())
	kill(a.BusURL())
	waitUntil(t, "the sender's node reconnects to a live NATS server", moved(a))
	waitUntil(t, "the receiver's node is on a live NATS server", moved(b))
	cv.progress("delivery after the sender's NATS server was lost", 50)

	if u := b.BusURL(); u != a.BusURL() {
		kill(u)
		waitUntil(t, "the receiver's node reconnects to the last NATS server", moved(b))
		waitUntil(t, "the sender's node is on the last NATS server", moved(a))
		cv.progress("delivery after the receiver's NATS server was lost too", 50)
	}
	cv.check()
}

// TestEventsPublishedDuringBusOutageArrive makes the bus lose an event
// for certain and sends nothing after it, so that no later gap can reveal
// it: node A is cut off from NATS (its only server stops; the cluster
// does not advertise the other to clients) while node B stays connected
// through the second server. A message sent through A meanwhile is stored
// and acknowledged but its publish fails. When A's server is back, A
// reconnects and tells every node to have its connections catch up, and
// the recipient on B gets the message. The sender's own device on A, whose
// subscription missed it too, gets it as well. A device revoked through A
// during the outage, whose revocation event was lost the same way, is cut
// off on B once A is back.
func TestEventsPublishedDuringBusOutageArrive(t *testing.T) {
	cluster := func(port, clusterPort int, routes ...*url.URL) *natsserver.Options {
		return &natsserver.Options{
			Port: port,
			// Clients must not learn of the other server, or A would move
			// there instead of staying cut off.
			Cluster: natsserver.ClusterOpts{Name: "herald-outage", Host: "127.0.0.1", Port: clusterPort, NoAdvertise: true},
			Routes:  routes,
		}
	}
	s2 := natsServer(t, cluster(-1, -1))
	route := &url.URL{Scheme: "nats-route", Host: s2.ClusterAddr().String()}
	s1 := natsServer(t, cluster(-1, -1, route))
	waitUntil(t, "the two NATS servers route", func() bool { return s1.NumRemotes() == 1 && s2.NumRemotes() == 1 })
	s1Port := s1.Addr().(*net.TCPAddr).Port

	dir := t.TempDir() // one SQLite store shared by both nodes
	node := func(busURL string) *server.Node {
		n, err := server.Open(server.Config{
			Listen: "127.0.0.1:0", DataDir: dir, Bus: busURL, PasswordCost: cheap, AbuseLimits: lax,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		n.Serve()
		t.Cleanup(func() { n.Shutdown(context.Background()) })
		return n
	}
	a, b := node(s1.ClientURL()), node(s2.ClientURL())
	alice, bobby := signup(t, a, "alice"), signup(t, b, "bobby")
	laptop := login(t, b, alice.user)
	first := send(t, alice, to(bobby.user.name), "before the outage")
	if m := nextMessage(t, bobby); m.Id != first.Id {
		t.Fatalf("bobby got %v", m)
	}
	nextMessage(t, alice) // her own

	s1.Shutdown()
	s1.WaitForShutdown()
	waitUntil(t, "node A notices it lost NATS", func() bool { return a.BusURL() == "" })
	during := send(t, alice, to(bobby.user.name), "during the outage")
	devs, err := alice.Devices(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if !d.Current {
			if err := alice.RevokeDevice(ctxT(t), d.Id); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The same server, on the same port, back in the cluster.
	natsServer(t, cluster(s1Port, -1, route))
	for _, d := range []*device{bobby, alice} {
		if m := nextMessage(t, d); m.Id != during.Id || m.Text != "during the outage" {
			t.Fatalf("%s got %v, want the message sent during the outage", d.user.name, m)
		}
	}
	// The laptop's client stops for good once its connection is closed
	// and its token is refused.
	deadline := time.After(patience)
	for open := true; open; {
		select {
		case _, open = <-laptop.Events():
		case <-deadline:
			t.Fatal("a device revoked during the bus outage is still connected to node B")
		}
	}
	if !herald.IsKind(laptop.Err(), herald.Unauthenticated) {
		t.Fatalf("the revoked laptop stopped with %v, want UNAUTHENTICATED", laptop.Err())
	}
}

// waitUntil polls cond every 20 ms until it holds or patience runs out.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
