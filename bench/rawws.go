package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// sourceClients returns HTTP clients for dialing WebSockets: one per source
// address 127.0.0.2, 127.0.0.3 … when n > 0 and the OS routes all of
// 127.0.0.0/8 to loopback, else one client with the system's choice. Each
// source address has its own ~28k ephemeral ports towards the server, so n
// addresses lift the 64k-connections-per-port ceiling n times.
func sourceClients(n int) []*http.Client {
	if n <= 0 || !spreadSources {
		n = 1
	}
	out := make([]*http.Client, n)
	for i := range out {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
		if spreadSources && n > 1 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, byte((i+2)>>16), byte((i+2)>>8), byte(i+2))}
			d.Control = controlNoPort
		}
		tr := &http.Transport{
			Proxy:              nil,
			DialContext:        d.DialContext,
			DisableCompression: true,
		}
		out[i] = &http.Client{Transport: tr}
	}
	return out
}

// wsURL turns a checked base URL into the WebSocket endpoint.
func wsURL(base string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/v1/ws"
}

// dialResume opens a WebSocket with hc and authenticates it as the device
// of token with an auth.resume request (docs/PROTOCOL.md,
// "Authentication"). Protocol errors carry their herald kind.
func dialResume(ctx context.Context, hc *http.Client, url, token string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, &herald.Error{Kind: "DIAL", Msg: "cannot open the WebSocket", Err: err}
	}
	ws.SetReadLimit(16 << 20)
	params, _ := proto.Marshal(&pb.AuthRequest{Token: token})
	frame, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 1, Method: "auth.resume", Params: params}}})
	if err := ws.Write(ctx, websocket.MessageBinary, frame); err != nil {
		ws.CloseNow()
		return nil, &herald.Error{Kind: "DIAL", Msg: "cannot send auth.resume", Err: err}
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			ws.CloseNow()
			return nil, &herald.Error{Kind: "DIAL", Msg: "no answer to auth.resume", Err: err}
		}
		var f pb.Frame
		if proto.Unmarshal(data, &f) != nil {
			continue
		}
		r := f.GetResponse()
		if r == nil || r.Id != 1 {
			continue // an update or typing notice may come first
		}
		if r.Error != nil {
			ws.Close(websocket.StatusNormalClosure, "")
			return nil, &herald.Error{Kind: herald.Kind(r.Error.Kind), Msg: r.Error.Message}
		}
		return ws, nil
	}
}

// errorKind names an error for the tables: a herald kind, DIAL for a
// failure below the protocol, TIMEOUT for a context that ran out.
func errorKind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "TIMEOUT"
	}
	var e *herald.Error
	if errors.As(err, &e) {
		return string(e.Kind)
	}
	return fmt.Sprintf("%T", err)
}
