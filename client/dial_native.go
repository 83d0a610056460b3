//go:build !js

package client

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// dialWS opens the protocol's WebSocket with coder/websocket, naming the
// SDK in the upgrade request so operators can tell its connections apart
// in their proxies' logs.
func dialWS(ctx context.Context, url string) (wsConn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"herald-go"}}})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxFrame)
	return nativeWS{ws}, nil
}

type nativeWS struct{ c *websocket.Conn }

func (w nativeWS) Read(ctx context.Context) ([]byte, error) {
	_, data, err := w.c.Read(ctx)
	return data, err
}

func (w nativeWS) Write(ctx context.Context, frame []byte) error {
	return w.c.Write(ctx, websocket.MessageBinary, frame)
}

func (w nativeWS) Close() { w.c.Close(websocket.StatusNormalClosure, "") }

func (w nativeWS) CloseNow() { w.c.CloseNow() }
