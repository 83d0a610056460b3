// Package push sends Web Push messages (RFC 8030) with encrypted payloads
// (RFC 8291) signed with the server's VAPID key (RFC 8292), to browsers'
// push services and UnifiedPush distributors alike. The encryption and
// signing are webpush-go's; this package adds what a server needs around
// them: a bounded queue per endpoint so a slow push service never holds
// up another (or message delivery), backoff with jitter and Retry-After
// on 429 and 5xx, deletion of subscriptions the push service says are
// gone (404, 410), and metrics.
package push

import (
	"context"
	"crypto/ecdh"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/prometheus/client_golang/prometheus"
)

// Job is one push message to one subscription.
type Job struct {
	Endpoint string
	P256dh   string // the subscription's public key, base64url
	Auth     string // its authentication secret, base64url
	Payload  []byte // plaintext: encrypted to the subscription before it leaves
	// Topic collapses messages waiting at the push service: a later
	// message with the same topic replaces an undelivered one (RFC 8030
	// 5.4). At most 32 base64url characters.
	Topic   string
	Urgency string // very-low, low, normal or high; empty for normal
	TTL     time.Duration
	// Committed is when the event behind the push was committed, for
	// the latency metric.
	Committed time.Time
}

// Keys is a VAPID key pair, base64url without padding as webpush-go and
// the Push API's applicationServerKey take them.
type Keys struct {
	Private string
	Public  string
}

// NewKeys makes a VAPID key pair (P-256).
func NewKeys() (Keys, error) {
	k, err := ecdh.P256().GenerateKey(crand.Reader)
	if err != nil {
		return Keys{}, err
	}
	return Keys{
		Private: base64.RawURLEncoding.EncodeToString(k.Bytes()),
		Public:  base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
	}, nil
}

// Config configures a Dispatcher.
type Config struct {
	Keys Keys
	// Subscriber is the VAPID "sub" claim: a mailto: or https: URL where
	// the push service can reach the operator.
	Subscriber string
	// Client sends the requests: the egress package's client, which
	// refuses private addresses unless the operator allows them.
	Client *http.Client
	// QueueLen bounds each endpoint's queue (default 32): when full, the
	// oldest waiting message is dropped.
	QueueLen int
	// Workers is how many pushes are sent at once, over all endpoints
	// (default 32).
	Workers int
	// MaxAttempts is how often a message is tried before it is dropped
	// (default 5).
	MaxAttempts int
	// Backoff is the first retry's delay (default 1 s), doubled each
	// time up to MaxBackoff (default 5 min), with jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Gone is told of an endpoint the push service answered 404 or 410
	// for: the subscription has expired or was withdrawn.
	Gone func(ctx context.Context, endpoint string)
	// Registry, if set, gets the metrics.
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Dispatcher sends jobs, each endpoint's in order, different endpoints'
// concurrently on a fixed number of workers: a channel with many
// subscribers queues many pushes, never as many goroutines.
type Dispatcher struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	wake   *sync.Cond
	queues map[string]*queue // endpoints with jobs queued, in flight or backing off
	ready  []*queue          // queues with a job to send and no worker on them
	closed bool

	sent    prometheus.Counter
	failed  *prometheus.CounterVec
	dropped prometheus.Counter
	depth   prometheus.Gauge
	latency prometheus.Histogram
}

type queue struct {
	endpoint string
	jobs     []Job
	busy     bool // a worker is sending its first job, or it waits to retry
	attempt  int  // of jobs[0], while it is retried
	delay    time.Duration
}

// New returns a Dispatcher; Close stops it.
func New(cfg Config) *Dispatcher {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 32
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Client == nil {
		panic("push: Config.Client is required (use the egress client)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{cfg: cfg, ctx: ctx, cancel: cancel, queues: map[string]*queue{},
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_push_sent_total", Help: "Push messages a push service accepted.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_push_failed_total", Help: "Push attempts that failed, by reason: gone (404/410, subscription deleted), rate_limited (429), server (5xx), rejected (other 4xx), network, encrypt, given_up (attempts exhausted).",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_push_dropped_total", Help: "Push messages dropped, oldest first, because their endpoint's queue was full.",
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_push_queue_depth", Help: "Push messages waiting, over all endpoints.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_push_latency_seconds", Help: "Time from a message's commit to its push being accepted by the push service.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
	}
	d.wake = sync.NewCond(&d.mu)
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(d.sent, d.failed, d.dropped, d.depth, d.latency)
	}
	for range cfg.Workers {
		d.wg.Add(1)
		go d.work()
	}
	return d
}

// Enqueue queues a job for its endpoint and returns at once.
func (d *Dispatcher) Enqueue(j Job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	q, ok := d.queues[j.Endpoint]
	if !ok {
		q = &queue{endpoint: j.Endpoint}
		d.queues[j.Endpoint] = q
	}
	// The head of a busy queue is being sent: the oldest droppable job
	// is the next one.
	head := 0
	if q.busy {
		head = 1
	}
	if len(q.jobs) >= d.cfg.QueueLen+head {
		copy(q.jobs[head:], q.jobs[head+1:])
		q.jobs[len(q.jobs)-1] = Job{} // let the payload go
		q.jobs = q.jobs[:len(q.jobs)-1]
		d.dropped.Inc()
		d.depth.Dec()
	}
	q.jobs = append(q.jobs, j)
	d.depth.Inc()
	if !q.busy && len(q.jobs) == 1 {
		d.ready = append(d.ready, q)
		d.wake.Signal()
	}
}

// Close stops sending; what is still queued is dropped.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	d.closed = true
	d.wake.Broadcast()
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// work sends jobs from ready queues, one endpoint at a time.
func (d *Dispatcher) work() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		for len(d.ready) == 0 && !d.closed {
			d.wake.Wait()
		}
		if d.closed {
			d.mu.Unlock()
			return
		}
		q := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		q.busy = true
		j := q.jobs[0]
		if q.attempt == 0 {
			q.attempt, q.delay = 1, d.cfg.Backoff
		}
		attempt := q.attempt
		d.mu.Unlock()

		wait, outcome := d.attempt(j)
		d.settle(q, j, attempt, wait, outcome)
	}
}

// settle records an attempt's outcome and puts the queue back: done with
// its head, waiting to retry it, or gone.
func (d *Dispatcher) settle(q *queue, j Job, attempt int, wait time.Duration, outcome string) {
	retry := false
	switch outcome {
	case "":
		d.sent.Inc()
		if !j.Committed.IsZero() {
			d.latency.Observe(time.Since(j.Committed).Seconds())
		}
	case "gone":
		d.failed.WithLabelValues(outcome).Inc()
		if d.cfg.Gone != nil {
			d.cfg.Gone(d.ctx, j.Endpoint)
		}
		// Everything else queued for it would be refused too.
		d.mu.Lock()
		d.depth.Sub(float64(len(q.jobs)))
		q.jobs = nil
		q.busy, q.attempt = false, 0
		delete(d.queues, q.endpoint)
		d.mu.Unlock()
		return
	case "rejected", "encrypt":
		d.failed.WithLabelValues(outcome).Inc()
	default:
		d.failed.WithLabelValues(outcome).Inc()
		if attempt >= d.cfg.MaxAttempts {
			d.failed.WithLabelValues("given_up").Inc()
		} else {
			retry = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if retry {
		// Full jitter on the doubled delay; the push service's own
		// Retry-After is a floor. The queue stays busy meanwhile, so
		// its later jobs wait behind this one, and no worker sleeps.
		sleep := time.Duration(rand.Int64N(int64(q.delay))) + q.delay/2
		sleep = min(max(sleep, wait), d.cfg.MaxBackoff)
		q.delay = min(2*q.delay, d.cfg.MaxBackoff)
		q.attempt++
		time.AfterFunc(sleep, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.closed {
				return
			}
			q.busy = false
			d.ready = append(d.ready, q)
			d.wake.Signal()
		})
		return
	}
	q.jobs[0] = Job{}
	q.jobs = q.jobs[1:]
	d.depth.Dec()
	q.busy, q.attempt = false, 0
	if len(q.jobs) == 0 {
		delete(d.queues, q.endpoint)
		return
	}
	d.ready = append(d.ready, q)
	d.wake.Signal()
}

// attempt sends j once. It returns the failure's class ("" on success)
// and the push service's Retry-After, if any.
func (d *Dispatcher) attempt(j Job) (time.Duration, string) {
	ttl := int(j.TTL / time.Second)
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	resp, err := webpush.SendNotificationWithContext(ctx, j.Payload,
		&webpush.Subscription{Endpoint: j.Endpoint, Keys: webpush.Keys{P256dh: j.P256dh, Auth: j.Auth}},
		&webpush.Options{
			HTTPClient: d.cfg.Client, Subscriber: d.cfg.Subscriber, Topic: j.Topic, TTL: ttl,
			Urgency: webpush.Urgency(j.Urgency), VAPIDPublicKey: d.cfg.Keys.Public, VAPIDPrivateKey: d.cfg.Keys.Private,
		})
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, "network"
		}
		// The subscription's keys do not work (not a point on the curve,
		// bad base64): no retry will help.
		d.cfg.Log.Warn("push: cannot encrypt to a subscription", "err", err)
		return 0, "encrypt"
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, ""
	case c == http.StatusNotFound || c == http.StatusGone:
		return 0, "gone"
	case c == http.StatusTooManyRequests:
		return retryAfter(resp.Header.Get("Retry-After")), "rate_limited"
	case c >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), "server"
	default:
		return 0, "rejected"
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
