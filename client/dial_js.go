//go:build js

package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
)

// dialWS opens the protocol's WebSocket with the browser's own WebSocket
// API, which sends its own headers (User-Agent, Origin, cookies) and lets
// a page set none; that is also why the token travels in auth.resume and
// never in the upgrade.
func dialWS(ctx context.Context, url string) (_ wsConn, err error) {
	defer func() {
		if r := recover(); r != nil { // new WebSocket throws on a bad URL
			err = fmt.Errorf("websocket: %v", r)
		}
	}()
	c := &jsWS{wake: make(chan struct{}, 1), done: make(chan struct{}), opened: make(chan struct{})}
	c.ws = js.Global().Get("WebSocket").New(url)
	c.ws.Set("binaryType", "arraybuffer")
	c.on("onopen", func(js.Value) {
		select {
		case <-c.opened:
		default:
			close(c.opened)
		}
	})
	c.on("onmessage", c.message)
	c.on("onclose", func(e js.Value) {
		c.fail(fmt.Errorf("websocket closed (%d %s)", e.Get("code").Int(), e.Get("reason").String()))
	})
	// An error event is always followed by a close event, which says more.
	c.on("onerror", func(js.Value) {})
	select {
	case <-c.opened:
		return c, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		c.CloseNow()
		return nil, ctx.Err()
	}
}

// jsWS is a browser WebSocket. Its event handlers run on the page's event
// loop and must not block: they only queue and wake.
type jsWS struct {
	ws     js.Value
	funcs  []js.Func
	opened chan struct{}
	wake   chan struct{} // a message or the end arrived
	done   chan struct{} // closed when err is set

	mu    sync.Mutex
	queue [][]byte
	err   error
}

var errWSClosed = errors.New("websocket: closed by the client")

func (c *jsWS) on(event string, fn func(js.Value)) {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) > 0 {
			fn(args[0])
		}
		return nil
	})
	c.funcs = append(c.funcs, f)
	c.ws.Set(event, f)
}

func (c *jsWS) message(e js.Value) {
	data := e.Get("data")
	var b []byte
	if data.Type() == js.TypeString { // the protocol sends binary frames only
		b = []byte(data.String())
	} else {
		n := data.Get("byteLength").Int()
		if n > maxFrame {
			c.ws.Call("close", 1009, "message too big")
			c.fail(fmt.Errorf("websocket: a %d-byte frame is over the %d-byte limit", n, maxFrame))
			return
		}
		b = make([]byte, n)
		js.CopyBytesToGo(b, js.Global().Get("Uint8Array").New(data))
	}
	c.mu.Lock()
	if c.err == nil {
		c.queue = append(c.queue, b)
	}
	c.mu.Unlock()
	c.poke()
}

func (c *jsWS) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// fail ends the connection once with err: readers get what was queued,
// then err. The handlers are detached before they are released, since
// the browser may still fire events after a close it has not finished.
func (c *jsWS) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	c.mu.Unlock()
	for _, ev := range []string{"onopen", "onmessage", "onclose", "onerror"} {
		c.ws.Set(ev, js.Null())
	}
	for _, f := range c.funcs {
		f.Release()
	}
	c.poke()
}

func (c *jsWS) Read(ctx context.Context) ([]byte, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			b := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return b, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *jsWS) Write(ctx context.Context, frame []byte) (err error) {
	c.mu.Lock()
	err = c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil { // send throws once the socket is closing
			err = fmt.Errorf("websocket: %v", r)
		}
	}()
	u := js.Global().Get("Uint8Array").New(len(frame))
	js.CopyBytesToJS(u, frame)
	c.ws.Call("send", u)
	return nil
}

func (c *jsWS) Close() {
	c.ws.Call("close", 1000, "")
	c.fail(errWSClosed)
}

func (c *jsWS) CloseNow() {
	c.ws.Call("close")
	c.fail(errWSClosed)
}
