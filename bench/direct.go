package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// LoadConfig holds what the messaging scenarios (direct, group) share.
type LoadConfig struct {
	Server string // base URL, e.g. http://127.0.0.1:8080 (see CheckServer)
	Rate   float64
	// InFlight > 0 runs direct closed loop instead of at Rate: each
	// sender keeps this many sends awaiting an answer.
	InFlight int
	Duration time.Duration
	// TextSize pads each message's text to this many bytes (default 64).
	TextSize int
	// Drain is how long after the schedule ends the run waits for
	// outstanding answers and deliveries (default 10 s).
	Drain time.Duration
	// MaxInFlight caps sends waiting for an answer; sends due beyond it
	// are skipped and reported (default 50,000).
	MaxInFlight int
	// Parallel bounds concurrent setup work: connecting clients, creating
	// chats (default 32).
	Parallel int
	Accounts *Accounts
	Log      io.Writer // progress; io.Discard if nil
}

func (c *LoadConfig) defaults() {
	if c.TextSize <= 0 {
		c.TextSize = 64
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 50_000
	}
	if c.Parallel <= 0 {
		c.Parallel = 32
	}
	if c.Accounts == nil {
		c.Accounts = &Accounts{Parallel: 4}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// DirectResult is the outcome of the direct scenario.
type DirectResult struct {
	Scenario string `json:"scenario"`
	Pairs    int    `json:"pairs"`
	LoadResult
}

// Direct is an open prepared direct scenario: pairs of users, each pair in
// its own direct chat, sending to each other in both directions. Run it
// once, or several times (as Max does), then Close it.
type Direct struct {
	cfg   LoadConfig
	pairs int
	chats []int64 // pair p's direct chat
	e     *loadEngine
}

// NewDirect signs in 2*pairs users (from cfg.Accounts), connects a
// following client for each, and creates each pair's direct chat with one
// warm-up message.
func NewDirect(ctx context.Context, cfg LoadConfig, pairs int) (*Direct, error) {
	cfg.defaults()
	if pairs < 1 {
		return nil, fmt.Errorf("--pairs must be at least 1")
	}
	accs, err := cfg.Accounts.Take(ctx, cfg.Server, 2*pairs)
	if err != nil {
		return nil, err
	}
	e := &loadEngine{server: cfg.Server, fanout: 1, textSize: cfg.TextSize, maxInFlight: cfg.MaxInFlight, drain: cfg.Drain, log: cfg.Log}
	fmt.Fprintf(cfg.Log, "connecting %d clients\n", len(accs))
	if err := e.connectMembers(ctx, accs, cfg.Parallel); err != nil {
		e.close()
		return nil, err
	}
	chats := make([]int64, pairs)
	fmt.Fprintf(cfg.Log, "opening %d direct chats\n", pairs)
	err = forEach(ctx, pairs, cfg.Parallel, func(p int) error {
		a, b := e.members[2*p], e.members[2*p+1]
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		m, err := a.c.Send(sctx, &pb.SendRequest{Peer: &pb.Peer{Username: b.name}, Text: e.text(0, p)})
		if err != nil {
			return fmt.Errorf("opening the chat of %s and %s: %w", a.name, b.name, err)
		}
		chats[p] = m.ChatId
		return nil
	})
	if err != nil {
		e.close()
		return nil, err
	}
	// Message i goes from one member of pair i%pairs to the other, the
	// direction alternating with every round over the pairs.
	e.target = func(i int) (*member, int64) {
		p := i % pairs
		return e.members[2*p+(i/pairs)%2], chats[p]
	}
	return &Direct{cfg: cfg, pairs: pairs, chats: chats, e: e}, nil
}

// Run sends at rate for d and reports.
func (d *Direct) Run(ctx context.Context, rate float64, dur time.Duration) (DirectResult, error) {
	r, err := d.e.run(ctx, rate, dur)
	return DirectResult{Scenario: "direct", Pairs: d.pairs, LoadResult: r}, err
}

// RunClosed runs the closed loop for dur: the first member of every pair
// sends to the other, addressing the chat by id as clients do, and keeps
// inFlight sends awaiting an answer.
func (d *Direct) RunClosed(ctx context.Context, inFlight int, dur time.Duration) (DirectResult, error) {
	if inFlight < 1 {
		return DirectResult{}, fmt.Errorf("--in-flight must be at least 1")
	}
	senders := make([]sender, d.pairs)
	for p := range senders {
		senders[p] = sender{from: d.e.members[2*p], chat: d.chats[p]}
	}
	r, err := d.e.runClosed(ctx, senders, inFlight, dur)
	return DirectResult{Scenario: "direct", Pairs: d.pairs, LoadResult: r}, err
}

// Close disconnects every client.
func (d *Direct) Close() { d.e.close() }

// RunDirect prepares the direct scenario, runs it once at cfg.Rate (or
// closed loop with cfg.InFlight) for cfg.Duration, and closes it.
func RunDirect(ctx context.Context, cfg LoadConfig, pairs int) (DirectResult, error) {
	d, err := NewDirect(ctx, cfg, pairs)
	if err != nil {
		return DirectResult{}, err
	}
	defer d.Close()
	if cfg.InFlight > 0 {
		return d.RunClosed(ctx, cfg.InFlight, d.cfg.Duration)
	}
	return d.Run(ctx, d.cfg.Rate, d.cfg.Duration)
}

// GroupResult is the outcome of the group scenario.
type GroupResult struct {
	Scenario string `json:"scenario"`
	Members  int    `json:"members"`
	LoadResult
}

// RunGroup puts members users in one group (fan-out on write: every
// message is logged once per member) and has them take turns sending at
// cfg.Rate for cfg.Duration; every message is expected on the devices of
// the members-1 others.
func RunGroup(ctx context.Context, cfg LoadConfig, members int) (GroupResult, error) {
	cfg.defaults()
	if members < 2 {
		return GroupResult{}, fmt.Errorf("--members must be at least 2")
	}
	accs, err := cfg.Accounts.Take(ctx, cfg.Server, members)
	if err != nil {
		return GroupResult{}, err
	}
	e := &loadEngine{server: cfg.Server, fanout: members - 1, textSize: cfg.TextSize, maxInFlight: cfg.MaxInFlight, drain: cfg.Drain, log: cfg.Log}
	defer e.close()
	fmt.Fprintf(cfg.Log, "connecting %d clients\n", len(accs))
	if err := e.connectMembers(ctx, accs, cfg.Parallel); err != nil {
		return GroupResult{}, err
	}
	chat, err := createGroup(ctx, e.members[0].c, accs[1:])
	if err != nil {
		return GroupResult{}, err
	}
	e.target = func(i int) (*member, int64) { return e.members[i%members], chat }
	r, err := e.run(ctx, cfg.Rate, cfg.Duration)
	return GroupResult{Scenario: "group", Members: members, LoadResult: r}, err
}

// createGroup creates a group owned by c's user with the given members,
// 200 names per request (the protocol's limit).
func createGroup(ctx context.Context, c *client.Client, others []Account) (int64, error) {
	const batch = 200
	names := make([]string, len(others))
	for i, a := range others {
		names[i] = a.Username
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	first := names[:min(batch, len(names))]
	ch, err := c.CreateGroup(ctx, "herald-bench", first)
	if err != nil {
		return 0, fmt.Errorf("creating the group: %w", err)
	}
	for rest := names[len(first):]; len(rest) > 0; {
		n := min(batch, len(rest))
		err := c.AddMembers(ctx, ch.Id, rest[:n])
		var he *herald.Error
		if errors.As(err, &he) && he.Kind == herald.RateLimited {
			// Membership changes are rate-limited per user (heraldd
			// -member-rate): a group of many thousands waits its turn.
			select {
			case <-time.After(he.RetryAfter):
				continue
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if err != nil {
			return 0, fmt.Errorf("adding members to the group: %w", err)
		}
		rest = rest[n:]
	}
	return ch.Id, nil
}
