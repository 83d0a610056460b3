package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// SyncConfig configures the sync scenario.
type SyncConfig struct {
	Server string
	Missed int // updates the offline device misses
	// SenderUsers is how many users send the missed messages, each in
	// its own direct chat with the device (default 1). Senders is how
	// many connections they send over, shared round robin (default 8, at
	// least one per sender user); InFlight how many sends are outstanding
	// at once across them (default 256).
	SenderUsers int
	Senders     int
	InFlight    int
	TextSize    int           // default 64
	Timeout     time.Duration // bounds the send phase and the catch-up, each (default 10 minutes)
	Accounts    *Accounts
	Log         io.Writer
}

func (c *SyncConfig) defaults() {
	if c.SenderUsers <= 0 {
		c.SenderUsers = 1
	}
	if c.Senders <= 0 {
		c.Senders = 8
	}
	c.Senders = max(c.Senders, c.SenderUsers)
	if c.InFlight <= 0 {
		c.InFlight = 256
	}
	if c.TextSize <= 0 {
		c.TextSize = 64
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Accounts == nil {
		c.Accounts = &Accounts{Parallel: 2}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// SyncResult is the outcome of the sync scenario.
type SyncResult struct {
	Scenario    string         `json:"scenario"`
	Missed      int            `json:"missed"`
	SenderUsers int            `json:"sender_users"`
	Accepted    int            `json:"accepted"` // sends acknowledged while the device was away
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors"`
	// RateLimited counts sends the server's abuse limits refused; each was
	// retried after the wait the server named.
	RateLimited int     `json:"rate_limited"`
	SendSecs    float64 `json:"send_s"`
	SendRate    float64 `json:"send_per_s"`
	// The catch-up: from the device starting to reconnect with its saved
	// pts to the last missed update on its Events channel.
	FirstUpdateMs Millis      `json:"first_update_ms"`
	CatchUpSecs   float64     `json:"catch_up_s"`
	UpdatesPerSec float64     `json:"updates_per_s"`
	Received      int         `json:"received"`   // missed messages that arrived
	InOrder       bool        `json:"in_order"`   // every update's pts was the previous one + 1
	Duplicates    int         `json:"duplicates"` // a missed message that arrived twice
	Other         int         `json:"other_updates"`
	Server        ServerStats `json:"server"` // during the catch-up
}

// RunSync has one device go offline, another user (or SenderUsers users)
// send it Missed messages as fast as the server takes them over several
// connections, and then
// measures how long the device takes to catch up on all of them when it
// reconnects with its saved pts.
func RunSync(ctx context.Context, cfg SyncConfig) (SyncResult, error) {
	cfg.defaults()
	res := SyncResult{Scenario: "sync", Missed: cfg.Missed, SenderUsers: cfg.SenderUsers, Errors: map[string]int{}}
	if cfg.Missed < 1 {
		return res, fmt.Errorf("--missed must be at least 1")
	}
	accs, err := cfg.Accounts.Take(ctx, cfg.Server, 1+cfg.SenderUsers)
	if err != nil {
		return res, err
	}
	recv, from := accs[0], accs[1:]
	e := &loadEngine{textSize: cfg.TextSize}

	// The senders' connections, round robin over the sender users; the
	// first connection of each user also opens its direct chat.
	conns := make([]*client.Client, cfg.Senders)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	chats := make([]int64, len(from))
	for i := range conns {
		u := from[i%len(from)]
		c, err := client.New(client.Options{Server: cfg.Server, Token: u.Token})
		if err != nil {
			return res, err
		}
		conns[i] = c
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = c.Connect(cctx)
		if err == nil && i < len(from) {
			var m *pb.Message
			m, err = c.Send(cctx, &pb.SendRequest{Peer: &pb.Peer{Username: recv.Username}, Text: e.text(0, i)})
			if err == nil {
				chats[i] = m.ChatId
			}
		}
		cancel()
		if err != nil {
			return res, fmt.Errorf("as %s: %w", u.Username, err)
		}
	}

	// The device connects once to learn where its log stands, and goes away.
	dev, err := client.New(client.Options{Server: cfg.Server, Token: recv.Token, Follow: true, Pts: -1})
	if err != nil {
		return res, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = dev.Connect(cctx)
	cancel()
	if err != nil {
		return res, fmt.Errorf("connect as %s: %w", recv.Username, err)
	}
	saved := dev.Pts()
	dev.Close()

	fmt.Fprintf(cfg.Log, "device of %s offline at pts %d; %d users send it %d messages over %d connections\n", recv.Username, saved, len(from), cfg.Missed, len(conns))
	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var (
		accepted atomic.Int64
		limited  atomic.Int64
		errMu    sync.Mutex
		next     atomic.Int64
		wg       sync.WaitGroup
		t0       = time.Now()
	)
	for w := range cfg.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Worker w sends over connection k, which belongs to sender
			// user k % len(from), into that user's chat with the device.
			k := w % len(conns)
			c, chat := conns[k], chats[k%len(from)]
			for {
				i := int(next.Add(1)) // 1 … Missed
				if i > cfg.Missed || sctx.Err() != nil {
					return
				}
				err := sendPaced(sctx, c, &pb.SendRequest{Peer: &pb.Peer{ChatId: chat}, Text: e.text(1, i)}, &limited)
				if err != nil {
					errMu.Lock()
					res.Failed++
					res.Errors[errorKind(err)]++
					errMu.Unlock()
					continue
				}
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	res.SendSecs = time.Since(t0).Seconds()
	res.Accepted = int(accepted.Load())
	res.SendRate = float64(res.Accepted) / res.SendSecs
	res.RateLimited = int(limited.Load())
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Accepted == 0 {
		return res, fmt.Errorf("no send was accepted")
	}

	fmt.Fprintf(cfg.Log, "%d messages sent in %.1f s; the device reconnects at pts %d\n", res.Accepted, res.SendSecs, saved)
	before, err := SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	cctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	dev, err = client.New(client.Options{Server: cfg.Server, Token: recv.Token, Follow: true, Pts: saved, EventBuffer: 4096})
	if err != nil {
		return res, err
	}
	defer dev.Close()
	if err := dev.Connect(cctx); err != nil {
		return res, fmt.Errorf("reconnect as %s: %w", recv.Username, err)
	}
	seen := make([]bool, cfg.Missed+1)
	res.InOrder = true
	last := saved
	var end time.Time
loop:
	for res.Received < res.Accepted {
		select {
		case <-cctx.Done():
			break loop
		case ev, ok := <-dev.Events():
			if !ok {
				break loop
			}
			u := ev.Update
			if u == nil {
				continue
			}
			if u.Pts != last+1 {
				res.InOrder = false
			}
			last = u.Pts
			step, i, ok := parseMarker(u.GetNewMessage().GetText())
			if !ok || step != 1 || i < 1 || i > cfg.Missed {
				res.Other++
				continue
			}
			if seen[i] {
				res.Duplicates++
				continue
			}
			seen[i] = true
			if res.Received == 0 {
				res.FirstUpdateMs = MillisOf(time.Since(start))
			}
			res.Received++
			end = time.Now()
		}
	}
	if res.Received > 0 {
		res.CatchUpSecs = end.Sub(start).Seconds()
		res.UpdatesPerSec = float64(res.Received) / res.CatchUpSecs
	}
	if after, err := SampleServer(ctx, cfg.Server); err == nil {
		res.Server = Diff(before, after)
	}
	if res.Received < res.Accepted {
		return res, fmt.Errorf("the device received %d of %d missed messages within %s", res.Received, res.Accepted, cfg.Timeout)
	}
	return res, ctx.Err()
}

// sendPaced sends one message "as fast as allowed": a send refused with
// RATE_LIMITED is retried after the server's retry_after (the same random
// id, so it is stored once), and counted in limited.
func sendPaced(ctx context.Context, c *client.Client, req *pb.SendRequest, limited *atomic.Int64) error {
	req.RandomId = client.RandomID()
	for {
		_, err := c.Send(ctx, req)
		var he *herald.Error
		if !errors.As(err, &he) || he.Kind != herald.RateLimited {
			return err
		}
		limited.Add(1)
		wait := max(he.RetryAfter, 10*time.Millisecond)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
