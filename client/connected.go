package client

// Online reports whether the client has a usable connection right now.
// A user interface polls it to show "connecting…" while the client
// reconnects on its own after a drop.
func (c *Client) Online() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil && !c.closed
}

// Drop abandons the current connection, if any, as if the network had
// cut it: the client reconnects with its usual backoff and catches up on
// what it missed. It does not wait for the close handshake, which never
// completes on a dead network. A browser page calls it when the browser
// reports the network gone, because an idle WebSocket can look open for
// minutes after that.
func (c *Client) Drop() {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return
	}
	go s.ws.CloseNow()
	s.end()
}
