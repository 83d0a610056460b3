// Package transport carries Herald's protocol over HTTP and WebSocket:
// framing, authentication of connections, per-connection bounded write
// queues, keepalive, health and metrics. It knows nothing of chats; every
// rule is in package service.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
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
	files   *filesHTTP // nil until EnableFiles

	nodeID     [16]byte         // tells this node's catch-up notices from others'
	epoch      atomic.Uint64    // this node's bus reconnects, carried by its notices
	catchUpSub bus.Subscription // other nodes' catch-up notices
	stopped    chan struct{}    // closed by stop
	stopOnce   sync.Once

	mu           sync.Mutex
	topics       map[string]*topicConns // bus topics this node follows, and for which connections
	conns        map[*conn]struct{}
	closing      bool
	rechecking   bool                   // recheck is running
	recheckAgain bool                   // and must run once more when it ends
	epochs       map[[16]byte]nodeEpoch // other nodes' last notices
	pruned       time.Time              // when epochs was last pruned
}

// topicConns is one bus subscription shared by every local connection that
// needs the topic: a user's devices on this node, or the online followers
// of a broadcast chat. A channel post therefore crosses the bus once per
// node and is encoded once, however many followers are connected.
type topicConns struct {
	sub   bus.Subscription
	conns map[*conn]struct{}
}

// New returns a Server. Its Handler serves /v1/ws, /healthz, /metrics and
// the web client at /.
func New(svc *service.Service, b bus.Bus, log *slog.Logger, limits Limits) *Server {
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		svc: svc, bus: b, log: log, limits: limits, reg: reg, metrics: newMetrics(reg), render: renderer{svc: svc},
		topics: map[string]*topicConns{}, conns: map[*conn]struct{}{},
		nodeID: newNodeID(), stopped: make(chan struct{}), epochs: map[[16]byte]nodeEpoch{},
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
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(s.limits.MaxFrameBytes)
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	c := newConn(s, ws, addr)
	if !s.track(c) {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.metrics.connections.Inc()
	defer s.metrics.connections.Dec()
	defer s.untrack(c)
	if tok := bearer(r); tok != "" {
		if err := c.authenticate(r.Context(), tok); err != nil {
			ws.Close(websocket.StatusPolicyViolation, "invalid token")
			return
		}
	}
	c.run(r.Context())
}

func bearer(r *http.Request) string {
	const p = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):]
	}
	return ""
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.unsubscribe(c)
}

// subscribe attaches c to its user's events and to the broadcast chats
// the user follows.
func (s *Server) subscribe(ctx context.Context, c *conn, caller service.Caller) error {
	if err := s.join(c, bus.UserTopic(caller.UserID)); err != nil {
		return err
	}
	chats, err := s.svc.FollowedChats(ctx, caller)
	if err != nil {
		return err
	}
	for _, id := range chats {
		if err := s.join(c, bus.ChatTopic(id)); err != nil {
			return err
		}
	}
	return nil
}

// join adds c to a topic, subscribing the node to it if c is the first.
// A connection that has already gone (untrack ran) is not added: nothing
// would ever remove it.
func (s *Server) join(c *conn, topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joinLocked(c, topic)
}

// joinLocked is join with s.mu held.
func (s *Server) joinLocked(c *conn, topic string) error {
	if _, ok := s.conns[c]; !ok {
		return nil
	}
	tc := s.topics[topic]
	if tc == nil {
		sub, err := s.bus.Subscribe(topic, func(data []byte) { s.deliver(topic, data) })
		if err != nil {
			return err
		}
		tc = &topicConns{sub: sub, conns: map[*conn]struct{}{}}
		s.topics[topic] = tc
	}
	tc.conns[c] = struct{}{}
	c.topics[topic] = struct{}{}
	return nil
}

// part removes c from a topic; the node unsubscribes when nobody is left.
func (s *Server) part(c *conn, topic string) {
	s.mu.Lock()
	sub := s.partLocked(c, topic)
	s.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
}

// partLocked is part with s.mu held. It returns the node's subscription to
// the topic if c was the last connection on it, for the caller to end
// once s.mu is released (Unsubscribe waits for a delivery in progress,
// which takes s.mu).
func (s *Server) partLocked(c *conn, topic string) bus.Subscription {
	var sub bus.Subscription
	if tc := s.topics[topic]; tc != nil {
		delete(tc.conns, c)
		if len(tc.conns) == 0 {
			delete(s.topics, topic)
			sub = tc.sub
		}
	}
	delete(c.topics, topic)
	return sub
}

func (s *Server) unsubscribe(c *conn) {
	s.mu.Lock()
	topics := make([]string, 0, len(c.topics))
	for t := range c.topics {
		topics = append(topics, t)
	}
	s.mu.Unlock()
	for _, t := range topics {
		s.part(c, t)
	}
}

// deliver fans a bus event out to the topic's local connections. It runs
// on the bus's goroutine, so it only decodes, encodes and enqueues.
func (s *Server) deliver(topic string, data []byte) {
	ctx := context.Background()
	ev, err := s.svc.DecodeEvent(ctx, data)
	if err != nil {
		s.log.Error("bad bus event", "topic", topic, "err", err)
		return
	}
	s.mu.Lock()
	var targets []*conn
	if tc := s.topics[topic]; tc != nil {
		targets = make([]*conn, 0, len(tc.conns))
		for c := range tc.conns {
			targets = append(targets, c)
		}
	}
	s.mu.Unlock()
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
	case service.EventFollow, service.EventUnfollow:
		for _, c := range targets {
			s.mu.Lock()
			c.follows++ // tells recheck its read may be older than this
			s.mu.Unlock()
			if ev.Kind == service.EventFollow {
				if err := s.join(c, bus.ChatTopic(ev.ChatID)); err != nil {
					s.log.Warn("follow chat", "chat", ev.ChatID, "err", err)
				}
			} else {
				s.part(c, bus.ChatTopic(ev.ChatID))
			}
		}
	case service.EventUpdate:
		frame := encodeUpdate(s.render.update(ctx, ev.Update))
		for _, c := range targets {
			c.push(frame)
		}
		if ev.Update.Kind == herald.UpdNewMessage {
			s.metrics.messagesOut.Add(float64(len(targets)))
		}
	case service.EventCallbackAnswer:
		frame := s.encodeAnswer(ctx, ev)
		for _, c := range targets {
			c.push(frame)
		}
	case service.EventEnvelope:
		// Only the device it is encrypted for can use it.
		var frame []byte
		for _, c := range targets {
			if c.deviceID() == ev.DeviceID {
				if frame == nil {
					frame = encodeEnvelope(s.render.envelope(ctx, ev.Envelope))
				}
				c.push(frame)
			}
		}
	case service.EventTyping:
		frame := encodeTyping(ev.ChatID, ev.UserID, s.svc.UserNames(ctx, ev.UserID)[ev.UserID])
		for _, c := range targets {
			c.push(frame)
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
