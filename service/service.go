// Package service holds Herald's rules: who may do what, in which order
// things are stored and announced, and what every request must look like.
// It knows nothing of sockets or SQL; it talks to a store.Store, a bus.Bus
// and a crypto.Sealer, and every permission check lives here, once.
package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/store"
)

// SignupMode says who may create an account.
type SignupMode string

// Signup modes.
const (
	SignupOpen   SignupMode = "open"
	SignupClosed SignupMode = "closed"
	SignupInvite SignupMode = "invite"
)

// Config wires a Service.
type Config struct {
	// ICE gives a user's device the relay (TURN) servers for a call's
	// media, with credentials valid for ttl; nil when the node runs no
	// relay.
	ICE    func(userID int64, ttl time.Duration) ([]ICEServer, error)
	Store  store.Store
	Bus    bus.Bus
	Sealer *crypto.Sealer
	// Moderation stores reports, blocks, suspensions and the audit log;
	// without it those features answer UNAVAILABLE.
	Moderation store.Moderation
	// Limits are the abuse limits (zero fields: defaults). On a store
	// that implements store.Rates they count every node's requests
	// together; otherwise this node's.
	Limits Limits
	// Node names this node in the store's leases (store.Leaser); empty
	// gives a random name, unique for each Service.
	Node string
	// Bots stores bot accounts; without it bot features answer
	// UNAVAILABLE.
	Bots store.Bots
	// BotLimits are the send rates of bots (zero fields: defaults).
	BotLimits BotLimits
	// Ring seals bodies of messages with a timer under keys that are
	// destroyed when their time bucket ends.
	Ring   *crypto.KeyRing
	Log    *slog.Logger
	Signup SignupMode
	// PasswordCost sets Argon2id's parameters; zero means the defaults.
	PasswordCost PasswordCost
	// PasswordSlots is how many Argon2id evaluations (logins, signups) may
	// run at once on this node, each holding PasswordCost.MemoryK of
	// memory; zero derives it from the Go memory limit and GOMAXPROCS
	// (PasswordSlots). PasswordWait is how long a request waits for a
	// slot before RATE_LIMITED (zero: DefaultPasswordWait).
	PasswordSlots int
	PasswordWait  time.Duration
	// TooLongGap is how many updates behind a device may be before it is
	// told to reload its chat list instead of replaying them all.
	TooLongGap int64
	// LargeGroup is the member count above which a group stops copying
	// each message into every member's update log and fans out on read like
	// a channel (default herald.FanOutOnWriteMax).
	LargeGroup int
	// Blobs holds files' encrypted bytes; without it file methods answer
	// UNAVAILABLE.
	Blobs blob.Store
	// MaxFileSize and StorageQuota bound one file and one user's files
	// (zero: herald.DefaultMaxFileSize and herald.DefaultStorageQuota).
	MaxFileSize  int64
	StorageQuota int64
	// Secret keeps secret chats' public keys and envelope queues; without
	// it those methods answer UNAVAILABLE.
	Secret store.Secret
	// EnvelopeRetention is how long an undelivered secret envelope is
	// kept (zero: herald.DefaultEnvelopeRetention).
	EnvelopeRetention time.Duration
	// Reactions is the set of emoji members may react with (nil:
	// herald.DefaultReactions).
	Reactions []string
	// Now returns the time; tests replace it.
	Now func() time.Time
}

// Service implements Herald's methods. It is safe for concurrent use.
type Service struct {
	store  store.Store
	bus    bus.Bus
	sealer *crypto.Sealer
	ring   *crypto.KeyRing
	log    *slog.Logger

	moderation store.Moderation
	bots       store.Bots
	botRL      *botLimiters
	rl         *limiters
	typing     *typingGate
	ice        func(userID int64, ttl time.Duration) ([]ICEServer, error)
	calls      callLimits
	callRing   time.Duration
	preKeys    *preKeyLimits // secret chats' prekey claims (prekeylimits.go)
	signup     SignupMode
	cost       PasswordCost
	pw         *passwords
	gap        int64
	large      int
	now        func() time.Time

	usersMu sync.RWMutex
	users   map[int64]herald.User // usernames never change, so this cache never goes stale

	chatsMu sync.RWMutex
	chats   map[int64]cachedChat // how channel posts are signed; dropped on change, on every node

	blobs   blob.Store
	maxFile int64
	quota   int64
	filesMu sync.RWMutex
	files   map[string]herald.File // file metadata for delivery, without keys

	secret    store.Secret
	retention time.Duration

	push      *pushState        // nil until EnablePush
	annot     store.Annotations // reactions, pins, formatting; nil: those answer UNAVAILABLE
	reactions []string          // the emoji members may react with

	node   string                 // this node's name in the store's leases
	frames atomic.Pointer[Frames] // renders bus events' frames; set by the transport
	pruned atomic.Int64           // when the sweep last pruned shared rate buckets (Unix ns)
}

// Caller is an authenticated device making a request.
type Caller struct {
	UserID   int64
	DeviceID int64
	Username string
	Bot      bool // a bot, calling through the Bot API (DeviceID is 0)
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{
		store: cfg.Store, bus: cfg.Bus, sealer: cfg.Sealer, ring: cfg.Ring, log: cfg.Log,
		moderation: cfg.Moderation, bots: cfg.Bots,
		signup: cfg.Signup, cost: cfg.PasswordCost, gap: cfg.TooLongGap, now: cfg.Now, large: cfg.LargeGroup,
		users: map[int64]herald.User{}, chats: map[int64]cachedChat{},
		blobs: cfg.Blobs, maxFile: cfg.MaxFileSize, quota: cfg.StorageQuota, files: map[string]herald.File{},
	}
	s.secret, s.retention = cfg.Secret, cfg.EnvelopeRetention
	s.annot, _ = cfg.Store.(store.Annotations)
	s.reactions = cfg.Reactions
	if len(s.reactions) == 0 {
		s.reactions = herald.DefaultReactions
	}
	s.node = cfg.Node
	if s.node == "" {
		s.node = newNodeName()
	}
	if s.retention <= 0 {
		s.retention = herald.DefaultEnvelopeRetention
	}
	if s.maxFile <= 0 {
		s.maxFile = herald.DefaultMaxFileSize
	}
	if s.quota <= 0 {
		s.quota = herald.DefaultStorageQuota
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.listenChatChanges()
	if s.signup == "" {
		s.signup = SignupOpen
	}
	if s.cost == (PasswordCost{}) {
		s.cost = DefaultPasswordCost
	}
	s.pw = newPasswords(s.cost, cfg.PasswordSlots, cfg.PasswordWait)
	if s.large <= 0 {
		s.large = herald.FanOutOnWriteMax
	}
	if s.gap <= 0 {
		s.gap = 1_000_000
	}
	if s.now == nil {
		s.now = func() time.Time { return time.Now().UTC() }
	}
	var b buckets = newMemBuckets(s.now)
	if shared, ok := cfg.Store.(store.Rates); ok {
		b = shared
	}
	s.rl, s.botRL = newLimiters(b, cfg.Limits), newBotLimiters(b, cfg.BotLimits)
	s.typing = newTypingGate(cfg.Limits.withDefaults().TypingEvery, s.now)
	s.callRing = cfg.Limits.withDefaults().CallRing
	s.ice = cfg.ICE
	s.preKeys = newPreKeyLimits(b)
	return s
}

// user returns a user by id through the cache.
func (s *Service) user(ctx context.Context, id int64) (herald.User, error) {
	s.usersMu.RLock()
	u, ok := s.users[id]
	s.usersMu.RUnlock()
	if ok {
		return u, nil
	}
	m, err := s.store.Users(ctx, []int64{id})
	if err != nil {
		return u, err
	}
	u, ok = m[id]
	if !ok {
		return u, herald.Errorf(herald.NotFound, "no user %d", id)
	}
	if s.bots != nil {
		// A bot stays a bot, even deleted, so this never goes stale either.
		_, _, err := s.bots.Bot(ctx, id)
		if err != nil && !herald.IsKind(err, herald.NotFound) {
			return u, err
		}
		u.IsBot = err == nil
	}
	s.usersMu.Lock()
	s.users[id] = u
	s.usersMu.Unlock()
	return u, nil
}

// UserNames returns the usernames of the given users, for rendering
// messages and updates. Unknown ids are left out.
func (s *Service) UserNames(ctx context.Context, ids ...int64) map[int64]string {
	out := make(map[int64]string, len(ids))
	for _, id := range ids {
		if id == 0 {
			continue
		}
		if u, err := s.user(ctx, id); err == nil {
			out[id] = u.Username
		}
	}
	return out
}

// chatMetaAge bounds how long a node trusts a cached chat: the bus tells
// every node when a chat changes, and this catches a notice the bus lost.
const chatMetaAge = time.Minute

// cachedChat is a chat as chatMeta last read it.
type cachedChat struct {
	herald.Chat
	read time.Time
}

// chatMeta returns a chat's settings for signing and routing, from a
// cache that every node drops an entry of when the chat changes.
func (s *Service) chatMeta(ctx context.Context, id int64) (herald.Chat, error) {
	s.chatsMu.RLock()
	c, ok := s.chats[id]
	s.chatsMu.RUnlock()
	if ok && time.Since(c.read) < chatMetaAge {
		return c.Chat, nil
	}
	read := time.Now()
	ch, err := s.store.Chat(ctx, id)
	if err != nil {
		return ch, err
	}
	s.chatsMu.Lock()
	if len(s.chats) > 100_000 {
		clear(s.chats)
	}
	s.chats[id] = cachedChat{ch, read}
	s.chatsMu.Unlock()
	return ch, nil
}

// forgetChat drops a changed chat from this node's cache, and tells the
// other nodes to drop it from theirs.
func (s *Service) forgetChat(ctx context.Context, id int64) {
	s.dropChat(id)
	if s.bus != nil {
		if err := s.bus.Publish(ctx, bus.ChatChangedTopic, binary.AppendVarint(nil, id)); err != nil {
			s.log.Warn("telling other nodes of a chat change failed; their caches catch up within a minute", "chat", id, "err", err)
		}
	}
}

func (s *Service) dropChat(id int64) {
	s.chatsMu.Lock()
	delete(s.chats, id)
	s.chatsMu.Unlock()
}

// listenChatChanges drops the chats other nodes changed from this node's
// cache.
func (s *Service) listenChatChanges() {
	if s.bus == nil {
		return
	}
	_, err := s.bus.Subscribe(bus.ChatChangedTopic, func(data []byte) {
		if id, n := binary.Varint(data); n > 0 {
			s.dropChat(id)
		}
	})
	if err != nil {
		s.log.Warn("listening for other nodes' chat changes failed; cached chats are trusted for a minute", "err", err)
	}
}

// Signature says how a message is shown: who it is from, and for channel
// posts the author if the post was made while the channel showed
// signatures (Message.Signed, fixed when it was posted). Posts are signed
// by the channel, so the admin who wrote one stays hidden unless the
// channel chose otherwise at the time.
type Signature struct {
	FromID int64
	From   string
	Author string
	Title  string // a channel post's: the channel's title, for display
}

// Sign returns the signature of m.
func (s *Service) Sign(ctx context.Context, m *herald.Message) Signature {
	ch, err := s.chatMeta(ctx, m.ChatID)
	if err != nil || ch.Kind != herald.Channel {
		return Signature{FromID: m.SenderID, From: s.UserNames(ctx, m.SenderID)[m.SenderID]}
	}
	// FromID stays 0: a post is from the channel, not from a user.
	sig := Signature{From: ch.Username, Title: ch.Title}
	if sig.From == "" {
		sig.From = ch.Title
	}
	if m.Signed && !m.Service {
		sig.Author = s.UserNames(ctx, m.SenderID)[m.SenderID]
	}
	return sig
}

// width is the key ring's bucket width: how long after its end a message's
// key can outlive it.
func (s *Service) width() time.Duration {
	if s.ring == nil {
		return time.Hour
	}
	return s.ring.Width()
}

// newNodeName names a node by its host and a random suffix, so that two
// nodes on one host, or one restarted, never share a lease.
func newNodeName() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%s-%x", host, b)
}
