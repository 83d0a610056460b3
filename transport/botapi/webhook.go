package botapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/egress"
	"github.com/heraldim/herald/service"
)

// webhooker delivers one bot's updates to its webhook, one at a time and
// in order: an update is forgotten only after the bot's server answered
// 2xx; a failure is retried with exponential backoff.
type webhooker struct {
	botID int64
	quit  chan struct{}

	mu      sync.Mutex
	errAt   time.Time
	errText string
	holding bool          // this node holds the bot's lease
	changed chan struct{} // a signal (capacity 1) that holding changed
}

func hookLease(botID int64) string { return fmt.Sprintf("webhook:%d", botID) }

func (h *webhooker) setHolding(v bool) {
	h.mu.Lock()
	was := h.holding
	h.holding = v
	h.mu.Unlock()
	if was != v {
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
}

func (h *webhooker) isHolding() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.holding
}

// Start begins webhook delivery for every bot that has a webhook, and
// looks again every WebhookLease for webhooks set through other nodes.
// Every node runs a deliverer for every webhook bot, and the bot's lease
// in the store picks the one that delivers; the others stand by to take
// over when its node dies. One statement every third of a lease renews
// the leases this node holds and tries to take the others, however many
// bots there are (keepLeases).
func (a *API) Start(ctx context.Context) error {
	if err := a.scanHooks(ctx); err != nil {
		return err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.keepLeases(ctx)
	}()
	return nil
}

// keepLeases runs until the API closes: it renews and takes the webhook
// leases at once when a webhook is added (kick) and every third of a
// lease, and looks for webhooks set through other nodes every lease.
func (a *API) keepLeases(ctx context.Context) {
	ttl := a.opts.WebhookLease
	renew := time.NewTicker(ttl / 3)
	defer renew.Stop()
	scanned, renewed := time.Now(), time.Now()
	for {
		select {
		case <-a.stop:
			return
		case <-renew.C:
		case <-a.kick:
		}
		if time.Since(scanned) >= ttl {
			scanned = time.Now()
			if err := a.scanHooks(ctx); err != nil {
				a.log.Warn("looking for webhooks failed", "err", err)
			}
		}
		a.mu.Lock()
		hooks := make([]*webhooker, 0, len(a.hooks))
		names := make([]string, 0, len(a.hooks))
		for _, h := range a.hooks {
			hooks = append(hooks, h)
			names = append(names, hookLease(h.botID))
		}
		a.mu.Unlock()
		if len(hooks) == 0 {
			continue
		}
		held, err := a.svc.HoldLeases(ctx, names, ttl)
		if err != nil {
			a.log.Warn("renewing webhook leases failed", "err", err)
			// Past two thirds of a lease without a renewal, another
			// node may take them: stop before it can start.
			if time.Since(renewed) > ttl*2/3 {
				for _, h := range hooks {
					h.setHolding(false)
				}
			}
			continue
		}
		renewed = time.Now()
		mine := make(map[string]bool, len(held))
		for _, n := range held {
			mine[n] = true
		}
		for _, h := range hooks {
			h.setHolding(mine[hookLease(h.botID)])
		}
	}
}

func (a *API) scanHooks(ctx context.Context) error {
	bots, err := a.svc.WebhookBots(ctx)
	if err != nil {
		if herald.IsKind(err, herald.Unavailable) {
			return nil // a store without bots, or one down for now
		}
		return err
	}
	for _, b := range bots {
		a.ensureHook(b)
	}
	return nil
}

// ensureHook starts or stops delivery for b to match its webhook setting.
func (a *API) ensureHook(b herald.Bot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hooks[b.UserID]
	switch {
	case b.WebhookURL == "" && h != nil:
		close(h.quit)
		delete(a.hooks, b.UserID)
	case b.WebhookURL != "" && h == nil:
		select {
		case <-a.stop:
			return
		default:
		}
		h = &webhooker{botID: b.UserID, quit: make(chan struct{}), changed: make(chan struct{}, 1)}
		a.hooks[b.UserID] = h
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.deliver(h)
		}()
		select {
		case a.kick <- struct{}{}: // take its lease now, not at the next tick
		default:
		}
	}
}

func (a *API) hookError(botID int64) (time.Time, string) {
	a.mu.Lock()
	h := a.hooks[botID]
	a.mu.Unlock()
	if h == nil {
		return time.Time{}, ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errAt, h.errText
}

// deliver runs until the webhook is removed or the API closes, and
// delivers while this node holds the bot's lease: one node at a time, so
// a bot is not sent each update once per node. When the holder dies its
// lease lapses and another node goes on from the last update the bot
// confirmed; the update in flight then may come twice, as the Bot API
// allows (a bot recognises it by update_id).
func (a *API) deliver(h *webhooker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.quit:
		case <-a.stop:
		}
		cancel()
	}()
	defer func() {
		// A node that stops hands the bot over at once rather than when
		// the lease lapses.
		if a.aborted.Load() {
			return
		}
		rctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		a.svc.ReleaseLease(rctx, hookLease(h.botID))
	}()
	for ctx.Err() == nil {
		if !h.isHolding() {
			select {
			case <-h.changed:
			case <-ctx.Done():
			}
			continue
		}
		held, lost := context.WithCancel(ctx)
		go func() {
			for {
				select {
				case <-held.Done():
					return
				case <-h.changed:
					if !h.isHolding() {
						lost()
						return
					}
				}
			}
		}()
		gone := a.deliverHeld(held, h)
		lost()
		if gone {
			return
		}
	}
}

// deliverHeld delivers until ctx ends (false) or the webhook is gone
// (true).
func (a *API) deliverHeld(ctx context.Context, h *webhooker) bool {
	var after int64
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		b, err := a.svc.Bot(ctx, service.Caller{UserID: h.botID, Bot: true})
		if err != nil || b.WebhookURL == "" || b.Deleted {
			if err == nil || herald.IsKind(err, herald.NotFound) {
				a.mu.Lock()
				if a.hooks[h.botID] == h {
					delete(a.hooks, h.botID)
				}
				a.mu.Unlock()
				return true
			}
			backoff = a.sleep(ctx, backoff)
			continue
		}
		caller := service.Caller{UserID: b.UserID, Username: b.Username, Bot: true}
		rd := newRenderer(a.svc, caller)
		ups, last, err := a.svc.BotUpdates(ctx, caller, b, after, 100)
		if err != nil {
			backoff = a.sleep(ctx, backoff)
			continue
		}
		failed := false
		for _, bu := range ups {
			u := rd.update(ctx, bu)
			if len(b.AllowedUpdates) > 0 && !slices.Contains(b.AllowedUpdates, u.kind()) {
				continue
			}
			if err := a.post(ctx, b, caller, u); err != nil {
				h.mu.Lock()
				// The bot's owner sees what Telegram would show, never the
				// dialler's words (addresses, ports): the log has those.
				h.errAt, h.errText = time.Now(), describe(err)
				h.mu.Unlock()
				a.log.Warn("webhook delivery failed", "bot", b.UserID, "update", bu.ID, "err", err)
				failed = true
				break
			}
			after = bu.ID
			if err := a.svc.ConfirmBotUpdates(ctx, caller, bu.ID+1); err != nil {
				failed = true
				break
			}
		}
		if failed {
			backoff = a.sleep(ctx, backoff)
			continue
		}
		backoff = 0
		if last > after {
			after = last
			if err := a.svc.ConfirmBotUpdates(ctx, caller, last+1); err != nil {
				continue
			}
		}
		if len(ups) > 0 {
			continue // there may be more
		}
		// Subscribed afresh each round, as the bot may have joined a
		// channel, and before looking once more, so that nothing logged
		// between the read above and the subscription is missed.
		wake, stop, err := a.wake(ctx, caller)
		if err != nil {
			backoff = a.sleep(ctx, backoff)
			continue
		}
		if more, _, err := a.svc.BotUpdates(ctx, caller, b, after, 1); err == nil && len(more) > 0 {
			stop()
			continue
		}
		select {
		case <-wake:
		case <-time.After(30 * time.Second):
			// Bus events are not durable: a periodic look catches one lost.
		case <-ctx.Done():
		}
		stop()
	}
	return false
}

// sleep waits out the next backoff step and returns the one after.
func (a *API) sleep(ctx context.Context, d time.Duration) time.Duration {
	if d == 0 {
		d = a.opts.WebhookBackoff
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return min(2*d, time.Minute)
}

// post sends one update. A 2xx answer may carry a method call, which is
// run as the bot (Telegram allows one per answer; telegraf uses it).
func (a *API) post(ctx context.Context, b herald.Bot, caller service.Caller, u Update) error {
	body, err := json.Marshal(u)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if b.WebhookSecret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", b.WebhookSecret)
	}
	resp, err := a.opts.WebhookClient.Do(req)
	if err != nil {
		return fmt.Errorf("connection failed: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &wrongResponse{code: resp.StatusCode}
	}
	var call map[string]json.RawMessage
	if json.Unmarshal(reply, &call) == nil && call["method"] != nil {
		var name string
		json.Unmarshal(call["method"], &name)
		p := params{v: map[string]string{}}
		for k, raw := range call {
			var s string
			if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
				p.v[k] = s
			} else {
				p.v[k] = string(raw)
			}
		}
		if _, err := a.call(ctx, caller, b, name, p); err != nil {
			a.log.Warn("webhook reply method failed", "bot", b.UserID, "method", name, "err", err)
		}
	}
	return nil
}

// wrongResponse is a webhook's answer other than 2xx (a redirect too:
// none is followed).
type wrongResponse struct{ code int }

func (e *wrongResponse) Error() string {
	return fmt.Sprintf("Wrong response from the webhook: %d %s", e.code, http.StatusText(e.code))
}

// describe is getWebhookInfo's last_error_message for a delivery error.
func describe(err error) string {
	var wr *wrongResponse
	if errors.As(err, &wr) {
		return wr.Error()
	}
	return egress.Describe(err)
}
