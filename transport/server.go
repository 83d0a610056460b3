// Package transport carries Herald's protocol over HTTP and WebSocket:
// framing, authentication of connections, per-connection bounded write
// queues, keepalive, health and metrics. It knows nothing of chats; every
// rule is in package service.
package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits bound what one connection may cost the server.
type Limits struct {
	MaxFrameBytes int64         // larger frames close the connection (1009)
	QueueFrames   int           // outbound frames buffered per connection before it is cut off as a slow consumer
	PingInterval  time.Duration // keepalive
	WriteTimeout  time.Duration // a frame not written in this time closes the connection
	AuthTimeout   time.Duration // a connection that has not authenticated by then is closed
	// A request body (files, uploads, the Bot API) must bring at least
	// BodyMinRate bytes per second over each BodyWindow, and nothing at
	// all for a whole window cuts it off: a slow client cannot hold a
	// request, or its partial upload, open for ever.
	BodyWindow  time.Duration
	BodyMinRate int64
	// ConnsPerUser caps one account's connections to this node, and
	// ConnsPerAddr every socket from one address (an IPv6 /64),
	// authenticated or not. Negative: no cap.
	ConnsPerUser int
	ConnsPerAddr int
}

// DefaultLimits are the limits heraldd uses.
var DefaultLimits = Limits{
	MaxFrameBytes: 64 << 10,
	QueueFrames:   256,
	PingInterval:  30 * time.Second,
	WriteTimeout:  15 * time.Second,
	AuthTimeout:   30 * time.Second,
	BodyWindow:    20 * time.Second,
	BodyMinRate:   1 << 10,
	ConnsPerUser:  100,
	ConnsPerAddr:  256,
}

// Server serves the protocol.
type Server struct {
	svc     *service.Service
	bus     bus.Bus
	log     *slog.Logger
	limits  Limits
	metrics *metrics
	reg     *prometheus.Registry
	render  renderer
	workers workers
	writers writers
	files   *filesHTTP // nil until EnableFiles

	nodeID     [16]byte         // tells this node's catch-up notices from others'
	epoch      atomic.Uint64    // this node's bus reconnects, carried by its notices
	catchUpSub bus.Subscription // other nodes' catch-up notices
	stopped    chan struct{}    // closed by stop
	stopOnce   sync.Once

	shards [topicShards]topicShard // bus topics this node follows, and for which users

	mu           sync.Mutex
	conns        map[*conn]struct{}
	users        map[int64]*follower // authenticated users with a connection here
	addrs        map[string]int      // sockets per addrKey
	closing      bool
	rechecking   bool                   // recheck is running
	recheckAgain bool                   // and must run once more when it ends
	epochs       map[[16]byte]nodeEpoch // other nodes' last notices
	pruned       time.Time              // when epochs was last pruned
}

// New returns a Server. Its Handler serves /v1/ws, /healthz, /metrics and
// the web client at /.
func New(svc *service.Service, b bus.Bus, log *slog.Logger, limits Limits) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := DefaultLimits
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&limits.PingInterval, d.PingInterval}, {&limits.WriteTimeout, d.WriteTimeout}, {&limits.AuthTimeout, d.AuthTimeout}, {&limits.BodyWindow, d.BodyWindow}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if limits.MaxFrameBytes <= 0 {
		limits.MaxFrameBytes = d.MaxFrameBytes
	}
	if limits.QueueFrames <= 0 {
		limits.QueueFrames = d.QueueFrames
	}
	if limits.BodyMinRate <= 0 {
		limits.BodyMinRate = d.BodyMinRate
	}
	if limits.ConnsPerUser == 0 {
		limits.ConnsPerUser = d.ConnsPerUser
	}
	if limits.ConnsPerAddr == 0 {
		limits.ConnsPerAddr = d.ConnsPerAddr
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		svc: svc, bus: b, log: log, limits: limits, reg: reg, metrics: newMetrics(reg), render: renderer{svc: svc},
		conns: map[*conn]struct{}{}, users: map[int64]*follower{}, addrs: map[string]int{},
		nodeID: newNodeID(), stopped: make(chan struct{}), epochs: map[[16]byte]nodeEpoch{},
	}
	s.workers = workers{tasks: make(chan *task), stopped: s.stopped}
	s.writers = writers{conns: make(chan *conn), stopped: s.stopped}
	svc.SetFrames(s.render)
	for i := range s.shards {
		s.shards[i].m = map[string]*topicEntry{}
	}
	if err := s.followCatchUps(); err != nil {
		// Only a closed bus refuses; a node with no bus serves nobody.
		log.Error("follow other nodes' catch-up notices", "err", err)
	}
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", s.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if s.files != nil {
		s.files.mount(mux)
	}
	// Everything else is the web client (its own security headers).
	mux.Handle("/", web.Handler())
	return mux
}

// GuardBodies gives every request that h serves, but the WebSocket
// upgrade (which has its own keepalive and limits), a read deadline and a
// minimum transfer rate for its body (Limits.BodyWindow, BodyMinRate).
// The server's ReadHeaderTimeout bounds the headers; without this a body
// could trickle in for as long as the client liked.
func (s *Server) GuardBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ws" && r.Body != nil && r.Body != http.NoBody {
			rb := &rateBody{body: r.Body, rc: http.NewResponseController(w), window: s.limits.BodyWindow,
				min: s.limits.BodyMinRate * int64(s.limits.BodyWindow/time.Millisecond) / 1000, start: time.Now()}
			rb.rc.SetReadDeadline(rb.start.Add(rb.window))
			r.Body = rb
		}
		h.ServeHTTP(w, r)
	})
}

// ErrSlowBody ends a request body that came slower than the minimum rate.
var ErrSlowBody = fmt.Errorf("request body too slow: %w", os.ErrDeadlineExceeded)

// rateBody moves the connection's read deadline on as a body's bytes
// arrive, and fails the body when a window brings fewer than min bytes.
type rateBody struct {
	body   io.ReadCloser
	rc     *http.ResponseController
	window time.Duration
	min    int64 // bytes per window
	start  time.Time
	n      int64
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	if err != nil {
		// At the body's end net/http lifts the deadline itself before it
		// watches for the client going away (a long poll goes on).
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, ErrSlowBody
		}
		return n, err
	}
	now := time.Now()
	if now.Sub(b.start) >= b.window {
		if b.n < b.min {
			return n, ErrSlowBody
		}
		b.start, b.n = now, 0
	}
	b.rc.SetReadDeadline(now.Add(b.window))
	return n, nil
}

func (b *rateBody) Close() error { return b.body.Close() }

// Registry returns the metrics registry, for other handlers to add to.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// The default options admit browsers only from this server's own
	// origin, so another site cannot drive a logged-in user's socket.
	ws, err := websocket.Accept(leanHijack{w}, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(s.limits.MaxFrameBytes)
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	c := newConn(s, ws, addr)
	if err := s.track(c); err != nil {
		ws.Close(closeCode(err), herald.ErrorMessage(err))
		return
	}
	// The connection outlives the request: the HTTP server's goroutine,
	// its deep stack and the request it parsed are let go, and a fresh
	// goroutine with a shallow stack reads the socket.
	go s.serveConn(c, bearer(r))
}

func (s *Server) serveConn(c *conn, token string) {
	s.metrics.connections.Inc()
	defer s.metrics.connections.Dec()
	defer s.untrack(c)
	ctx := context.Background()
	if token != "" {
		var err error
		c.onWorker(func() { err = c.authenticate(ctx, token) })
		if err != nil {
			defer close(c.done)
			if herald.ErrorKind(err) == herald.RateLimited {
				c.ws.Close(websocket.StatusTryAgainLater, herald.ErrorMessage(err))
			} else {
				c.ws.Close(websocket.StatusPolicyViolation, "invalid token")
			}
			return
		}
	}
	c.run(ctx)
}

// leanBuffer is the size of a WebSocket connection's read and write
// buffers. The HTTP server hands a hijacked connection 4 KiB of each,
// held for the connection's life: two thirds of an idle connection's
// heap. Frames larger than the write buffer take one more write call.
const leanBuffer = 512

// leanHijack swaps the HTTP server's buffers for leanBuffer-sized ones
// when the WebSocket library hijacks the connection.
type leanHijack struct{ http.ResponseWriter }

func (h leanHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	// The client may have sent frames already. They must be in the new
	// reader's buffer, not behind it: the library reads what is buffered
	// and then the connection itself.
	n := brw.Reader.Buffered()
	br := bufio.NewReaderSize(nc, max(leanBuffer, n))
	if n > 0 {
		early, _ := brw.Reader.Peek(n)
		br.Reset(io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc))
		if _, err := br.Peek(n); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return &lingerConn{Conn: nc}, bufio.NewReadWriter(br, bufio.NewWriterSize(nc, leanBuffer)), nil
}

func bearer(r *http.Request) string {
	const p = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):]
	}
	return ""
}

// track admits c, refusing it past the per-address cap.
func (s *Server) track(c *conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return herald.Errorf(herald.Unavailable, "server shutting down")
	}
	k := addrKey(c.addr)
	if max := s.limits.ConnsPerAddr; max > 0 && s.addrs[k] >= max {
		s.metrics.connsRefused.WithLabelValues("address").Inc()
		return herald.Errorf(herald.RateLimited, "too many connections from this address (at most %d)", max)
	}
	s.addrs[k]++
	s.conns[c] = struct{}{}
	return nil
}

// closeCode is the close status for a connection refused with err.
func closeCode(err error) websocket.StatusCode {
	if herald.ErrorKind(err) == herald.RateLimited {
		return websocket.StatusTryAgainLater
	}
	return websocket.StatusGoingAway
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	k := addrKey(c.addr)
	if s.addrs[k]--; s.addrs[k] <= 0 {
		delete(s.addrs, k)
	}
	s.mu.Unlock()
	s.detach(c)
}

// deliver fans a bus event out to the topic's local connections. It runs
// on the bus's goroutine, so it only opens the event and enqueues its
// frame, the same bytes for every connection.
func (s *Server) deliver(e *topicEntry, data []byte) {
	ev, err := s.svc.DecodeEvent(context.Background(), data)
	if err != nil {
		s.log.Error("bad bus event", "topic", e.topic, "bytes", len(data), "err", err)
		return
	}
	if (ev.Kind == service.EventUpdate || ev.Kind == service.EventFrame) && strings.HasPrefix(e.topic, chatTopicPrefix) {
		// A broadcast chat's post: pushed to its followers off the
		// publisher's path, so a channel owner's answer does not wait
		// for the fan-out.
		s.fanOut(e, fanItem{ev.Frame, ev.NewMessage})
		return
	}
	users := s.entryUsers(e)
	if ev.Kind == service.EventFollow || ev.Kind == service.EventUnfollow {
		// The follow set is the user's, shared by their connections.
		for _, f := range users {
			if ev.Kind == service.EventFollow {
				if err := s.followChat(f, ev.ChatID, true); err != nil {
					s.log.Warn("follow chat", "chat", ev.ChatID, "err", err)
				}
			} else {
				s.unfollowChat(f, ev.ChatID, true)
			}
		}
		return
	}
	targets := usersConns(users)
	if len(targets) == 0 {
		return
	}
	switch ev.Kind {
	case service.EventRevoked:
		for _, c := range targets {
			if ev.DeviceID == 0 || c.deviceID() == ev.DeviceID { // 0: every device (suspension)
				c.revoke("device logged out")
			}
		}
	case service.EventEnvelope:
		// Only the device it is encrypted for can use it.
		for _, c := range targets {
			if c.deviceID() == ev.DeviceID {
				c.push(ev.Frame)
			}
		}
	case service.EventFrame:
		for _, c := range targets {
			if ev.DeviceID == 0 || c.deviceID() == ev.DeviceID {
				c.push(ev.Frame)
			}
		}
	default: // an update, a typing notice, a bot's answer: the same bytes to every connection
		for _, c := range targets {
			c.push(ev.Frame)
		}
		if ev.NewMessage {
			s.metrics.messagesOut.Add(float64(len(targets)))
		}
	}
}

// Close stops accepting connections and closes every open one, telling
// clients to reconnect elsewhere.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.stop()
	for _, c := range conns {
		c.close(websocket.StatusGoingAway, "server shutting down")
	}
	for _, c := range conns {
		<-c.done
	}
}
