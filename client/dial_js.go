//go:build js

package client

import "github.com/coder/websocket"

// dialOptions is empty in the browser: the WebSocket API sends its own
// headers (User-Agent, Origin, cookies) and lets a page set none, which is
// also why the token travels in auth.resume and never in the upgrade.
func dialOptions() *websocket.DialOptions { return nil }
