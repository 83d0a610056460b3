// Package nats is the Bus for Herald deployments of several nodes: every
// node connects to the same NATS cluster, and a message published on one
// node reaches the subscribers of its topic on every node.
//
// # Topics and subjects
//
// A topic maps to the NATS subject prefix + "." + topic, so bus.UserTopic(123)
// is "herald.u.123" with the default prefix. Give each Herald deployment that
// shares a NATS cluster its own prefix (or, better, its own NATS account).
// Topics must be valid literal subjects: non-empty dot-separated tokens
// without whitespace or the wildcards '*' and '>', so that a topic can never
// widen into a subscription to other users' events.
//
// # Connection
//
// Open connects to any of the given servers and, once connected, reconnects
// forever with jittered exponential backoff. The reconnect buffer of nats.go
// is disabled: while the connection is down Publish fails at once with
// UNAVAILABLE instead of queueing messages that the store already holds.
// Subscriptions survive a reconnect (nats.go sends them again), but messages
// published while the connection was down are not delivered.
//
// # Slow consumers and loss
//
// Each subscription's handler runs on its own goroutine, fed by a queue that
// nats.go bounds with pending limits (see PendingLimits). When a handler
// falls that far behind, nats.go drops the subscription's further messages
// until it catches up; the NATS server likewise cuts off a connection whose
// outbound buffer overflows, which shows up here as a reconnect. Neither is
// an error for the publisher. This is the policy bus.Bus allows — the bus is
// a notification path and the store is the record — so both are logged and
// reported to the OnLoss callback, with which the node can tell the affected
// connections to sync from the store. Order is never broken: a subscriber
// may miss messages but never receives them out of order.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
)

// Defaults for the options.
const (
	// DefaultPrefix is the subject prefix of every topic.
	DefaultPrefix = "herald"
	// DefaultPendingMsgs and DefaultPendingBytes bound each subscription's
	// queue of messages its handler has not taken yet. Handlers only decode
	// and enqueue, so a backlog this deep means the node is overloaded, and
	// dropping (then resyncing from the store) is better than growing.
	DefaultPendingMsgs  = 10_000
	DefaultPendingBytes = 16 << 20
	// DefaultReconnectMin and DefaultReconnectMax bound the wait between
	// rounds of reconnect attempts: short for a server restart, long enough
	// that a cluster-wide outage is not hammered by every node at once.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
)

// Bus is a bus.Bus on a NATS connection. It is safe for concurrent use.
type Bus struct {
	nc     *natsgo.Conn
	prefix string // "" or ends with '.'
	log    *slog.Logger
	onLoss func(topic string)
	pMsgs  int
	pBytes int

	mu     sync.Mutex
	subs   map[*sub]struct{} // live subscriptions, so Close can stop them
	closed bool
}

var _ bus.Bus = (*Bus)(nil)

type config struct {
	prefix      string
	log         *slog.Logger
	onLoss      func(string)
	pMsgs       int
	pBytes      int
	backoffMin  time.Duration
	backoffMax  time.Duration
	natsOptions []natsgo.Option
	err         error
}

// Option configures Open.
type Option func(*config)

// Prefix sets the subject prefix (default "herald"); "" maps topics to
// subjects unchanged.
func Prefix(p string) Option {
	return func(c *config) {
		p = strings.TrimSuffix(p, ".")
		if p != "" && !validSubject(p) {
			c.err = fmt.Errorf("bus prefix %q is not a literal NATS subject", p)
		}
		c.prefix = p
	}
}

// Logger sets the logger for connection events and dropped messages
// (default slog.Default()). Message contents are never logged.
func Logger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// PendingLimits sets how many messages and bytes may wait for one
// subscription's handler before further messages to it are dropped. A
// negative value means no limit, which lets memory grow with a stuck
// handler; zero keeps the default.
func PendingLimits(msgs, bytes int) Option {
	return func(c *config) {
		if msgs != 0 {
			c.pMsgs = msgs
		}
		if bytes != 0 {
			c.pBytes = bytes
		}
	}
}

// OnLoss sets fn to be called when messages may have been lost: with the
// subscription's topic when messages to it were dropped because its handler
// fell behind, and with "" after the connection was re-established, since
// every topic may have missed messages while it was down. fn runs on the
// connection's callback goroutine and must not block.
func OnLoss(fn func(topic string)) Option { return func(c *config) { c.onLoss = fn } }

// ReconnectBackoff sets the bounds of the wait between rounds of reconnect
// attempts (every server tried once per round). The wait doubles from
// initial up to maximum, with jitter so that many nodes do not reconnect in
// lockstep.
func ReconnectBackoff(initial, maximum time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = initial, maximum }
}

// NATSOptions passes options to nats.Connect: TLS, credentials, a
// connection name, server pool order. Options that would break the Bus's
// own guarantees — reconnect handling, the reconnect buffer, the
// callbacks it logs with — are applied after these and win.
func NATSOptions(opts ...natsgo.Option) Option {
	return func(c *config) { c.natsOptions = append(c.natsOptions, opts...) }
}

// Open connects to a NATS cluster. urls is a comma-separated list of
// server URLs ("nats://n1:4222,nats://n2:4222"); any one reachable server is
// enough, and the client learns the rest of the cluster from it. Open fails
// if no server is reachable now; after that the Bus reconnects forever.
func Open(urls string, opts ...Option) (*Bus, error) {
	c := config{
		prefix:     DefaultPrefix,
		log:        slog.Default(),
		pMsgs:      DefaultPendingMsgs,
		pBytes:     DefaultPendingBytes,
		backoffMin: DefaultReconnectMin,
		backoffMax: DefaultReconnectMax,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.err != nil {
		return nil, herald.Errorf(herald.Invalid, "%v", c.err)
	}
	if strings.TrimSpace(urls) == "" {
		return nil, herald.Errorf(herald.Invalid, "no NATS server URL given")
	}
	if c.backoffMin <= 0 || c.backoffMax < c.backoffMin {
		return nil, herald.Errorf(herald.Invalid, "reconnect backoff %v..%v: want 0 < min <= max", c.backoffMin, c.backoffMax)
	}
	b := &Bus{
		log:    c.log.With("component", "bus"),
		onLoss: c.onLoss,
		pMsgs:  c.pMsgs,
		pBytes: c.pBytes,
		subs:   map[*sub]struct{}{},
	}
	if c.prefix != "" {
		b.prefix = c.prefix + "."
	}

	nopts := []natsgo.Option{
		natsgo.Name("herald"),
		// The default (2 min, 2 outstanding) leaves a half-open connection
		// undetected for minutes, publishing into the void; 10 s keeps that
		// window, and the loss it causes, short.
		natsgo.PingInterval(10 * time.Second),
		natsgo.MaxPingsOutstanding(2),
		natsgo.CustomReconnectDelay(backoff(c.backoffMin, c.backoffMax)),
	}
	nopts = append(nopts, c.natsOptions...)
	nopts = append(nopts,
		natsgo.MaxReconnects(-1),
		// Buffering publishes while reconnecting would hide an outage from
		// the caller and deliver stale events late; the store has them.
		natsgo.ReconnectBufSize(-1),
		natsgo.NoCallbacksAfterClientClose(),
		natsgo.ErrorHandler(b.asyncError),
		natsgo.DisconnectErrHandler(b.disconnected),
		natsgo.ReconnectHandler(b.reconnected),
	)
	nc, err := natsgo.Connect(urls, nopts...)
	if err != nil {
		return nil, &herald.Error{Kind: herald.Unavailable, Op: "bus open",
			Msg: "cannot connect to NATS at " + redactURLs(urls), Err: err}
	}
	b.nc = nc
	b.log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "prefix", c.prefix)
	return b, nil
}

// backoff returns the delay before the attempt-th round of reconnects:
// exponential from lo to hi, then a uniformly random point in the upper
// half of that, so the expected delay still grows but nodes spread out.
func backoff(lo, hi time.Duration) natsgo.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := lo
		for i := 1; i < attempts && d < hi; i++ {
			d *= 2
		}
		d = min(d, hi)
		return time.Duration(float64(d) * (0.5 + rand.Float64()/2))
	}
}

// Publish implements bus.Bus. It hands the message to the connection's
// buffer and returns; it does not wait for the server. It fails with
// UNAVAILABLE while the connection is down or after Close, and with
// INVALID_ARGUMENT for a topic that is not a literal subject.
func (b *Bus) Publish(ctx context.Context, topic string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	subj, err := b.subject(topic)
	if err != nil {
		return err
	}
	if err := b.nc.Publish(subj, data); err != nil {
		return natsError("bus publish", err)
	}
	return nil
}

// Subscribe implements bus.Bus. The subscription is sent to the server
// asynchronously: messages published on this Bus after Subscribe returns
// are delivered (one connection keeps order), but a publisher on another
// node may miss the first messages until the interest has crossed the
// cluster, typically within a network round trip. Subscribing while the
// connection is down succeeds; the subscription starts once it is back.
func (b *Bus) Subscribe(topic string, fn func(data []byte)) (bus.Subscription, error) {
	subj, err := b.subject(topic)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, herald.Errorf(herald.Unavailable, "the bus is closed")
	}
	s := &sub{b: b, topic: topic, fn: fn}
	// nats.go runs each async subscription's handler on a goroutine of its
	// own, so handlers are serialised per subscription and a slow topic
	// delays only itself.
	ns, err := b.nc.Subscribe(subj, s.deliver)
	if err != nil {
		return nil, natsError("bus subscribe", err)
	}
	if err := ns.SetPendingLimits(b.pMsgs, b.pBytes); err != nil {
		_ = ns.Unsubscribe()
		return nil, natsError("bus subscribe", err)
	}
	s.ns = ns
	b.subs[s] = struct{}{}
	return s, nil
}

// Close implements bus.Bus. It stops every subscription, waiting for
// handler calls in progress, then flushes what was published and closes
// the connection. It must not be called from a handler.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
	if b.nc.IsConnected() {
		// Give published events a chance to leave; nc.Close flushes too,
		// but only a round trip shows the server has them.
		if err := b.nc.FlushTimeout(2 * time.Second); err != nil {
			b.log.Warn("flush before close", "err", err)
		}
	}
	b.nc.Close()
	return nil
}

// ConnectedURL is the URL (without credentials) of the NATS server the bus
// is connected to, or "" while it is not connected: for health checks and
// logs.
func (b *Bus) ConnectedURL() string { return b.nc.ConnectedUrlRedacted() }

// subject maps a topic to its NATS subject, refusing topics that are not
// literal subjects.
func (b *Bus) subject(topic string) (string, error) {
	if !validSubject(topic) {
		return "", herald.Errorf(herald.Invalid, "bus topic %q is not a literal NATS subject", topic)
	}
	return b.prefix + topic, nil
}

// topicOf is subject's inverse, for subscriptions nats.go reports on.
func (b *Bus) topicOf(subject string) string { return strings.TrimPrefix(subject, b.prefix) }

// validSubject reports whether s is a literal NATS subject: dot-separated
// non-empty tokens, no whitespace, no wildcards.
func validSubject(s string) bool {
	if s == "" {
		return false
	}
	tokenStart := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '.':
			if tokenStart {
				return false
			}
			tokenStart = true
			continue
		case ' ', '\t', '\r', '\n', '*', '>':
			return false
		}
		tokenStart = false
	}
	return !tokenStart
}

// asyncError receives the errors nats.go cannot return to a caller.
func (b *Bus) asyncError(_ *natsgo.Conn, ns *natsgo.Subscription, err error) {
	if errors.Is(err, natsgo.ErrSlowConsumer) && ns != nil {
		topic := b.topicOf(ns.Subject)
		dropped, _ := ns.Dropped()
		b.log.Warn("slow consumer: messages dropped; its connections must resync from the store",
			"topic", topic, "dropped_total", dropped)
		if b.onLoss != nil {
			b.onLoss(topic)
		}
		return
	}
	if ns != nil {
		b.log.Error("NATS error", "topic", b.topicOf(ns.Subject), "err", err)
		return
	}
	b.log.Error("NATS error", "err", err)
}

func (b *Bus) disconnected(nc *natsgo.Conn, err error) {
	b.log.Warn("disconnected from NATS; reconnecting", "err", err)
}

func (b *Bus) reconnected(nc *natsgo.Conn) {
	b.log.Info("reconnected to NATS; events published meanwhile were missed", "url", nc.ConnectedUrlRedacted())
	if b.onLoss != nil {
		b.onLoss("")
	}
}

// natsError turns a nats.go error into a Herald error with a kind.
func natsError(op string, err error) error {
	e := &herald.Error{Kind: herald.Unavailable, Op: op}
	switch {
	case errors.Is(err, natsgo.ErrConnectionClosed), errors.Is(err, natsgo.ErrConnectionDraining):
		e.Msg = "the bus is closed"
	case errors.Is(err, natsgo.ErrReconnectBufExceeded), errors.Is(err, natsgo.ErrConnectionReconnecting):
		e.Msg = "the bus is reconnecting to NATS"
	case errors.Is(err, natsgo.ErrMaxPayload):
		e.Kind, e.Msg = herald.TooLarge, "the event is larger than the NATS server's max_payload"
	case errors.Is(err, natsgo.ErrBadSubject):
		e.Kind, e.Msg = herald.Invalid, "bad bus topic"
	default:
		e.Msg, e.Err = "the bus is unreachable", err
	}
	return e
}

// redactURLs hides passwords and tokens in a comma-separated URL list, for
// error messages and logs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = url.User("redacted")
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// sub is one subscription. nats.go may have a message in flight to deliver
// after its Unsubscribe returns, so done, checked under mu, is what stops
// delivery, and taking mu waits for a call in progress.
type sub struct {
	b     *Bus
	topic string
	fn    func([]byte)
	ns    *natsgo.Subscription

	mu   sync.Mutex // held while fn runs
	done bool
}

// deliver is the nats.go handler. m.Data is a fresh copy made by nats.go,
// so fn may read it freely while it runs.
func (s *sub) deliver(m *natsgo.Msg) {
	s.mu.Lock()
	if !s.done {
		s.fn(m.Data)
	}
	s.mu.Unlock()
}

// stop ends delivery, waiting for a call in progress to return.
func (s *sub) stop() (first bool) {
	s.mu.Lock()
	first = !s.done
	s.done = true
	s.mu.Unlock()
	return first
}

// Unsubscribe implements bus.Subscription. It must not be called from the
// subscription's own handler, whose return it waits for.
func (s *sub) Unsubscribe() error {
	if !s.stop() {
		return nil
	}
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	// Delivery has already stopped; telling the server only saves traffic,
	// and a closed connection has no interest left to remove.
	if err := s.ns.Unsubscribe(); err != nil &&
		!errors.Is(err, natsgo.ErrConnectionClosed) && !errors.Is(err, natsgo.ErrBadSubscription) {
		return natsError("bus unsubscribe", err)
	}
	return nil
}
