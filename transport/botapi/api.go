// Package botapi serves the Telegram Bot API over HTTP at
// /bot<token>/<method>, so bots written against Telegram run on Herald by
// changing their API root. It is a transport: it parses requests, maps
// ids and renders the Bot API's JSON; every rule is in package service,
// which sees a bot as a user with Caller.Bot set.
package botapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/egress"
	"github.com/heraldim/herald/service"
)

// Options configure the API.
type Options struct {
	// MaxPollTimeout caps getUpdates' timeout (default 50 s, under the
	// usual proxy timeouts).
	MaxPollTimeout time.Duration
	// WebhookClient makes the webhook POSTs (default: the egress client,
	// which refuses non-public addresses unless WebhookAllowPrivate, with a
	// 10-second timeout).
	WebhookClient *http.Client
	// WebhookAllowPrivate lets webhooks point at loopback, private and
	// link-local addresses and at any port (heraldd -webhook-allow-private):
	// for tests and for self-hosters whose bots run beside the server.
	// Off, a bot could make the server request its own internal network.
	WebhookAllowPrivate bool
	// SpoolDir holds uploaded files, encrypted, for the length of their
	// request (default: the temp directory).
	SpoolDir string
	// WebhookBackoff is the first wait after a failed webhook delivery;
	// it doubles up to a minute (default 1 s).
	WebhookBackoff time.Duration
	// WebhookLease is how long a node holds a bot's webhook deliveries
	// without renewing (default 15 s): how long the bot waits when that
	// node dies before another node delivers. Nodes renew at a third of it.
	WebhookLease time.Duration
}

// API is the Bot API handler.
type API struct {
	svc  *service.Service
	bus  bus.Bus
	log  *slog.Logger
	opts Options

	mu    sync.Mutex
	polls map[int64]*poll      // the one getUpdates in progress per bot on this node
	hooks map[int64]*webhooker // webhook delivery per bot
	// confirmed remembers each bot's last confirmed offset, so polls
	// that confirm nothing new write nothing.
	confirmed map[int64]confirmState
	wg        sync.WaitGroup
	stop      chan struct{}
	kick      chan struct{} // a webhook was added: take its lease now
	once      sync.Once
	aborted   atomic.Bool // Abort: leave leases to lapse
}

type poll struct {
	cancel context.CancelCauseFunc
}

// errConflict ends a long poll that a newer one replaced, as Telegram
// answers two getUpdates at once.
var errConflict = &apiError{code: http.StatusConflict, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}

// errWebhookSet ends a long poll when the bot sets a webhook, as on
// Telegram: else the next update would go to both.
var errWebhookSet = &apiError{code: http.StatusConflict, desc: "Conflict: terminated by setWebhook request"}

// webhookNotice, on a bot's poll topic, tells every node that the bot set
// a webhook (a poll's own notice is 16 bytes).
var webhookNotice = []byte{'w'}

// New returns the API. Start begins webhook delivery; Close ends it.
func New(svc *service.Service, b bus.Bus, log *slog.Logger, opts Options) *API {
	if opts.MaxPollTimeout <= 0 {
		opts.MaxPollTimeout = 50 * time.Second
	}
	if opts.WebhookClient == nil {
		opts.WebhookClient = egress.Policy{AllowPrivate: opts.WebhookAllowPrivate}.Client(10 * time.Second)
	}
	if opts.WebhookBackoff <= 0 {
		opts.WebhookBackoff = time.Second
	}
	if opts.WebhookLease <= 0 {
		opts.WebhookLease = 15 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &API{svc: svc, bus: b, log: log, opts: opts, polls: map[int64]*poll{}, hooks: map[int64]*webhooker{}, confirmed: map[int64]confirmState{}, stop: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// Handles reports whether a request is for the Bot API: a method call at
// /bot<token>/… or a file download at /file/bot<token>/….
func Handles(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/bot") || strings.HasPrefix(r.URL.Path, "/file/bot")
}

// apiError is an answer with the Bot API's error_code and description.
type apiError struct {
	code       int
	desc       string
	retryAfter int
}

func (e *apiError) Error() string { return e.desc }

func badRequest(format string, args ...any) error {
	return &apiError{code: http.StatusBadRequest, desc: "Bad Request: " + fmt.Sprintf(format, args...)}
}

// toAPIError maps a Herald error to the Bot API's codes.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := herald.ErrorMessage(err)
	switch herald.ErrorKind(err) {
	case herald.Invalid, herald.NotFound, herald.TooLarge:
		return &apiError{code: http.StatusBadRequest, desc: "Bad Request: " + msg}
	case herald.Unauthenticated:
		return &apiError{code: http.StatusUnauthorized, desc: "Unauthorized"}
	case herald.PermissionDenied:
		return &apiError{code: http.StatusForbidden, desc: "Forbidden: " + msg}
	case herald.AlreadyExists:
		return &apiError{code: http.StatusConflict, desc: "Conflict: " + msg}
	case herald.RateLimited:
		var he *herald.Error
		secs := 1
		if errors.As(err, &he) && he.RetryAfter > 0 {
			secs = int(math.Ceil(he.RetryAfter.Seconds()))
		}
		return &apiError{code: http.StatusTooManyRequests, desc: fmt.Sprintf("Too Many Requests: retry after %d", secs), retryAfter: secs}
	case herald.Unavailable:
		return &apiError{code: http.StatusBadGateway, desc: "Bad Gateway: " + msg}
	}
	return &apiError{code: http.StatusInternalServerError, desc: "Internal Server Error"}
}

type response struct {
	OK          bool           `json:"ok"`
	Result      any            `json:"result,omitempty"`
	ErrorCode   int            `json:"error_code,omitempty"`
	Description string         `json:"description,omitempty"`
	Parameters  *responseParam `json:"parameters,omitempty"`
}

type responseParam struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
	resp := response{ErrorCode: ae.code, Description: ae.desc}
	if ae.retryAfter > 0 {
		resp.Parameters = &responseParam{RetryAfter: ae.retryAfter}
	}
	writeJSON(w, ae.code, resp)
}

// request is one call of a method by a bot.
type request struct {
	api    *API
	caller service.Caller
	bot    herald.Bot
	p      params
	render renderer
}

// ServeHTTP serves /bot<token>/<method>.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, &apiError{code: http.StatusMethodNotAllowed, desc: "Method Not Allowed: use GET or POST"})
		return
	}
	if strings.HasPrefix(r.URL.Path, "/file/bot") {
		a.serveFile(w, r)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/bot")
	token, name, ok := strings.Cut(rest, "/")
	if !ok || token == "" {
		writeError(w, &apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	ctx := r.Context()
	caller, bot, err := a.svc.AuthenticateBot(ctx, token)
	if err != nil {
		writeError(w, err)
		return
	}
	m, ok := methods[strings.ToLower(name)]
	if !ok {
		writeError(w, &apiError{code: http.StatusNotFound, desc: "Not Found: method not found"})
		return
	}
	// Only a method that takes a file gets an upload's room: any other
	// body is bounded as a JSON one is, before anything is spooled.
	limit := int64(maxBodyBytes)
	if takesFile[strings.ToLower(name)] {
		limit = min(maxUploadBytes, a.svc.MaxFileSize()+1<<20)
	}
	p, err := parseParams(r, limit, a.opts.SpoolDir)
	if err != nil {
		writeError(w, err)
		return
	}
	defer p.close()
	res, err := m(ctx, &request{api: a, caller: caller, bot: bot, p: p, render: newRenderer(a.svc, caller)})
	if err != nil {
		if herald.ErrorKind(err) == herald.Internal && !isAPIError(err) {
			a.log.ErrorContext(ctx, "bot api", "method", name, "bot", caller.UserID, "err", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, response{OK: true, Result: res})
}

func isAPIError(err error) bool {
	var ae *apiError
	return errors.As(err, &ae)
}

// call runs a method for a bot outside an HTTP request: the method a
// webhook's response asks for.
func (a *API) call(ctx context.Context, caller service.Caller, bot herald.Bot, name string, p params) (any, error) {
	m, ok := methods[strings.ToLower(name)]
	if !ok {
		return nil, &apiError{code: http.StatusNotFound, desc: "Not Found: method not found"}
	}
	return m(ctx, &request{api: a, caller: caller, bot: bot, p: p, render: newRenderer(a.svc, caller)})
}

// Close stops webhook delivery and waits for it.
func (a *API) Close() {
	a.close()
}

// Abort stops as Close does but keeps this node's webhook leases, which
// then lapse as a dead node's do: for failure tests.
func (a *API) Abort() {
	a.aborted.Store(true)
	a.close()
}

func (a *API) close() {
	a.once.Do(func() { close(a.stop) })
	a.mu.Lock()
	for _, p := range a.polls {
		p.cancel(errors.New("server shutting down"))
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// ---- long polling ----

// startPoll registers a long poll for the bot, ending any earlier one,
// on this node at once and on other nodes through the bus.
func (a *API) startPoll(ctx context.Context, botID int64) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	p := &poll{cancel: cancel}
	a.mu.Lock()
	if old := a.polls[botID]; old != nil {
		old.cancel(errConflict)
	}
	a.polls[botID] = p
	a.mu.Unlock()
	unsub := a.announcePoll(ctx, botID, cancel)
	select {
	case <-a.stop:
		cancel(errors.New("server shutting down")) // answer at once, with what there is
	default:
	}
	return ctx, func() {
		unsub()
		a.mu.Lock()
		if a.polls[botID] == p {
			delete(a.polls, botID)
		}
		a.mu.Unlock()
		cancel(nil)
	}
}

// endPolls ends the bot's waiting getUpdates, on this node and, through
// the bus, on the others: it has just set a webhook.
func (a *API) endPolls(ctx context.Context, botID int64) {
	a.mu.Lock()
	if p := a.polls[botID]; p != nil {
		p.cancel(errWebhookSet)
	}
	a.mu.Unlock()
	a.bus.Publish(ctx, bus.BotPollTopic(botID), webhookNotice)
}

// announcePoll tells other nodes that this poll started, and ends it when
// a newer poll of the same bot starts anywhere. A notice is the start
// time and a random id; the later start wins, the larger id breaks a tie,
// so two polls that start at once on two nodes do not end each other.
// Without a bus connection the poll is exclusive on this node only.
func (a *API) announcePoll(ctx context.Context, botID int64, cancel context.CancelCauseFunc) func() {
	var me [16]byte
	binary.BigEndian.PutUint64(me[:8], uint64(time.Now().UnixNano()))
	rand.Read(me[8:])
	topic := bus.BotPollTopic(botID)
	sub, err := a.bus.Subscribe(topic, func(other []byte) {
		switch {
		case bytes.Equal(other, webhookNotice):
			cancel(errWebhookSet)
		case len(other) == len(me) && bytes.Compare(other, me[:]) > 0:
			cancel(errConflict)
		}
	})
	if err != nil {
		return func() {}
	}
	a.bus.Publish(ctx, topic, me[:])
	return func() { sub.Unsubscribe() }
}

// wake returns a channel that receives whenever something may have been
// logged for the bot, on any node: an entry of its own log, or a post in
// a channel or large group it is in (those are copied into its log when
// it reads). The returned function stops it.
func (a *API) wake(ctx context.Context, c service.Caller) (<-chan struct{}, func(), error) {
	ch := make(chan struct{}, 1)
	notify := func([]byte) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	topics := []string{bus.UserTopic(c.UserID)}
	chats, err := a.svc.FollowedChats(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range chats {
		topics = append(topics, bus.ChatTopic(id))
	}
	var subs []bus.Subscription
	stop := func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
	}
	for _, t := range topics {
		sub, err := a.bus.Subscribe(t, notify)
		if err != nil {
			stop()
			return nil, nil, err
		}
		subs = append(subs, sub)
	}
	return ch, stop, nil
}
