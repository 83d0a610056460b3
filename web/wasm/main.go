//go:build js && wasm

// Command wasm is the web client's engine: the Go client SDK compiled to
// WebAssembly, exposed to the page's JavaScript as globalThis.herald. The
// page draws; this holds the connection, authenticates, reconnects, and
// delivers the update log in order with every gap filled (package client),
// so the browser speaks the protocol through the same code as the CLI.
//
// Every function returns a Promise. Messages cross the boundary as
// protobuf JSON (proto field names), which keeps the bridge one generic
// path instead of a hand-written converter per message.
package main

import (
	"context"
	"errors"
	"sync"
	"syscall/js"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// pair makes a method's params and result messages.
type pair func() (req, res proto.Message)

func typed[Req, Res any, PReq interface {
	*Req
	proto.Message
}, PRes interface {
	*Res
	proto.Message
}]() pair {
	return func() (proto.Message, proto.Message) { return PReq(new(Req)), PRes(new(Res)) }
}

// methods are the protocol methods the page may call through call(); the
// auth methods have functions of their own because they change who the
// client is.
var methods = map[string]pair{
	"users.me":          typed[pb.Empty, pb.User](),
	"users.resolve":     typed[pb.ResolveRequest, pb.User](),
	"users.block":       typed[pb.BlockRequest, pb.Empty](),
	"server.info":       typed[pb.Empty, pb.ServerInfo](),
	"devices.list":      typed[pb.Empty, pb.DeviceList](),
	"chats.list":        typed[pb.ChatsRequest, pb.DialogList](),
	"chats.get":         typed[pb.GetChatRequest, pb.Chat](),
	"chats.leave":       typed[pb.ChatRequest, pb.Empty](),
	"chats.mute":        typed[pb.MuteRequest, pb.Chat](),
	"chats.set_ttl":     typed[pb.SetTTLRequest, pb.Chat](),
	"groups.create":     typed[pb.CreateGroupRequest, pb.Chat](),
	"groups.add":        typed[pb.MembersRequest, pb.Empty](),
	"groups.remove":     typed[pb.MembersRequest, pb.Empty](),
	"channels.create":   typed[pb.CreateChannelRequest, pb.Chat](),
	"channels.join":     typed[pb.JoinRequest, pb.Chat](),
	"channels.invite":   typed[pb.InviteRequest, pb.Invite](),
	"channels.set":      typed[pb.SetChatRequest, pb.Chat](),
	"messages.send":     typed[pb.SendRequest, pb.Message](),
	"messages.history":  typed[pb.HistoryRequest, pb.MessageList](),
	"messages.edit":     typed[pb.EditRequest, pb.Message](),
	"messages.delete":   typed[pb.DeleteRequest, pb.Empty](),
	"messages.read":     typed[pb.ReadRequest, pb.ReadResult](),
	"messages.typing":   typed[pb.TypingRequest, pb.Empty](),
	"messages.clear":    typed[pb.ClearRequest, pb.ClearResult](),
	"files.get":         typed[pb.FileRequest, pb.File](),
	"files.link":        typed[pb.FileLinkRequest, pb.FileLink](),
	"messages.press":    typed[pb.PressRequest, pb.PressResult](),
	"calls.start":       typed[pb.StartCallRequest, pb.CallInfo](),
	"calls.answer":      typed[pb.AnswerCallRequest, pb.CallInfo](),
	"calls.decline":     typed[pb.CallRequest, pb.Empty](),
	"calls.hangup":      typed[pb.CallRequest, pb.Empty](),
	"calls.candidate":   typed[pb.CallCandidateRequest, pb.Empty](),
	"calls.ice_servers": typed[pb.Empty, pb.IceServerList](),
	"push.config":       typed[pb.Empty, pb.PushConfig](),
	"push.subscribe":    typed[pb.PushSubscribeRequest, pb.Empty](),
	"push.unsubscribe":  typed[pb.PushUnsubscribeRequest, pb.Empty](),
	"push.list":         typed[pb.Empty, pb.PushSubscriptionList](),
	"push.focus":        typed[pb.PushFocusRequest, pb.Empty](),
	"push.prefs":        typed[pb.Empty, pb.PushPrefs](),
	"push.set_prefs":    typed[pb.PushPrefs, pb.PushPrefs](),
	"push.chat":         typed[pb.ChatRequest, pb.PushChatSettings](),
	"push.set_chat":     typed[pb.PushChatRequest, pb.PushChatSettings](),
	"messages.react":    typed[pb.ReactionRequest, pb.ReactionList](),
	"messages.pin":      typed[pb.PinRequest, pb.Empty](),
	"messages.unpin":    typed[pb.PinRequest, pb.Empty](),
	"messages.pins":     typed[pb.PinListRequest, pb.MessageList](),
}

var (
	toJSON   = protojson.MarshalOptions{UseProtoNames: true}
	fromJSON = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// bridge holds the one client of the page.
type bridge struct {
	server string

	mu  sync.Mutex
	c   *client.Client
	gen int          // which client the event pump belongs to
	sec *secretState // the secret chats of c, once it is authenticated
}

func main() {
	b := &bridge{server: js.Global().Get("location").Get("origin").String()}
	api := map[string]any{
		"start":     promised(b.start),
		"signup":    promised(b.signup),
		"login":     promised(b.login),
		"call":      promised(b.call),
		"logout":    promised(b.logout),
		"stop":      promised(b.stop),
		"info":      promised(b.info),
		"upload":    promised(b.upload),
		"secret":    promised(b.secretCall),
		"connected": js.FuncOf(func(js.Value, []js.Value) any { return b.connected() }),
		"drop":      js.FuncOf(func(js.Value, []js.Value) any { b.cut(); return nil }),
	}
	js.Global().Set("herald", js.ValueOf(api))
	if ready := js.Global().Get("heraldReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // the page calls in; main must not return
}

// promised wraps fn so JavaScript gets a Promise: the work runs on its own
// goroutine, since a js.Func that blocks would freeze the page's event loop.
func promised(fn func(args []js.Value) (any, error)) js.Func {
	return js.FuncOf(func(this js.Value, args []js.Value) any {
		args = append([]js.Value(nil), args...)
		executor := js.FuncOf(func(this js.Value, p []js.Value) any {
			resolve, reject := p[0], p[1]
			go func() {
				v, err := fn(args)
				if err != nil {
					reject.Invoke(jsError(err))
					return
				}
				resolve.Invoke(v)
			}()
			return nil
		})
		defer executor.Release()
		return js.Global().Get("Promise").New(executor)
	})
}

// jsError carries the error's kind and sentence, so the page can tell a
// wrong password (UNAUTHENTICATED) from an unreachable server.
func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	var he *herald.Error
	if errors.As(err, &he) {
		e.Set("message", he.Msg)
		e.Set("kind", string(he.Kind))
		e.Set("retryAfterMs", he.RetryAfter.Milliseconds())
	} else {
		e.Set("kind", string(herald.ErrorKind(err)))
	}
	return e
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

func str(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

// handlers are the page's callbacks for one client.
type handlers struct {
	onEvent, onConnection js.Value
}

func handlersOf(v js.Value) handlers {
	if v.Type() != js.TypeObject {
		return handlers{js.Undefined(), js.Undefined()}
	}
	return handlers{v.Get("onEvent"), v.Get("onConnection")}
}

// open replaces the page's client with a fresh one and connects it. With
// a token it authenticates (auth.resume); without, signup or login
// follows on the same connection.
func (b *bridge) open(ctx context.Context, token string, h handlers) (*client.Client, error) {
	c, err := client.New(client.Options{
		Server: b.server, Token: token, Follow: true, Pts: -1,
		// A browser tab is one person waiting: come back quickly once the
		// network returns rather than after the CLI's 10 s ceiling.
		MaxBackoff: 2 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	b.mu.Lock()
	old := b.c
	b.c = c
	b.gen++
	gen := b.gen
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go b.pump(c, gen, h)
	return c, nil
}

// pump hands the client's events to the page in order, and tells it when
// the connection comes and goes, or ends for good (device logged out).
func (b *bridge) pump(c *client.Client, gen int, h handlers) {
	state := ""
	tell := func(s string) {
		// A client the page has replaced (a failed login's, say) says
		// nothing more: its "closed" would hide the new one's state.
		b.mu.Lock()
		current := b.gen == gen
		b.mu.Unlock()
		if current && s != state && h.onConnection.Type() == js.TypeFunction {
			state = s
			h.onConnection.Invoke(s)
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				if c.Err() != nil {
					tell("logged-out")
				} else {
					tell("closed")
				}
				return
			}
			if h.onEvent.Type() != js.TypeFunction {
				continue
			}
			switch {
			case ev.Update != nil:
				h.onEvent.Invoke("update", marshal(ev.Update))
			case ev.Typing != nil:
				h.onEvent.Invoke("typing", marshal(ev.Typing))
			case ev.CallbackAnswer != nil:
				h.onEvent.Invoke("answer", marshal(ev.CallbackAnswer))
			case ev.Call != nil:
				h.onEvent.Invoke("call", marshal(ev.Call))
			case ev.Reaction != nil:
				h.onEvent.Invoke("reaction", marshal(ev.Reaction))
			case ev.Pin != nil:
				h.onEvent.Invoke("pin", marshal(ev.Pin))
			case ev.Resync:
				h.onEvent.Invoke("resync", "{}")
			}
		case <-tick.C:
			if c.Online() {
				tell("online")
			} else {
				tell("connecting")
			}
		}
	}
}

func marshal(m proto.Message) string {
	b, err := toJSON.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func (b *bridge) current() (*client.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil, herald.Errorf(herald.Unauthenticated, "not logged in")
	}
	return b.c, nil
}

// start(token, {onEvent, onConnection}) resumes a saved session and
// resolves with the user.
func (b *bridge) start(args []js.Value) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := b.open(ctx, str(arg(args, 0)), handlersOf(arg(args, 1)))
	if err != nil {
		return nil, err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return nil, err
	}
	b.authenticated(c, handlersOf(arg(args, 1)))
	return marshal(me), nil
}

// signup(JSON SignupRequest, handlers) resolves with the AuthResult.
func (b *bridge) signup(args []js.Value) (any, error) {
	return b.auth(args, func(ctx context.Context, c *client.Client, params string) (proto.Message, error) {
		var req pb.SignupRequest
		if err := fromJSON.Unmarshal([]byte(params), &req); err != nil {
			return nil, herald.Errorf(herald.Invalid, "bad signup request: %v", err)
		}
		return c.Signup(ctx, &req)
	})
}

// login(JSON LoginRequest, handlers) resolves with the AuthResult.
func (b *bridge) login(args []js.Value) (any, error) {
	return b.auth(args, func(ctx context.Context, c *client.Client, params string) (proto.Message, error) {
		var req pb.LoginRequest
		if err := fromJSON.Unmarshal([]byte(params), &req); err != nil {
			return nil, herald.Errorf(herald.Invalid, "bad login request: %v", err)
		}
		return c.Login(ctx, &req)
	})
}

func (b *bridge) auth(args []js.Value, fn func(context.Context, *client.Client, string) (proto.Message, error)) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := b.open(ctx, "", handlersOf(arg(args, 1)))
	if err != nil {
		return nil, err
	}
	res, err := fn(ctx, c, str(arg(args, 0)))
	if err != nil {
		// A connection may authenticate only once, and a failed attempt
		// leaves nothing worth keeping: the next try opens a fresh one.
		b.forget(c)
		return nil, err
	}
	b.authenticated(c, handlersOf(arg(args, 1)))
	return marshal(res), nil
}

// authenticated starts the secret chats of c, if it is still the page's
// client.
func (b *bridge) authenticated(c *client.Client, h handlers) {
	b.mu.Lock()
	current, gen := b.c == c, b.gen
	b.mu.Unlock()
	if current {
		b.startSecret(c, gen, h)
	}
}

// forget closes c if it is still the page's client.
func (b *bridge) forget(c *client.Client) {
	b.mu.Lock()
	var sec *secretState
	if b.c == c {
		b.c = nil
		sec, b.sec = b.sec, nil
	}
	b.mu.Unlock()
	closeSecret(sec)
	c.Close()
}

// closeSecret stops a client's secret chats once they have started.
func closeSecret(st *secretState) {
	if st == nil {
		return
	}
	go func() {
		<-st.ready
		if st.s != nil {
			st.s.Close()
		}
	}()
}

// call(method, JSON params) resolves with the JSON result.
func (b *bridge) call(args []js.Value) (any, error) {
	method := str(arg(args, 0))
	mk, ok := methods[method]
	if !ok {
		return nil, herald.Errorf(herald.Invalid, "the web client does not call %q", method)
	}
	c, err := b.current()
	if err != nil {
		return nil, err
	}
	req, res := mk()
	if p := str(arg(args, 1)); p != "" {
		if err := fromJSON.Unmarshal([]byte(p), req); err != nil {
			return nil, herald.Errorf(herald.Invalid, "bad parameters for %s: %v", method, err)
		}
	}
	timeout := 30 * time.Second
	if method == "messages.send" {
		// A send made while offline waits for the connection to come
		// back, and its random id makes the retry land once.
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if r, ok := req.(*pb.SendRequest); ok {
		m, err := c.Send(ctx, r)
		if err != nil {
			return nil, err
		}
		return marshal(m), nil
	}
	if err := c.Call(ctx, method, req, res); err != nil {
		return nil, err
	}
	return marshal(res), nil
}

// logout revokes this device and closes the client; the page then wipes
// what it kept.
func (b *bridge) logout(args []js.Value) (any, error) {
	c, err := b.current()
	if err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Logout(ctx)
	b.forget(c)
	if err != nil && !herald.IsKind(err, herald.Unauthenticated) {
		// The device stays listed on the server until revoked from
		// another one; the page forgets the token either way.
		return "the server could not be told: " + err.Error(), nil
	}
	return nil, nil
}

// info() resolves with the server's ServerInfo (its rules), which the
// sign-up form shows; it needs no account, so it asks on a connection of
// its own.
func (b *bridge) info(args []js.Value) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(client.Options{Server: b.server})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	var res pb.ServerInfo
	if err := c.Call(ctx, "server.info", &pb.Empty{}, &res); err != nil {
		return nil, err
	}
	return marshal(&res), nil
}

func (b *bridge) stop(args []js.Value) (any, error) {
	b.mu.Lock()
	c := b.c
	b.c = nil
	sec := b.sec
	b.sec = nil
	b.mu.Unlock()
	closeSecret(sec)
	if c != nil {
		c.Close()
	}
	return nil, nil
}

// cut cuts the connection when the browser says the network is gone;
// the SDK reconnects when it can and fills the gap from the update log.
func (b *bridge) cut() {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c != nil {
		c.Drop()
	}
}

func (b *bridge) connected() bool {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	return c != nil && c.Online()
}
