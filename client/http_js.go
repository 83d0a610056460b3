//go:build js

package client

import (
	"context"
	"errors"
	"io"
	"strconv"
	"syscall/js"
)

// doHTTP sends r with the browser's fetch, the same API net/http's own
// js/wasm transport uses, without linking net/http.
func doHTTP(ctx context.Context, r *httpRequest) (*httpResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abort := js.Global().Get("AbortController").New()
	headers := js.Global().Get("Headers").New()
	for k, v := range r.header {
		headers.Call("set", k, v)
	}
	init := map[string]any{"method": r.method, "headers": headers, "signal": abort.Get("signal"), "cache": "no-store"}
	if r.body != nil {
		// fetch streams request bodies only over HTTP/2 and with
		// duplex "half"; a chunk (UploadChunk) fits in memory.
		b, err := io.ReadAll(r.body)
		if err != nil {
			return nil, err
		}
		u := js.Global().Get("Uint8Array").New(len(b))
		js.CopyBytesToJS(u, b)
		init["body"] = u
	}
	stop := context.AfterFunc(ctx, func() { abort.Call("abort") })
	resp, err := awaitJS(js.Global().Call("fetch", r.url, init))
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	h := resp.Get("headers")
	header := func(name string) string {
		v := h.Call("get", name)
		if v.IsNull() {
			return ""
		}
		return v.String()
	}
	length := int64(-1)
	if n, err := strconv.ParseInt(header("Content-Length"), 10, 64); err == nil {
		length = n
	}
	body := &fetchBody{stop: stop, ctx: ctx}
	if b := resp.Get("body"); b.Truthy() {
		body.reader = b.Call("getReader")
	}
	return &httpResponse{status: resp.Get("status").Int(), length: length, header: header, body: body}, nil
}

// fetchBody reads a fetch Response's body stream.
type fetchBody struct {
	reader js.Value // undefined when the response has no body
	ctx    context.Context
	stop   func() bool
	buf    []byte
	eof    bool
}

func (b *fetchBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.eof || b.reader.IsUndefined() {
			return 0, io.EOF
		}
		chunk, err := awaitJS(b.reader.Call("read"))
		if err != nil {
			if b.ctx.Err() != nil {
				return 0, b.ctx.Err()
			}
			return 0, err
		}
		if chunk.Get("done").Bool() {
			b.eof = true
			continue
		}
		v := chunk.Get("value")
		b.buf = make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(b.buf, v)
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *fetchBody) Close() error {
	b.stop()
	if !b.eof && !b.reader.IsUndefined() {
		b.reader.Call("cancel")
		b.eof = true
	}
	return nil
}

// awaitJS waits for a JavaScript Promise from a goroutine, which hands the
// event loop back to the browser until the Promise settles.
func awaitJS(p js.Value) (js.Value, error) {
	ok := make(chan js.Value, 1)
	bad := make(chan error, 1)
	then := js.FuncOf(func(_ js.Value, a []js.Value) any { ok <- a[0]; return nil })
	catch := js.FuncOf(func(_ js.Value, a []js.Value) any {
		msg := "JavaScript error"
		if len(a) > 0 && (a[0].Type() == js.TypeObject || a[0].Type() == js.TypeString) {
			msg = a[0].Call("toString").String()
		}
		bad <- errors.New(msg)
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	select {
	case v := <-ok:
		return v, nil
	case err := <-bad:
		return js.Undefined(), err
	}
}
