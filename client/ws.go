package client

import "context"

// maxFrame is the largest frame the client reads from the server.
const maxFrame = 16 << 20

// wsConn is the protocol's WebSocket as the client uses it: binary
// frames, one reader, writers serialized by the implementation. Native
// builds use coder/websocket (dial_native.go); the browser build talks to
// the browser's own WebSocket (dial_js.go), because coder/websocket
// brings net/http — and with it crypto/tls and crypto/x509, a third of
// the web engine — into a program whose socket is the browser's anyway.
type wsConn interface {
	// Read returns the next message.
	Read(ctx context.Context) ([]byte, error)
	// Write sends one binary message.
	Write(ctx context.Context, frame []byte) error
	// Close closes with a normal closure.
	Close()
	// CloseNow drops the connection without waiting for the handshake.
	CloseNow()
}
