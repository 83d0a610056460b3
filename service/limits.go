package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldim/herald"
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
	// TypingEvery is how often one user's typing in one chat reaches the
	// other members; more often is dropped quietly (per node).
	TypingEvery time.Duration
	// CreatesPerHour is how many groups, channels, invite links and bots
	// one user may create per hour (at most that many at once).
	CreatesPerHour int
	// MaxOwnedChats is how many groups and channels one user may own.
	MaxOwnedChats int
	// ReportsPerHour is how many reports one user may file per hour.
	ReportsPerHour int
	// MemberChangesPerMinute is how many calls adding or removing members
	// or changing roles one user may make per minute.
	MemberChangesPerMinute int
	// MaxDevices is how many devices (logged-in sessions) one account
	// may have at once; a login past it is refused until one is revoked.
	MaxDevices int
	// CallRing is how long a call rings before it counts as missed.
	CallRing time.Duration
}

// DefaultLimits are generous for people and tight for scripts.
var DefaultLimits = Limits{
	SignupsPerHourPerAddr:  20,
	DirectPerSecond:        10,
	GroupPerSecond:         5,
	ChannelPerSecond:       5,
	NewAccountAge:          72 * time.Hour,
	NewAccountChatsPerDay:  50,
	JoinsPerMinutePerChat:  120,
	TypingEvery:            3 * time.Second,
	CreatesPerHour:         60,
	MaxOwnedChats:          500,
	ReportsPerHour:         30,
	MemberChangesPerMinute: 20,
	MaxDevices:             100,
	CallRing:               herald.CallRingTimeout,
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
	if l.CallRing <= 0 {
		l.CallRing = d.CallRing
	}
	if l.TypingEvery <= 0 {
		l.TypingEvery = d.TypingEvery
	}
	if l.CreatesPerHour <= 0 {
		l.CreatesPerHour = d.CreatesPerHour
	}
	if l.MaxOwnedChats <= 0 {
		l.MaxOwnedChats = d.MaxOwnedChats
	}
	if l.ReportsPerHour <= 0 {
		l.ReportsPerHour = d.ReportsPerHour
	}
	if l.MemberChangesPerMinute <= 0 {
		l.MemberChangesPerMinute = d.MemberChangesPerMinute
	}
	if l.MaxDevices <= 0 {
		l.MaxDevices = d.MaxDevices
	}
	return l
}

// buckets is where token buckets live: in this node's memory, or in the
// store when several nodes share it (store.Rates), so that a user who
// spreads requests over nodes still meets one limit.
type buckets interface {
	TakeToken(ctx context.Context, key string, every time.Duration, burst int, spend bool) (time.Duration, error)
}

// keyed is one limit: a token bucket per key, named so that limits do not
// share buckets.
type keyed struct {
	b     buckets
	name  string
	every time.Duration
	burst int
	what  string
}

func newKeyed(b buckets, name string, perSecond float64, burst int, what string) *keyed {
	return &keyed{b: b, name: name, every: time.Duration(float64(time.Second) / perSecond), burst: max(1, burst), what: what}
}

// take spends one token for key, or says how long to wait.
func (k *keyed) take(ctx context.Context, key string) error {
	wait, err := k.b.TakeToken(ctx, k.name+":"+key, k.every, k.burst, true)
	if err != nil {
		return err
	}
	return k.refuse(wait)
}

// takeN spends n tokens for key at once, or none: a request that does n
// items of work pays for each before any is done. From a full bucket a
// batch larger than burst still goes through and leaves the bucket in
// debt, so one legitimate large batch works while the rate over time
// holds. It is two steps on the buckets: a take whose burst leaves room
// for exactly n tokens (so its refusal is the wait until n are there),
// then one charge of the other n-1 with room that always admits it.
// Requests racing in between may overdraw by less than one batch.
func (k *keyed) takeN(ctx context.Context, key string, n int) error {
	if n <= 1 {
		return k.take(ctx, key)
	}
	wait, err := k.b.TakeToken(ctx, k.name+":"+key, k.every, max(1, k.burst-n+1), true)
	if err != nil {
		return err
	}
	if wait > 0 {
		return k.refuse(wait)
	}
	_, err = k.b.TakeToken(ctx, k.name+":"+key, time.Duration(n-1)*k.every, k.burst+2, true)
	return err
}

// check says how long to wait if key has no token left, spending nothing.
func (k *keyed) check(ctx context.Context, key string) error {
	wait, err := k.b.TakeToken(ctx, k.name+":"+key, k.every, k.burst, false)
	if err != nil {
		return err
	}
	return k.refuse(wait)
}

func (k *keyed) refuse(wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	return &herald.Error{Kind: herald.RateLimited, Msg: fmt.Sprintf("too many %s; try again in %s", k.what, wait.Round(time.Second)+time.Second), RetryAfter: wait}
}

// limiters holds the service's keyed limits.
type limiters struct {
	signup, direct, group, channel, newChats, joins *keyed
	// Failed logins per username and per address, so that guessing a
	// password costs hours, not seconds: spent before the password is
	// hashed, given back after a success (Service.Login).
	loginName, loginAddr *keyed
	newAge               time.Duration
	// Rows a user creates for free: chats, invite links, bots; reports.
	creates, reports *keyed
	maxOwned         int
	members          *keyed // membership changes per user
	maxDevices       int
}

func newLimiters(b buckets, l Limits) *limiters {
	l = l.withDefaults()
	return &limiters{
		signup:     newKeyed(b, "signup", float64(l.SignupsPerHourPerAddr)/3600, l.SignupsPerHourPerAddr, "signups from this address"),
		direct:     newKeyed(b, "direct", l.DirectPerSecond, int(2*l.DirectPerSecond), "messages"),
		group:      newKeyed(b, "group", l.GroupPerSecond, int(2*l.GroupPerSecond), "messages to groups"),
		channel:    newKeyed(b, "channel", l.ChannelPerSecond, int(2*l.ChannelPerSecond), "channel posts"),
		newChats:   newKeyed(b, "newchats", float64(l.NewAccountChatsPerDay)/86400, l.NewAccountChatsPerDay, "new conversations for a new account"),
		joins:      newKeyed(b, "joins", float64(l.JoinsPerMinutePerChat)/60, l.JoinsPerMinutePerChat, "joins of this chat right now"),
		loginName:  newKeyed(b, "login-name", 1.0/12, 5, "failed logins"),
		loginAddr:  newKeyed(b, "login-addr", 1.0/3, 20, "failed logins"),
		newAge:     l.NewAccountAge,
		creates:    newKeyed(b, "creates", float64(l.CreatesPerHour)/3600, l.CreatesPerHour, "chats, links and bots created"),
		reports:    newKeyed(b, "reports", float64(l.ReportsPerHour)/3600, l.ReportsPerHour, "reports"),
		maxOwned:   l.MaxOwnedChats,
		members:    newKeyed(b, "members", float64(l.MemberChangesPerMinute)/60, l.MemberChangesPerMinute, "membership changes"),
		maxDevices: l.MaxDevices,
	}
}

func key(id int64) string { return fmt.Sprint(id) }

// typingGate lets one typing notice per user and chat through every
// interval. Typing is ephemeral, so the gate is per node and forgets
// freely: bounded memory matters more than exactness.
type typingGate struct {
	mu    sync.Mutex
	every time.Duration
	last  map[[2]int64]time.Time
	now   func() time.Time
}

func newTypingGate(every time.Duration, now func() time.Time) *typingGate {
	return &typingGate{every: every, last: map[[2]int64]time.Time{}, now: now}
}

// open reports whether a typing notice of userID in chatID goes out now,
// and if so counts it.
func (g *typingGate) open(userID, chatID int64) bool {
	now := g.now()
	k := [2]int64{userID, chatID}
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.last[k]; ok && now.Sub(t) < g.every {
		return false
	}
	if len(g.last) >= 100_000 {
		for k, t := range g.last {
			if now.Sub(t) >= g.every {
				delete(g.last, k)
			}
		}
		if len(g.last) >= 100_000 {
			clear(g.last)
		}
	}
	g.last[k] = now
	return true
}
