// Package transport carries Herald's protocol over HTTP and WebSocket:
// framing, authentication of connections, per-connection bounded write
// queues, keepalive, health and metrics. It knows nothing of chats; every
// rule is in package service.
package transport

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/service"
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
}

// DefaultLimits are the limits heraldd uses.
var DefaultLimits = Limits{
	MaxFrameBytes: 64 << 10,
	QueueFrames:   1024,
	PingInterval:  30 * time.Second,
	WriteTimeout:  15 * time.Second,
	AuthTimeout:   30 * time.Second,
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

	mu      sync.Mutex
	users   map[int64]*userConns // connections of each user on this node
	conns   map[*conn]struct{}
	closing bool
}

type userConns struct {
	sub   bus.Subscription
	conns map[*conn]struct{}
}

// New returns a Server. Its Handler serves /v1/ws, /healthz and /metrics.
func New(svc *service.Service, b bus.Bus, log *slog.Logger, limits Limits) *Server {
	d := DefaultLimits
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&limits.PingInterval, d.PingInterval}, {&limits.WriteTimeout, d.WriteTimeout}, {&limits.AuthTimeout, d.AuthTimeout}} {
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		svc: svc, bus: b, log: log, limits: limits, reg: reg, metrics: newMetrics(reg), render: renderer{svc: svc},
		users: map[int64]*userConns{}, conns: map[*conn]struct{}{},
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
	return mux
}

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

// subscribe attaches c to its user's events. One bus subscription serves all
// of a user's connections on this node.
func (s *Server) subscribe(c *conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	uc := s.users[c.user]
	if uc == nil {
		uid := c.user
		sub, err := s.bus.Subscribe(bus.UserTopic(uid), func(data []byte) { s.deliver(uid, data) })
		if err != nil {
			return err
		}
		uc = &userConns{sub: sub, conns: map[*conn]struct{}{}}
		s.users[uid] = uc
	}
	uc.conns[c] = struct{}{}
	return nil
}

func (s *Server) unsubscribe(c *conn) {
	c.mu.Lock()
	uid := c.user
	c.mu.Unlock()
	if uid == 0 {
		return
	}
	s.mu.Lock()
	uc := s.users[uid]
	var sub bus.Subscription
	if uc != nil {
		delete(uc.conns, c)
		if len(uc.conns) == 0 {
			delete(s.users, uid)
			sub = uc.sub
		}
	}
	s.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
}

// deliver fans a bus event out to the user's local connections. It runs on
// the bus's goroutine, so it only encodes and enqueues.
func (s *Server) deliver(userID int64, data []byte) {
	ctx := context.Background()
	ev, err := s.svc.DecodeEvent(ctx, data)
	if err != nil {
		s.log.Error("bad bus event", "user", userID, "err", err)
		return
	}
	s.mu.Lock()
	uc := s.users[userID]
	var targets []*conn
	if uc != nil {
		targets = make([]*conn, 0, len(uc.conns))
		for c := range uc.conns {
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
			if c.deviceID() == ev.DeviceID {
				c.revoke("device logged out")
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
	for _, c := range conns {
		c.close(websocket.StatusGoingAway, "server shutting down")
	}
	for _, c := range conns {
		<-c.done
	}
}
