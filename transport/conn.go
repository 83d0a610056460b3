package transport

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

// conn is one WebSocket connection. Requests are handled one at a time in
// arrival order, so a device's sends are stored in the order it made them;
// many connections proceed in parallel and share the store's group commit.
//
// An idle connection costs one goroutine, its read loop: the writer runs
// only while frames are queued, the queue is a slice that is dropped when
// it drains, and the keepalive, the authentication deadline and the bound
// on each write share one timer.
// Requests run on the server's workers while the read loop waits (see
// workers), so the read loop's stack stays small.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	addr string

	done chan struct{}
	fol  *follower // the user's follow set once authenticated; guarded by srv.mu

	mu      sync.Mutex
	out     [][]byte       // bounded outbound queue; nil marks flushAndClose's close
	writing bool           // a writer goroutine is draining out
	timer   *time.Timer    // the one timer: authentication deadline, keepalive, write stall; nil once the connection ends
	born    time.Duration  // when the connection started, on clock()
	armed   time.Duration  // when timer fires next, on clock(); 0: not armed
	pingDue time.Duration  // when the next ping is due, on clock()
	writeBy time.Duration  // while a frame is being written: when it must be done, on clock()
	unauth  bool           // the authentication deadline is still to be checked
	caller  service.Caller // zero until authenticated, and again once revoked
	user    int64          // the user and device this connection was
	device  int64          // authenticated as; kept after revocation
	closed  bool
	busy    bool       // a request is being handled
	closing *closeNote // close once the current request's reply is queued
}

type closeNote struct {
	code   websocket.StatusCode
	reason string
}

func newConn(s *Server, ws *websocket.Conn, addr string) *conn {
	return &conn{srv: s, ws: ws, addr: addr, done: make(chan struct{})}
}

func (c *conn) authed() (service.Caller, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caller, c.caller.UserID != 0
}

// authenticate binds the connection to a device and subscribes it to the
// user's events before answering, so nothing committed after the client's
// next sync can be missed.
func (c *conn) authenticate(ctx context.Context, token string) error {
	if err := c.unauthenticated(); err != nil {
		return err
	}
	caller, err := c.srv.svc.Authenticate(ctx, token)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.caller.UserID != 0 {
		c.mu.Unlock()
		return herald.Errorf(herald.Invalid, "this connection is already authenticated")
	}
	c.caller, c.user, c.device = caller, caller.UserID, caller.DeviceID
	c.mu.Unlock()
	if err := c.srv.attach(ctx, c, caller); err != nil {
		if herald.ErrorKind(err) == herald.RateLimited { // over the cap: not counted, not signed in
			c.mu.Lock()
			c.caller, c.user, c.device = service.Caller{}, 0, 0
			c.mu.Unlock()
		}
		return err
	}
	return nil
}

// unauthenticated refuses a second login on one connection before anything
// is created for it.
func (c *conn) unauthenticated() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.caller.UserID != 0 {
		return herald.Errorf(herald.Invalid, "this connection is already authenticated")
	}
	if c.closing != nil {
		return herald.Errorf(herald.Unauthenticated, "this device was logged out")
	}
	return nil
}

// push queues a frame; a connection whose queue is full is cut off as a
// slow consumer and resyncs when it reconnects, so its backlog never grows
// the server's memory.
func (c *conn) push(frame []byte) {
	if !c.enqueue(frame) {
		c.srv.metrics.slowConsumers.Inc()
		c.close(websocket.StatusPolicyViolation, "slow consumer: reconnect and sync")
	}
}

// enqueue adds f to the queue and starts the writer if none runs. It
// reports false if the queue is full; a closed connection drops f.
func (c *conn) enqueue(f []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return true
	}
	if len(c.out) >= c.srv.limits.QueueFrames {
		return false
	}
	c.out = append(c.out, f)
	if !c.writing {
		c.writing = true
		c.srv.writers.start(c)
	}
	return true
}

// close starts the closing handshake with a reason the client can show.
// The read loop then ends, which stops the connection's other goroutines.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	go c.ws.Close(code, reason)
}

// revoke ends the connection of a logged-out device: it answers nothing
// more, and closes right after the reply to the request in progress (which
// may be the logout itself), so that reply is not lost.
func (c *conn) revoke(reason string) {
	c.mu.Lock()
	c.caller = service.Caller{}
	if c.closed || c.closing != nil {
		c.mu.Unlock()
		return
	}
	c.closing = &closeNote{websocket.StatusPolicyViolation, reason}
	busy := c.busy
	c.mu.Unlock()
	if !busy {
		c.flushAndClose()
	}
}

// flushAndClose queues the close behind the frames already queued; a
// connection whose queue is full is closed at once.
func (c *conn) flushAndClose() {
	c.mu.Lock()
	note := c.closing
	if c.closed || note == nil {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if !c.enqueue(nil) {
		c.close(note.code, note.reason)
	}
}

func (c *conn) run(parent context.Context) {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	lim := c.srv.limits
	c.mu.Lock()
	c.born = clock()
	c.pingDue, c.unauth = c.born+lim.PingInterval, true
	c.armed = c.born + min(lim.PingInterval, lim.AuthTimeout)
	c.timer = time.AfterFunc(c.armed-c.born, c.tick)
	c.mu.Unlock()
	c.readLoop(ctx)
	c.mu.Lock()
	c.timer.Stop()
	c.timer = nil
	c.closed = true // nothing more is queued
	c.mu.Unlock()
	c.ws.CloseNow() // a writer still running fails and ends
}

// epoch is what clock counts from.
var epoch = time.Now()

// clock is a monotonic time: a connection keeps its deadlines as
// durations since epoch, 8 bytes each.
func clock() time.Duration { return time.Since(epoch) }

// tick runs when the connection's one timer fires, on the timer's
// goroutine. One timer instead of three (keepalive, authentication
// deadline, write stall) is a few hundred bytes less per idle connection;
// a write re-arms it only when the timer would fire after the write's
// deadline, so a busy connection pays no timer call per frame. Whatever
// is due is done, and the timer is armed for the next deadline.
func (c *conn) tick() {
	c.mu.Lock()
	if c.timer == nil {
		c.mu.Unlock()
		return
	}
	stalled, unauthed, ping := c.dueLocked(clock())
	c.mu.Unlock()
	switch {
	case stalled: // a write that stalls past the timeout drops the socket
		c.ws.CloseNow()
	case unauthed:
		c.close(websocket.StatusPolicyViolation, "authenticate first")
	case ping:
		c.keepalive()
	}
}

// dueLocked reports what is due at now, clears or moves on each deadline
// it reports (so the timer is never armed for the past, which would fire
// it again at once, without end), and arms the timer for the next one.
func (c *conn) dueLocked(now time.Duration) (stalled, unauthed, ping bool) {
	lim := c.srv.limits
	c.armed = 0
	if stalled = c.writeBy != 0 && now >= c.writeBy; stalled {
		c.writeBy = 0
	}
	if c.unauth && now-c.born >= lim.AuthTimeout {
		c.unauth = false
		unauthed = c.caller.UserID == 0 && c.user == 0
	}
	if ping = now >= c.pingDue; ping {
		c.pingDue = now + lim.PingInterval
	}
	c.rearmLocked(now)
	return stalled, unauthed, ping
}

// rearmLocked arms the timer for the earliest deadline still ahead.
func (c *conn) rearmLocked(now time.Duration) {
	next := c.pingDue
	if c.unauth {
		next = min(next, c.born+c.srv.limits.AuthTimeout)
	}
	if c.writeBy != 0 {
		next = min(next, c.writeBy)
	}
	c.armAtLocked(now, next)
}

// armAtLocked makes the timer fire at when, unless it is armed to fire
// earlier already (it then re-arms for what is left when it fires).
func (c *conn) armAtLocked(now, when time.Duration) {
	if c.timer == nil || (c.armed != 0 && c.armed <= when) {
		return
	}
	c.armed = when
	c.timer.Reset(max(when-now, 0))
}

// writeLoop writes queued frames and ends when the queue is empty; push
// starts another when there is more.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.out) == 0 {
			c.out = nil // an idle connection holds no queue
			c.writing = false
			c.writeBy = 0
			c.mu.Unlock()
			return
		}
		f := c.out[0]
		c.out[0] = nil
		c.out = c.out[1:]
		note := c.closing
		if f != nil {
			// The connection's timer bounds each write: a context per
			// frame (and the library's watcher for it) was an eighth of
			// the CPU of a channel fan-out, and a timer call per frame
			// is spared too unless the timer would fire too late.
			now := clock()
			c.writeBy = now + c.srv.limits.WriteTimeout
			c.armAtLocked(now, c.writeBy)
		}
		c.mu.Unlock()
		if f == nil { // flushAndClose's marker; writing stays set: nothing more is written
			c.mu.Lock()
			c.writeBy = 0
			c.mu.Unlock()
			c.close(note.code, note.reason)
			return
		}
		err := c.ws.Write(context.Background(), websocket.MessageBinary, f)
		if err != nil {
			c.close(websocket.StatusPolicyViolation, "write failed")
			return
		}
	}
}

// keepalive pings the peer, on the timer's goroutine; a peer that does
// not answer in half the interval is dropped.
func (c *conn) keepalive() {
	pctx, cancel := context.WithTimeout(context.Background(), c.srv.limits.PingInterval/2)
	err := c.ws.Ping(pctx)
	cancel()
	if err != nil {
		c.close(websocket.StatusGoingAway, "keepalive failed")
	}
}

func (c *conn) readLoop(ctx context.Context) {
	for {
		// Not ctx: cancelling a read drops the socket without a close
		// frame. Reads end when close() completes the handshake, or when the
		// library closes an oversized frame's connection with 1009.
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		c.serveFrame(ctx, typ == websocket.MessageBinary, data)
	}
}

// answer answers one client frame.
func (c *conn) answer(ctx context.Context, binary bool, data []byte) {
	req, err := decodeRequest(binary, data)
	if err != nil {
		c.reply(0, nil, err)
		return
	}
	c.handle(ctx, req)
}

// decodeRequest parses one client frame. Anything but a binary protobuf
// Frame holding a Request is refused with an error the client can read;
// the connection stays open.
func decodeRequest(binary bool, data []byte) (*pb.Request, error) {
	if !binary {
		return nil, herald.Errorf(herald.Invalid, "frames are binary protobuf messages")
	}
	var f pb.Frame
	if err := proto.Unmarshal(data, &f); err != nil {
		return nil, herald.Errorf(herald.Invalid, "the frame is not a valid protobuf Frame")
	}
	req := f.GetRequest()
	if req == nil {
		return nil, herald.Errorf(herald.Invalid, "clients send only request frames")
	}
	return req, nil
}

func (c *conn) handle(ctx context.Context, req *pb.Request) {
	start := time.Now()
	c.mu.Lock()
	c.busy = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.busy = false
		pending := c.closing != nil
		c.mu.Unlock()
		if pending {
			c.flushAndClose()
		}
	}()
	m, ok := methods[req.Method]
	var result, params proto.Message
	var err error
	caller, authed := c.authed()
	switch {
	case !ok:
		err = herald.Errorf(herald.NotFound, "unknown method %q", truncate(req.Method, 64))
	case m.auth && !authed:
		err = herald.Errorf(herald.Unauthenticated, "authenticate first (auth.resume, auth.login or auth.signup)")
	default:
		if params, err = m.decode(req.Params); err == nil {
			result, err = m.call(ctx, c, caller, params)
		}
	}
	name := req.Method
	if !ok {
		name = "unknown"
	}
	kind := "OK"
	if err != nil {
		kind = string(herald.ErrorKind(err))
		if kind == string(herald.Internal) {
			c.srv.log.Error("request failed", "method", name, "err", err)
		}
	}
	c.srv.metrics.requests.WithLabelValues(name, kind).Inc()
	c.srv.metrics.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
	c.reply(req.Id, result, err)
}

func (c *conn) reply(id uint64, result proto.Message, err error) {
	resp := &pb.Response{Id: id}
	if err != nil {
		resp.Error = pbError(err)
	} else if result != nil {
		b, merr := proto.Marshal(result)
		if merr != nil {
			resp.Error = pbError(herald.Wrap("transport.reply", merr))
		} else {
			resp.Result = b
		}
	}
	frame, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Response{Response: resp}})
	c.push(frame)
}

func pbError(err error) *pb.Error {
	e := &pb.Error{Kind: string(herald.ErrorKind(err)), Message: herald.ErrorMessage(err)}
	var he *herald.Error
	if errors.As(err, &he) && he.RetryAfter > 0 {
		e.RetryAfterMs = he.RetryAfter.Milliseconds()
	}
	pbStale(err, e)
	return e
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func encodeUpdate(u *pb.Update) []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Update{Update: u}})
	return b
}

func encodeTyping(chatID, userID int64, username string) []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Typing{Typing: &pb.Typing{ChatId: chatID, UserId: userID, Username: username}}})
	return b
}

// userID is the user the connection authenticated as.
func (c *conn) userID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// deviceID is the device the connection authenticated as, even after it
// was revoked.
func (c *conn) deviceID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device
}
