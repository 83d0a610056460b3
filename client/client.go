// Package client is Herald's Go SDK: the one implementation of the
// protocol that the CLI, the load generator and (compiled to WebAssembly)
// the web client use.
//
// A Client keeps one WebSocket connection to the server, reconnects with
// backoff when it drops, re-authenticates with its device token, and — if
// asked to follow updates — delivers the user's update log in order, with
// no gaps and no duplicates, catching up on whatever it missed while it was
// away (see docs/PROTOCOL.md, "Sync").
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// Options configure a Client.
type Options struct {
	// Server is the server's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Token is the device's bearer token; empty until Signup or Login.
	Token string
	// Follow makes the client deliver the update log on Events.
	Follow bool
	// Pts is where the device's update log position starts when
	// following: updates after it are delivered. Negative means "now":
	// only what happens after connecting.
	Pts int64
	// ChannelPts holds, per broadcast chat, the last position of the chat's
	// own log this device has seen; the client catches up on each from
	// there. Chats not in it are followed from now on.
	ChannelPts map[int64]int64
	// OnPts, if set, is called (from one goroutine) each time the delivered
	// position advances, so the caller can persist it.
	OnPts func(pts int64)
	// MaxBackoff caps the wait between reconnection attempts (default 10 s).
	MaxBackoff time.Duration
	// EventBuffer is the size of the Events channel (default 1024).
	EventBuffer int
}

// Event is something the server told this device.
type Event struct {
	// Update is the next entry of the user's update log, in pts order.
	Update *pb.Update
	// Typing: a member is typing (ephemeral).
	Typing *pb.Typing
	// CallbackAnswer: a bot answered a button press of this user
	// (ephemeral; see Press).
	CallbackAnswer *pb.CallbackAnswer
	// Call is a step of a call's signalling for this device (ephemeral;
	// see StartCall).
	Call *pb.CallEvent
	// Reaction: a message's reactions changed (ephemeral; history has
	// them too).
	Reaction *pb.ReactionUpdate
	// Pin: a message was pinned or unpinned (ephemeral; messages.pins
	// has them too).
	Pin *pb.PinUpdate
	// Resync: the device was too far behind; reload the chat list. The
	// log continues after it.
	Resync bool
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = herald.Errorf(herald.Unavailable, "the client is closed")

// Client is a connection to a Herald server. It is safe for concurrent use.
type Client struct {
	opts     Options
	wsURL    string
	nextID   atomic.Uint64
	events   chan Event
	pushes   chan *pb.Frame // from the reader to the sync goroutine
	syncCh   chan struct{}
	syncDone chan struct{}

	mu      sync.Mutex
	token   string
	sess    *session
	ready   chan struct{} // closed when sess is usable
	closed  bool
	running bool  // Connect succeeded, so the loops run
	fatal   error // why the client stopped for good (device revoked)
	stop    chan struct{}
	stopped chan struct{}
	pts     int64
	ptsSet  bool
	chans   map[int64]int64 // broadcast chat → last log position delivered

	userID, deviceID int64             // who this client is authenticated as
	envelopes        chan *pb.Envelope // pushed secret-chat envelopes (see Envelopes)
	connected        chan struct{}     // a (re)connection happened (see Connected)
}

type session struct {
	ws      wsConn
	mu      sync.Mutex
	pending map[uint64]chan *pb.Response
	lost    chan struct{}
	err     error
	endOnce sync.Once
}

// end fails the session's pending calls and reports it lost, once: when
// its reader stops, or earlier when Drop gives up on it.
func (s *session) end() {
	s.endOnce.Do(func() {
		s.mu.Lock()
		pend := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, ch := range pend {
			close(ch)
		}
		close(s.lost)
	})
}

// New returns a Client; Connect opens its connection.
func New(opts Options) (*Client, error) {
	u, err := wsURL(opts.Server)
	if err != nil {
		return nil, err
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 1024
	}
	c := &Client{
		opts: opts, wsURL: u, token: opts.Token,
		events: make(chan Event, opts.EventBuffer), pushes: make(chan *pb.Frame, 4096), syncCh: make(chan struct{}, 1), syncDone: make(chan struct{}),
		ready: make(chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{}),
		envelopes: make(chan *pb.Envelope, 1024), connected: make(chan struct{}, 1),
	}
	if opts.Pts >= 0 {
		c.pts, c.ptsSet = opts.Pts, true
	}
	c.chans = make(map[int64]int64, len(opts.ChannelPts))
	for k, v := range opts.ChannelPts {
		c.chans[k] = v
	}
	return c, nil
}

func wsURL(server string) (string, error) {
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", herald.Errorf(herald.Invalid, "the server URL %q is not a URL like http://127.0.0.1:8080", server)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", herald.Errorf(herald.Invalid, "the server URL must start with http:// or https://")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/ws"
	return u.String(), nil
}

// Events delivers updates (when following) and typing notices. It is
// closed when the client is closed.
func (c *Client) Events() <-chan Event { return c.events }

// Token returns the device's bearer token.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// Pts returns the position of the last update delivered on Events.
func (c *Client) Pts() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pts
}

// ChannelPts returns, per broadcast chat, the last log position delivered
// on Events, for saving between runs.
func (c *Client) ChannelPts() map[int64]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]int64, len(c.chans))
	for k, v := range c.chans {
		out[k] = v
	}
	return out
}

// Connect opens the first connection (authenticating if the client has a
// token) and starts the background loops. Later drops are repaired by
// reconnecting on its own.
func (c *Client) Connect(ctx context.Context) error {
	s, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	c.setSession(s)
	go c.loop(s)
	go c.syncLoop()
	c.requestSync()
	return nil
}

func (c *Client) dial(ctx context.Context) (*session, error) {
	ws, err := dialWS(ctx, c.wsURL)
	if err != nil {
		return nil, &herald.Error{Kind: herald.Unavailable, Msg: fmt.Sprintf("cannot reach the server at %s", c.opts.Server), Err: err}
	}
	s := &session{ws: ws, pending: map[uint64]chan *pb.Response{}, lost: make(chan struct{})}
	go c.read(s)
	if tok := c.Token(); tok != "" {
		var res pb.AuthResult
		if err := c.callOn(ctx, s, "auth.resume", &pb.AuthRequest{Token: tok}, &res); err != nil {
			ws.Close()
			return nil, err
		}
		c.mu.Lock()
		if !c.ptsSet {
			c.pts, c.ptsSet = res.Pts, true
		}
		c.userID, c.deviceID = res.GetUser().GetId(), res.GetDevice().GetId()
		c.mu.Unlock()
	}
	return s, nil
}

func (c *Client) setSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = s
	close(c.ready)
	c.signalConnected()
}

func (c *Client) signalConnected() {
	select {
	case c.connected <- struct{}{}:
	default:
	}
}

// Envelopes delivers secret-chat envelopes the server pushes to this
// device. Pushes are best effort: one that finds the channel full is
// dropped, and stays queued on the server for the next fetch (Secret
// fetches on every reconnection).
func (c *Client) Envelopes() <-chan *pb.Envelope { return c.envelopes }

// Connected receives a value after the client (re)connects, and when the
// server says pushes may have been missed (a CatchUp frame), so a secret
// chat receiver knows to fetch what was queued meanwhile.
func (c *Client) Connected() <-chan struct{} { return c.connected }

// Self returns the user and device this client is authenticated as (0, 0
// before it is).
func (c *Client) Self() (userID, deviceID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.userID, c.deviceID
}

// loop waits for the connection to drop and reconnects with backoff.
func (c *Client) loop(s *session) {
	defer close(c.stopped)
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-c.stop:
			s.ws.Close()
			<-s.lost
			return
		case <-s.lost:
		}
		c.mu.Lock()
		c.sess = nil
		c.ready = make(chan struct{})
		c.mu.Unlock()
		for {
			wait := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-c.stop:
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			ns, err := c.dial(ctx)
			cancel()
			if err == nil {
				s = ns
				c.setSession(s)
				backoff = 100 * time.Millisecond
				c.requestSync()
				break
			}
			if herald.IsKind(err, herald.Unauthenticated) {
				c.mu.Lock()
				c.fatal = err
				c.mu.Unlock()
				go c.Close()
				<-c.stop
				return
			}
			backoff = min(2*backoff, c.opts.MaxBackoff)
		}
	}
}

// read dispatches frames of one connection until it ends.
func (c *Client) read(s *session) {
	defer s.end()
	for {
		data, err := s.ws.Read(context.Background())
		if err != nil {
			s.err = err
			return
		}
		f := &pb.Frame{}
		if err := proto.Unmarshal(data, f); err != nil {
			continue
		}
		switch k := f.Kind.(type) {
		case *pb.Frame_Response:
			s.mu.Lock()
			ch := s.pending[k.Response.Id]
			delete(s.pending, k.Response.Id)
			s.mu.Unlock()
			if ch != nil {
				ch <- k.Response
			}
		case *pb.Frame_Envelope:
			select {
			case c.envelopes <- k.Envelope:
			default: // still queued on the server; fetched later
			}
		case *pb.Frame_Typing, *pb.Frame_CallbackAnswer, *pb.Frame_Call, *pb.Frame_Reaction, *pb.Frame_Pin:
			select {
			case c.pushes <- f:
			default: // typing is best effort
			}
		case *pb.Frame_CatchUp:
			// The server may have missed pushing us something (its link
			// to the other nodes broke); the logs and the secret-chat
			// queue are in the store, so what a reconnect runs finds it.
			if c.opts.Follow {
				c.requestSync()
			}
			c.signalConnected()
		case *pb.Frame_Update:
			if !c.opts.Follow {
				continue
			}
			select {
			case c.pushes <- f:
			default:
				// The consumer is behind; the log is on the server, so
				// drop the push and catch up with a sync.
				c.requestSync()
			}
		}
	}
}

func (c *Client) requestSync() {
	select {
	case c.syncCh <- struct{}{}:
	default:
	}
}

// session waits for a usable connection.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		s, ready, closed, fatal := c.sess, c.ready, c.closed, c.fatal
		c.mu.Unlock()
		if fatal != nil {
			return nil, fatal
		}
		if closed {
			return nil, ErrClosed
		}
		if s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-c.stop:
		case <-ctx.Done():
			return nil, &herald.Error{Kind: herald.Unavailable, Msg: "not connected to the server", Err: ctx.Err()}
		}
	}
}

// retryable methods are safe to send again after a connection dropped
// before their answer arrived. Sends are retried only through Send and
// Forward, which always carry a random id.
var retryable = map[string]bool{
	"users.me": true, "users.resolve": true, "chats.list": true, "chats.get": true, "devices.list": true,
	"messages.history": true, "messages.read": true, "updates.state": true, "updates.difference": true,
	"channels.difference": true,
}

// Call sends a request and decodes its result into resp (which may be nil).
// Errors from the server are *herald.Error with the server's kind and
// sentence. If the connection drops, retryable methods are sent again once
// the client has reconnected, until ctx ends.
func (c *Client) Call(ctx context.Context, method string, req, resp proto.Message) error {
	return c.call(ctx, method, req, resp, retryable[method])
}

func (c *Client) call(ctx context.Context, method string, req, resp proto.Message, retry bool) error {
	for {
		s, err := c.session(ctx)
		if err != nil {
			return err
		}
		err = c.callOn(ctx, s, method, req, resp)
		if errors.Is(err, errLost) {
			if retry {
				continue
			}
			return herald.Errorf(herald.Unavailable, "the connection dropped before the server answered %s; it may or may not have been applied", method)
		}
		return err
	}
}

var errLost = errors.New("connection lost")

func (c *Client) callOn(ctx context.Context, s *session, method string, req, resp proto.Message) error {
	params, err := proto.Marshal(req)
	if err != nil {
		return herald.Errorf(herald.Invalid, "cannot encode the request: %v", err)
	}
	id := c.nextID.Add(1)
	frame, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: id, Method: method, Params: params}}})
	ch := make(chan *pb.Response, 1)
	s.mu.Lock()
	if s.pending == nil {
		s.mu.Unlock()
		return errLost
	}
	s.pending[id] = ch
	s.mu.Unlock()
	if err := s.ws.Write(ctx, frame); err != nil {
		s.mu.Lock()
		if s.pending != nil {
			delete(s.pending, id)
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			return &herald.Error{Kind: herald.Unavailable, Msg: "the request timed out", Err: ctx.Err()}
		}
		return errLost
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return errLost
		}
		if r.Error != nil {
			if st := r.Error.Stale; st != nil && r.Error.Kind == string(herald.Stale) {
				cur := make([]herald.DeviceSet, 0, len(st.Current))
				for _, d := range st.Current {
					cur = append(cur, herald.DeviceSet{UserID: d.UserId, Devices: d.DeviceIds})
				}
				return herald.NewStaleDevices(st.Missing, st.Extra, cur)
			}
			return &herald.Error{Kind: herald.Kind(r.Error.Kind), Msg: r.Error.Message, RetryAfter: time.Duration(r.Error.RetryAfterMs) * time.Millisecond}
		}
		if resp != nil {
			if err := proto.Unmarshal(r.Result, resp); err != nil {
				return herald.Errorf(herald.Internal, "the server's answer does not decode: %v", err)
			}
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		if s.pending != nil {
			delete(s.pending, id)
		}
		s.mu.Unlock()
		return &herald.Error{Kind: herald.Unavailable, Msg: "the request timed out", Err: ctx.Err()}
	}
}

// Close closes the connection and stops reconnecting. Events is closed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	running := c.running
	close(c.stop)
	c.mu.Unlock()
	if running {
		<-c.stopped
		<-c.syncDone
	} else {
		close(c.events)
	}
	return nil
}

// Err returns why the client stopped on its own (its device was logged
// out), or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}
