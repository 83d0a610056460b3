package client

import (
	"context"
	"time"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// syncLoop is the only goroutine that delivers Events. It applies pushed
// updates whose pts is exactly the next one, and fetches the difference
// from the server whenever it sees a gap, reconnects, or dropped a push.
func (c *Client) syncLoop() {
	defer close(c.syncDone)
	defer close(c.events)
	need := false
	for {
		if need && c.opts.Follow && c.Token() != "" {
			need = !c.catchUp()
		}
		var retry <-chan time.Time
		if need {
			retry = time.After(500 * time.Millisecond)
		}
		select {
		case <-c.stop:
			return
		case <-c.syncCh:
			need = true
		case <-retry:
		case f := <-c.pushes:
			if t := f.GetTyping(); t != nil {
				c.emit(Event{Typing: t})
				continue
			}
			u := f.GetUpdate()
			if u == nil {
				continue
			}
			pts := c.Pts()
			switch {
			case u.Pts <= pts:
				// Already delivered (a push racing a sync).
			case u.Pts == pts+1 && !need:
				c.deliver(u)
			default:
				need = true
			}
		}
	}
}

// catchUp pages through the difference until the device is current. It
// reports false if it could not finish (disconnected), to be retried.
func (c *Client) catchUp() bool {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var d pb.Difference
		s, err := c.session(ctx)
		if err == nil {
			err = c.callOn(ctx, s, "updates.difference", &pb.DifferenceRequest{Pts: c.Pts()}, &d)
		}
		cancel()
		if err != nil {
			return false
		}
		if d.TooLong {
			c.setPts(d.Pts)
			if !c.emit(Event{Resync: true}) {
				return true
			}
			continue
		}
		for _, u := range d.Updates {
			if u.Pts == c.Pts()+1 {
				if !c.deliver(u) {
					return true
				}
			}
		}
		if !d.More {
			return true
		}
	}
}

func (c *Client) deliver(u *pb.Update) bool {
	if !c.emit(Event{Update: u}) {
		return false
	}
	c.setPts(u.Pts)
	return true
}

// emit hands an event to the application, waiting for room; false if the
// client is closing.
func (c *Client) emit(ev Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.stop:
		return false
	}
}

func (c *Client) setPts(pts int64) {
	c.mu.Lock()
	c.pts = pts
	c.mu.Unlock()
	if c.opts.OnPts != nil {
		c.opts.OnPts(pts)
	}
}
