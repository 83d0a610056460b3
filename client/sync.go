package client

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// syncLoop is the only goroutine that delivers Events. It applies pushed
// updates whose pts is exactly the next one, and fetches the difference
// from the server whenever it sees a gap, reconnects, or dropped a push.
func (c *Client) syncLoop() {
	defer close(c.syncDone)
	defer close(c.events)
	need, needChans := false, false
	for {
		if need && c.opts.Follow && c.Token() != "" {
			need = !c.catchUp()
			needChans = needChans || !need
		}
		if needChans && !need && c.opts.Follow && c.Token() != "" {
			needChans = !c.catchUpChats()
		}
		var retry <-chan time.Time
		if need || needChans {
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
			if a := f.GetCallbackAnswer(); a != nil {
				c.emit(Event{CallbackAnswer: a})
				continue
			}
			if k := f.GetCall(); k != nil {
				c.emit(Event{Call: k})
				continue
			}
			if r := f.GetReaction(); r != nil {
				c.emit(Event{Reaction: r})
				continue
			}
			if p := f.GetPin(); p != nil {
				c.emit(Event{Pin: p})
				continue
			}
			u := f.GetUpdate()
			if u == nil {
				continue
			}
			if u.Pts == 0 && u.ChatPts > 0 {
				if !c.pushChat(u) {
					needChans = true
				}
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
	// Joining a broadcast chat says where its log starts for this device;
	// leaving one ends it.
	if j := u.GetChatJoined(); j != nil {
		c.mu.Lock()
		if _, ok := c.chans[j.ChatId]; !ok {
			c.chans[j.ChatId] = j.ChatPts
		}
		c.mu.Unlock()
	}
	if l := u.GetChatLeft(); l != nil {
		c.mu.Lock()
		delete(c.chans, l.ChatId)
		c.mu.Unlock()
	}
	c.setPts(u.Pts)
	return true
}

// chatOf names the chat a broadcast log entry belongs to.
func chatOf(u *pb.Update) int64 {
	switch {
	case u.GetNewMessage() != nil:
		return u.GetNewMessage().ChatId
	case u.GetEditMessage() != nil:
		return u.GetEditMessage().ChatId
	case u.GetDeleteMessages() != nil:
		return u.GetDeleteMessages().ChatId
	}
	return 0
}

// pushChat applies a pushed entry of a broadcast chat's log if it is the
// next one; false means the chat must be caught up from the server.
func (c *Client) pushChat(u *pb.Update) bool {
	chat := chatOf(u)
	c.mu.Lock()
	known, ok := c.chans[chat]
	c.mu.Unlock()
	switch {
	case !ok:
		return false
	case u.ChatPts <= known:
		return true // a duplicate
	case u.ChatPts == known+1:
		return c.deliverChat(chat, u)
	}
	return false
}

func (c *Client) deliverChat(chat int64, u *pb.Update) bool {
	if !c.emit(Event{Update: u}) {
		return true
	}
	c.mu.Lock()
	if _, ok := c.chans[chat]; ok {
		c.chans[chat] = u.ChatPts
	}
	c.mu.Unlock()
	return true
}

// catchUpChats brings every followed broadcast chat up to date: chats
// already known are caught up from their last position, new ones are
// followed from now. It reports false if it could not finish.
func (c *Client) catchUpChats() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := c.session(ctx)
	if err != nil {
		return false
	}
	dialogs, err := allChats(func(req *pb.ChatsRequest, l *pb.DialogList) error {
		return c.callOn(ctx, s, "chats.list", req, l)
	})
	if err != nil {
		return false
	}
	live := map[int64]bool{}
	for _, d := range dialogs {
		ch := d.Chat
		if !ch.Broadcast || ch.Muted {
			continue
		}
		live[ch.Id] = true
		c.mu.Lock()
		known, ok := c.chans[ch.Id]
		if !ok {
			c.chans[ch.Id] = ch.Pts
		}
		c.mu.Unlock()
		if !ok || known >= ch.Pts {
			continue
		}
		for {
			var d pb.Difference
			if err := c.callOn(ctx, s, "channels.difference", &pb.ChatDifferenceRequest{ChatId: ch.Id, Pts: known}, &d); err != nil {
				k := herald.ErrorKind(err)
				if k == herald.PermissionDenied || k == herald.NotFound {
					// Taken down or gone: stop following it, and let the
					// other chats catch up.
					c.mu.Lock()
					delete(c.chans, ch.Id)
					c.mu.Unlock()
					delete(live, ch.Id)
					break
				}
				return false
			}
			if len(d.Updates) == 0 && d.More {
				break // a confused server: never spin
			}
			if d.TooLong {
				c.mu.Lock()
				c.chans[ch.Id] = d.Pts
				c.mu.Unlock()
				c.emit(Event{Resync: true})
				break
			}
			for _, u := range d.Updates {
				if u.ChatPts == known+1 {
					c.deliverChat(ch.Id, u)
					known = u.ChatPts
				}
			}
			if !d.More {
				break
			}
		}
	}
	c.mu.Lock()
	for id := range c.chans {
		if !live[id] {
			delete(c.chans, id)
		}
	}
	c.mu.Unlock()
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
