// Package server assembles a Herald node from its parts — store, bus,
// sealer, service, transport — and runs it until told to stop. cmd/heraldd
// and the integration tests both start nodes through it.
package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/blob/blobs"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/bus/memory"
	busnats "github.com/heraldim/herald/bus/nats"
	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/push"
	"github.com/heraldim/herald/relay"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/postgres"
	"github.com/heraldim/herald/store/sqlite"
	"github.com/heraldim/herald/transport"
	"github.com/heraldim/herald/transport/botapi"
)

// Config is a node's configuration.
type Config struct {
	Listen  string // host:port; port 0 picks a free one
	DataDir string
	DB      string // empty: SQLite in DataDir
	// Bus is how nodes share events: "" or "memory" for one node,
	// "nats://n1:4222,nats://n2:4222" for a NATS cluster.
	Bus           string
	Signup        service.SignupMode
	MasterKeyFile string // empty: DataDir/master.key, created on first start
	Log           *slog.Logger
	PasswordCost  service.PasswordCost
	// PasswordSlots bounds concurrent Argon2id evaluations (zero: from
	// the memory limit; see service.Config.PasswordSlots).
	PasswordSlots int
	Limits        transport.Limits
	LargeGroup    int // see service.Config.LargeGroup; 0 for the default
	// BucketWidth is the key ring's bucket width (default 1 hour): content
	// with a timer is unreadable everywhere at most this long after it ends.
	BucketWidth time.Duration
	// SweepEvery is how often expired messages are deleted (default 1 s).
	SweepEvery time.Duration
	// Console opens the node for a one-off command (heraldd admin, invite,
	// bench-users) beside a running server: it does not sweep, so only the
	// server ever rewrites the key ring.
	Console bool
	// NoMigrate makes a node on PostgreSQL refuse a schema that is not
	// current instead of migrating it, for deployments that migrate with
	// heraldd migrate before rolling out nodes. (An SQLite file is always
	// brought up to date: it has one node.)
	NoMigrate bool
	// Pprof serves Go's profiles under /debug/pprof/, for the operator's
	// own benchmarking; never enable it on a public address.
	Pprof bool
	// AbuseLimits are the abuse limits; zero fields take
	// service.DefaultLimits.
	AbuseLimits service.Limits
	// BotLimits are the bots' send rates; zero fields take
	// service.DefaultBotLimits.
	BotLimits service.BotLimits
	// BotAPI configures the Bot API at /bot<token>/<method>.
	BotAPI botapi.Options
	// Blobs is where files' encrypted bytes live: "" for DataDir/blobs,
	// file:///path, or s3://bucket?endpoint=host:port (see docs/OPERATIONS.md).
	Blobs string
	// MaxFileSize and StorageQuota bound one file and one user's files
	// (zero: 2 GiB and 100 GiB).
	MaxFileSize  int64
	StorageQuota int64
	// UploadAbandoned is how long an unfinished upload is kept after its
	// last byte (default 24 hours).
	UploadAbandoned time.Duration
	// Reactions is the set of emoji members may react with (nil: the
	// default set).
	Reactions []string
	// EnvelopeRetention is how long an undelivered secret-chat envelope
	// waits for its device (zero: 30 days).
	EnvelopeRetention time.Duration
	// PushAllowPrivate lets push endpoints be plain http:// and point at
	// loopback and private addresses and any port (heraldd
	// -push-allow-private): for tests and self-hosted UnifiedPush
	// distributors. Off, they must be https:// on the public Internet.
	PushAllowPrivate bool
	// PushSubscriber is the VAPID contact (mailto: or https: URL) push
	// services see; empty: mailto:postmaster@localhost.
	PushSubscriber string
	// Media configures the relay for calls' media (TURN); off when its
	// UDP address is empty.
	Media Media
}

// Media configures the TURN relay for calls (docs/CALLS.md).
type Media struct {
	UDP          string // UDP address to listen on, "0.0.0.0:3478"; empty: no relay
	PublicIP     string // the address devices reach the relay at
	AllowPrivate bool   // relay to loopback and private peers (tests, one LAN)
}

// Node is a running server.
type Node struct {
	Service *service.Service
	Store   store.Store

	cfg  Config
	ln   net.Listener
	http *http.Server
	tr   *transport.Server
	bots *botapi.API
	bus  bus.Bus
	push *push.Dispatcher // nil if the store keeps no subscriptions
	done chan error
	// relay carries calls' media (nil without Config.Media.UDP).
	relay *relay.Server

	stopSweep chan struct{}
	swept     chan struct{}
	sweeping  bool // Serve started the sweeper
}

// Open prepares a node: opens the store (applying migrations) and binds
// the listener, but serves nothing until Serve.
func Open(cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "herald-data"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}

	keyFile := cfg.MasterKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "master.key")
	}
	key, err := crypto.LoadOrCreateMasterKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		return nil, err
	}
	db, mod, err := openStore(cfg.DB, cfg.DataDir, cfg.NoMigrate)
	if err != nil {
		return nil, err
	}
	ring, err := openRing(db, cfg, key)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("key ring: %w", err)
	}
	blobs, err := openBlobs(cfg.Blobs, cfg.DataDir)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("blobs: %w", err)
	}
	// The bus reports possible loss to the transport, which exists only
	// later: until then no connection could have missed anything.
	var lossTo atomic.Pointer[transport.Server]
	b, err := openBus(cfg.Bus, cfg.Log, func(topic string) {
		if tr := lossTo.Load(); tr != nil {
			tr.BusLost(topic)
		}
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bus: %w", err)
	}
	bots, _ := db.(store.Bots)
	// The relay starts once the listener is bound, below.
	var rel *relay.Server
	var ice func(int64, time.Duration) ([]service.ICEServer, error)
	if cfg.Media.UDP != "" {
		ice = func(userID int64, ttl time.Duration) ([]service.ICEServer, error) {
			c, err := rel.Credentials(userID, ttl)
			return []service.ICEServer{{URLs: c.URLs, Username: c.Username, Credential: c.Credential}}, err
		}
	}
	svc := service.New(service.Config{
		ICE:   ice,
		Store: db, Moderation: mod, Bus: b, Sealer: sealer, Ring: ring, Log: cfg.Log, Signup: cfg.Signup,
		PasswordCost: cfg.PasswordCost, PasswordSlots: cfg.PasswordSlots, LargeGroup: cfg.LargeGroup, Limits: cfg.AbuseLimits,
		Bots: bots, BotLimits: cfg.BotLimits,
		Blobs: blobs, MaxFileSize: cfg.MaxFileSize, StorageQuota: cfg.StorageQuota,
		Secret: secretStore(db), EnvelopeRetention: cfg.EnvelopeRetention,
		Reactions: cfg.Reactions,
	})
	// What expired while the server was down is gone, and its keys
	// destroyed, before the first request is served.
	if cfg.Console {
		// The running server owns the sweep and the key ring.
	} else if _, err := svc.Sweep(context.Background()); err != nil {
		b.Close()
		db.Close()
		return nil, fmt.Errorf("expiry sweep at start: %w", err)
	}
	tr := transport.New(svc, b, cfg.Log, cfg.Limits)
	lossTo.Store(tr)
	if err := tr.EnableFiles(transport.Files{Blobs: blobs, Sealer: sealer, Abandoned: cfg.UploadAbandoned}); err != nil {
		b.Close()
		db.Close()
		return nil, fmt.Errorf("files: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		b.Close()
		db.Close()
		return nil, err
	}
	if cfg.Media.UDP != "" {
		// Every node derives the same secret, so credentials from one
		// node work on the relay of any other.
		rel, err = relay.Start(relay.Config{Listen: cfg.Media.UDP, PublicIP: cfg.Media.PublicIP, AllowPrivate: cfg.Media.AllowPrivate,
			Secret: []byte(hex.EncodeToString(sealer.MAC([]byte("herald turn secret v1")))), Log: cfg.Log})
		if err != nil {
			ln.Close()
			b.Close()
			db.Close()
			return nil, err
		}
	}
	pd, err := openPush(context.Background(), db, sealer, svc, cfg, tr.Registry())
	if err != nil {
		if rel != nil {
			rel.Close()
		}
		ln.Close()
		b.Close()
		db.Close()
		return nil, fmt.Errorf("push: %w", err)
	}
	api := botapi.New(svc, b, cfg.Log, cfg.BotAPI)
	n := &Node{Service: svc, Store: db, cfg: cfg, ln: ln, tr: tr, bots: api, bus: b, push: pd, relay: rel, done: make(chan error, 1), stopSweep: make(chan struct{}), swept: make(chan struct{})}
	var h http.Handler = tr.GuardBodies(withBotAPI(api, tr.Handler()))
	if cfg.Pprof {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		h = mux
	}
	n.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return n, nil
}

// openRing opens the key ring: in the database when the store is shared
// by several nodes (PostgreSQL), so a value sealed on one node opens on
// every other; else in DATA/keyring, where a destroyed key is overwritten
// in place.
func openRing(db store.Store, cfg Config, master []byte) (*crypto.KeyRing, error) {
	if rs, ok := db.(crypto.RingStorage); ok {
		if _, shared := db.(store.Leaser); shared {
			return crypto.OpenSharedKeyRing(rs, master, cfg.BucketWidth)
		}
	}
	return crypto.OpenKeyRing(filepath.Join(cfg.DataDir, "keyring"), master, cfg.BucketWidth)
}

// openStore interprets -db: empty for SQLite in the data directory, a
// path or sqlite: URL, or a postgres:// URL.
func openStore(spec, dataDir string, noMigrate bool) (store.Store, store.Moderation, error) {
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		db, err := postgres.Open(context.Background(), spec, postgres.Options{NoMigrate: noMigrate})
		if err != nil {
			return nil, nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return db, db, nil
	}
	path, err := sqlitePath(spec, dataDir)
	if err != nil {
		return nil, nil, err
	}
	db, err := sqlite.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, db, nil
}

// sqlitePath interprets an SQLite -db: empty for the default file in the
// data directory, a path, or a sqlite: URL.
func sqlitePath(db, dataDir string) (string, error) {
	switch {
	case db == "":
		return filepath.Join(dataDir, "herald.db"), nil
	case strings.HasPrefix(db, "sqlite://"):
		return strings.TrimPrefix(db, "sqlite://"), nil
	case strings.HasPrefix(db, "sqlite:"):
		return strings.TrimPrefix(db, "sqlite:"), nil
	case strings.Contains(db, "://"):
		return "", fmt.Errorf("unknown database URL %q: use a file path or sqlite:PATH", db)
	}
	return db, nil
}

// withBotAPI sends /bot<token>/… to the Bot API and everything else to
// next. (A ServeMux pattern cannot match "/bot" followed by a token.)
func withBotAPI(api *botapi.API, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if botapi.Handles(r) {
			api.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Addr is the address the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// URL is the node's base URL.
func (n *Node) URL() string { return "http://" + n.Addr() }

// Serve starts serving, and the expiry sweeper, in the background.
func (n *Node) Serve() {
	n.sweeping = true
	go n.sweep()
	if !n.cfg.Console {
		if err := n.bots.Start(context.Background()); err != nil {
			n.cfg.Log.Error("bot webhooks", "err", err)
		}
	}
	go func() {
		err := n.http.Serve(n.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		n.done <- err
	}()
}

// Shutdown stops accepting, closes every connection, lets queued writes
// commit, and closes the store.
func (n *Node) Shutdown(ctx context.Context) error {
	// Long polls end first: the HTTP server waits for every request.
	n.bots.Close()
	err := n.http.Shutdown(ctx)
	select {
	case <-n.stopSweep:
	default:
		close(n.stopSweep)
		if n.sweeping {
			<-n.swept
		}
	}
	n.tr.Close()
	n.stopPush()
	if n.relay != nil {
		n.relay.Close()
	}
	if e := n.Store.Close(); err == nil {
		err = e
	}
	n.bus.Close()
	return err
}

// stopPush stops preparing and sending pushes; what is queued is lost
// (a push is a hint: the messages themselves are stored).
func (n *Node) stopPush() {
	n.Service.StopPush()
	if n.push != nil {
		n.push.Close()
	}
}

// Kill stops the node the way a crash would, for failure tests: the
// listener and every connection close at once, without the "going away"
// that Shutdown sends, and the node leaves the bus. Writes already queued
// still finish before the store closes (a crashed process's would be
// rolled back), which changes nothing a client was told: a write's
// answer is lost with its connection either way. Its leases are not
// handed over: they lapse, as a dead node's do.
func (n *Node) Kill() {
	n.bots.Abort()
	n.http.Close()
	n.tr.Abort()
	n.stopSweeper()
	n.stopPush()
	if n.relay != nil {
		n.relay.Close()
	}
	n.bus.Close()
	n.Store.Close()
}

// BusURL is the NATS server the node's bus is connected to at the moment,
// or "" (the in-process bus, or while reconnecting): for health checks and
// failure tests.
func (n *Node) BusURL() string {
	if nb, ok := n.bus.(*busnats.Bus); ok {
		return nb.ConnectedURL()
	}
	return ""
}

// stopSweeper stops the sweeper, once, and waits for it.
func (n *Node) stopSweeper() {
	select {
	case <-n.stopSweep:
	default:
		close(n.stopSweep)
		if n.sweeping {
			<-n.swept
		}
	}
}

func (n *Node) sweep() {
	defer close(n.swept)
	every := n.cfg.SweepEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last := time.Now()
	var lastUploads time.Time
	for {
		select {
		case <-n.stopSweep:
			return
		case <-t.C:
			// Suspensions made at the console (another process) end the
			// user's sessions here within a tick.
			since := last
			last = time.Now().Add(-every)
			if err := n.Service.CloseSuspendedSince(context.Background(), since); err != nil {
				n.cfg.Log.Error("suspensions", "err", err)
			}
			st, err := n.Service.Sweep(context.Background())
			if err != nil {
				n.cfg.Log.Error("expiry sweep", "err", err)
			} else if st.Expired > 0 || st.Destroyed > 0 || st.Files > 0 {
				n.cfg.Log.Info("expiry sweep", "expired", st.Expired, "resealed", st.Resealed, "buckets_destroyed", st.Destroyed, "files", st.Files)
			}
			if time.Since(lastUploads) > time.Minute {
				lastUploads = time.Now()
				// One node at a time, as they share the blob store; the
				// lease outlives the minute, so the node doing it keeps it.
				if mine, err := n.Service.HoldLease(context.Background(), "upload-sweep", 3*time.Minute); err != nil || !mine {
					continue
				}
				if k, err := n.tr.SweepUploads(context.Background()); err != nil {
					n.cfg.Log.Error("abandoned uploads", "err", err)
				} else if k > 0 {
					n.cfg.Log.Info("abandoned uploads deleted", "uploads", k)
				}
			}
		}
	}
}

// secretStore returns the store's secret-chat half, if it has one.
func secretStore(db store.Store) store.Secret {
	s, _ := db.(store.Secret)
	return s
}

// openBus interprets -bus. onLoss hears of events the bus may have lost
// (a NATS reconnect, a subscription that fell behind); the in-process bus
// loses none.
func openBus(spec string, log *slog.Logger, onLoss func(topic string)) (bus.Bus, error) {
	switch {
	case spec == "" || spec == "memory":
		return memory.New(), nil
	case strings.HasPrefix(spec, "nats://"), strings.HasPrefix(spec, "tls://"):
		return busnats.Open(spec, busnats.Logger(log), busnats.OnLoss(onLoss))
	}
	return nil, fmt.Errorf("unknown bus %q: use memory or nats://host:4222[,nats://host:4222…]", spec)
}

// openBlobs interprets -blobs.
func openBlobs(spec, dataDir string) (blob.Store, error) {
	return blobs.Open(context.Background(), spec, dataDir)
}
