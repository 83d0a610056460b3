package service

import (
	"fmt"
	"sync"
	"time"

	"github.com/heraldim/herald"
	"golang.org/x/time/rate"
)

// Limits are the abuse limits. Exceeding one gives RATE_LIMITED with the
// time to wait; nothing is ever dropped silently. Zero fields take the
// defaults in DefaultLimits.
type Limits struct {
	SignupsPerHourPerAddr int           // accounts one network address may create per hour
	DirectPerSecond       float64       // messages a user may send per second into direct chats
	GroupPerSecond        float64       // … into groups
	ChannelPerSecond      float64       // … into channels
	NewAccountAge         time.Duration // how long an account counts as new
	NewAccountChatsPerDay int           // direct chats a new account may start per day (messages to non-contacts)
	JoinsPerMinutePerChat int           // joins of one group or channel per minute (join floods)
}

// DefaultLimits are generous for people and tight for scripts.
var DefaultLimits = Limits{
	SignupsPerHourPerAddr: 20,
	DirectPerSecond:       10,
	GroupPerSecond:        5,
	ChannelPerSecond:      5,
	NewAccountAge:         72 * time.Hour,
	NewAccountChatsPerDay: 50,
	JoinsPerMinutePerChat: 120,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.SignupsPerHourPerAddr <= 0 {
		l.SignupsPerHourPerAddr = d.SignupsPerHourPerAddr
	}
	if l.DirectPerSecond <= 0 {
		l.DirectPerSecond = d.DirectPerSecond
	}
	if l.GroupPerSecond <= 0 {
		l.GroupPerSecond = d.GroupPerSecond
	}
	if l.ChannelPerSecond <= 0 {
		l.ChannelPerSecond = d.ChannelPerSecond
	}
	if l.NewAccountAge <= 0 {
		l.NewAccountAge = d.NewAccountAge
	}
	if l.NewAccountChatsPerDay <= 0 {
		l.NewAccountChatsPerDay = d.NewAccountChatsPerDay
	}
	if l.JoinsPerMinutePerChat <= 0 {
		l.JoinsPerMinutePerChat = d.JoinsPerMinutePerChat
	}
	return l
}

// keyed is a set of token buckets by key, with bounded memory.
type keyed struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	limit rate.Limit
	burst int
	what  string
}

func newKeyed(limit rate.Limit, burst int, what string) *keyed {
	return &keyed{m: map[string]*rate.Limiter{}, limit: limit, burst: max(1, burst), what: what}
}

// take spends one token for key, or says how long to wait.
func (k *keyed) take(key string, now time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	lim := k.m[key]
	if lim == nil {
		if len(k.m) > 100_000 {
			clear(k.m) // forgetting old keys errs on the side of the user
		}
		lim = rate.NewLimiter(k.limit, k.burst)
		k.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &herald.Error{Kind: herald.RateLimited, Msg: fmt.Sprintf("too many %s; try again in %s", k.what, d.Round(time.Second)+time.Second), RetryAfter: d}
	}
	return nil
}

// limiters holds the service's keyed limits.
type limiters struct {
	signup, direct, group, channel, newChats, joins *keyed
	newAge                                          time.Duration
}

func newLimiters(l Limits) *limiters {
	l = l.withDefaults()
	return &limiters{
		signup:   newKeyed(rate.Limit(float64(l.SignupsPerHourPerAddr)/3600), l.SignupsPerHourPerAddr, "signups from this address"),
		direct:   newKeyed(rate.Limit(l.DirectPerSecond), int(2*l.DirectPerSecond), "messages"),
		group:    newKeyed(rate.Limit(l.GroupPerSecond), int(2*l.GroupPerSecond), "messages to groups"),
		channel:  newKeyed(rate.Limit(l.ChannelPerSecond), int(2*l.ChannelPerSecond), "channel posts"),
		newChats: newKeyed(rate.Limit(float64(l.NewAccountChatsPerDay)/86400), l.NewAccountChatsPerDay, "new conversations for a new account"),
		joins:    newKeyed(rate.Limit(float64(l.JoinsPerMinutePerChat)/60), l.JoinsPerMinutePerChat, "joins of this chat right now"),
		newAge:   l.NewAccountAge,
	}
}

func key(id int64) string { return fmt.Sprint(id) }
