//go:build !js

package client

import (
	"net/http"

	"github.com/coder/websocket"
)

// dialOptions names the SDK in the upgrade request so operators can tell
// its connections apart in their proxies' logs.
func dialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"herald-go"}}}
}
