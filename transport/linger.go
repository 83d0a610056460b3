package transport

import (
	"io"
	"net"
	"sync"
	"time"
)

// lingerConn closes a WebSocket's socket the way HTTP servers do a
// connection with a request body still arriving: first the write side,
// so the close frame already sent is followed by a FIN, then it reads and
// discards what the peer is still sending, for a bounded time and amount,
// and only then closes. Closing with unread bytes makes the kernel answer
// with a reset, which destroys the close frame (1009 for an oversized
// frame) before the client can read why it was cut off.
type lingerConn struct {
	net.Conn
	once sync.Once
}

// Bounds of the drain: a peer cannot hold a closing socket for longer, or
// make the server read more.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

func (c *lingerConn) Close() error {
	c.once.Do(func() {
		cw, ok := c.Conn.(interface{ CloseWrite() error })
		if !ok || cw.CloseWrite() != nil {
			c.Conn.Close()
			return
		}
		// Off the caller's goroutine: the library closes from paths that
		// should not wait on the peer.
		go func() {
			c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			io.CopyN(io.Discard, c.Conn, lingerBytes)
			c.Conn.Close()
		}()
	})
	return nil
}
