package client

// Connected reports whether the client has a usable connection right now.
// A user interface polls it to show "connecting…" while the client
// reconnects on its own after a drop.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil && !c.closed
}
