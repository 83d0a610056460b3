// Command heraldd is the Herald server.
//
//	heraldd [-listen ADDR] [-data DIR] [-db PATH] [-signup open|closed|invite]
//	heraldd invite [-data DIR] [-db PATH]     print a single-use signup code
//	heraldd admin [-data DIR] COMMAND ...      moderation at the console (heraldd admin help)
//	heraldd migrate [-db URL]                 bring the schema up to date (also done at start, unless -no-migrate)
//	heraldd bench-users -prefix P -count N -out FILE [-data DIR]   users and tokens for herald-bench
//
// Every flag has an environment equivalent (HERALD_LISTEN, HERALD_DATA,
// HERALD_DB, HERALD_SIGNUP, HERALD_MASTER_KEY_FILE, HERALD_LOG_LEVEL,
// HERALD_SEND_RATE, HERALD_SIGNUP_RATE, HERALD_JOIN_RATE,
// HERALD_MEMORY_LIMIT, HERALD_WEBHOOK_ALLOW_PRIVATE, …).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store/postgres"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "heraldd:", err)
		os.Exit(1)
	}
}

func envFloat(getenv func(string) string, key string, def float64) float64 {
	if v := getenv(key); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func envDuration(getenv func(string) string, key string, def time.Duration) time.Duration {
	if v := getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// usageHead is the first part of heraldd --help; the flags follow it.
// README's configuration table lists the same flags (a test checks).
const usageHead = `usage: heraldd [flags]                        run the server
       heraldd invite [flags]                 print a single-use signup code for -signup invite
       heraldd admin [flags] COMMAND ...      moderation at the console (heraldd admin help)
       heraldd migrate [flags]                bring the schema up to date (also done at start, unless -no-migrate)
       heraldd bench-users -prefix P -count N -out FILE [-data DIR]   users and tokens for herald-bench

Every flag has an environment equivalent, named after it in parentheses.
The subcommands take the server's flags, to find its data.

flags:
`

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "help" {
		args = []string{"-help"}
	}
	if len(args) > 0 && args[0] == "bench-users" {
		return benchUsers(args[1:], getenv, stdout, stderr)
	}
	sub := ""
	if len(args) > 0 && (args[0] == "invite" || args[0] == "admin" || args[0] == "migrate") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("heraldd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		// Asked-for help goes to stdout, as the answer it is.
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usageHead)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", env(getenv, "HERALD_LISTEN", "127.0.0.1:8080"), "address to listen on (HERALD_LISTEN)")
	data := fs.String("data", env(getenv, "HERALD_DATA", "./herald-data"), "data directory (HERALD_DATA)")
	db := fs.String("db", env(getenv, "HERALD_DB", ""), "database: empty for SQLite in the data directory, or a file path (HERALD_DB)")
	busSpec := fs.String("bus", env(getenv, "HERALD_BUS", ""), "event bus between nodes: empty for in-process, or nats://host:4222[,nats://...] (HERALD_BUS)")
	signup := fs.String("signup", env(getenv, "HERALD_SIGNUP", "open"), "who may sign up: open, closed or invite (HERALD_SIGNUP)")
	keyFile := fs.String("master-key-file", env(getenv, "HERALD_MASTER_KEY_FILE", ""), "32-byte master key file; default DATA/master.key, created on first start (HERALD_MASTER_KEY_FILE)")
	level := fs.String("log-level", env(getenv, "HERALD_LOG_LEVEL", "info"), "debug, info, warn or error (HERALD_LOG_LEVEL)")
	noMigrate := fs.Bool("no-migrate", env(getenv, "HERALD_NO_MIGRATE", "") == "1", "with -db postgres://…, refuse to start on a schema that is not current instead of migrating it; run heraldd migrate first (HERALD_NO_MIGRATE=1)")
	pprofOn := fs.Bool("pprof", env(getenv, "HERALD_PPROF", "") == "1", "serve Go profiles under /debug/pprof/ (admin only: never on a public address) (HERALD_PPROF=1)")
	sendRate := fs.Float64("send-rate", envFloat(getenv, "HERALD_SEND_RATE", 0), "messages one user may send per second into direct chats; half that into groups and channels; 0 for the default 10 (HERALD_SEND_RATE)")
	botRate := fs.Float64("bot-rate", envFloat(getenv, "HERALD_BOT_RATE", 0), "messages one bot may send per second in all; 0 for the default 30 (HERALD_BOT_RATE)")
	botChatRate := fs.Float64("bot-chat-rate", envFloat(getenv, "HERALD_BOT_CHAT_RATE", 0), "messages one bot may send per second into one chat, after a burst of 3; 0 for the default 1 (HERALD_BOT_CHAT_RATE)")
	signupRate := fs.Int("signup-rate", int(envFloat(getenv, "HERALD_SIGNUP_RATE", 0)), "accounts one address may create per hour; 0 for the default 20 (HERALD_SIGNUP_RATE)")
	joinRate := fs.Int("join-rate", int(envFloat(getenv, "HERALD_JOIN_RATE", 0)), "joins of one group or channel per minute, counting every user; 0 for the default 120 (HERALD_JOIN_RATE)")
	createRate := fs.Int("create-rate", int(envFloat(getenv, "HERALD_CREATE_RATE", 0)), "groups, channels, invite links and bots one user may create per hour; 0 for the default 60 (HERALD_CREATE_RATE)")
	maxOwned := fs.Int("max-owned-chats", int(envFloat(getenv, "HERALD_MAX_OWNED_CHATS", 0)), "groups and channels one user may own; 0 for the default 500 (HERALD_MAX_OWNED_CHATS)")
	maxDevices := fs.Int("max-devices", int(envFloat(getenv, "HERALD_MAX_DEVICES", 0)), "devices (logged-in sessions) one account may have at once; 0 for the default 100 (HERALD_MAX_DEVICES)")
	reportRate := fs.Int("report-rate", int(envFloat(getenv, "HERALD_REPORT_RATE", 0)), "reports one user may file per hour; 0 for the default 30 (HERALD_REPORT_RATE)")
	memberRate := fs.Int("member-rate", int(envFloat(getenv, "HERALD_MEMBER_RATE", 0)), "calls adding or removing members or changing roles one user may make per minute; 0 for the default 20 (HERALD_MEMBER_RATE)")
	reactions := fs.String("reactions", getenv("HERALD_REACTIONS"), "the emoji members may react with, separated by spaces; empty for 👍 👎 ❤️ 🔥 🎉 😂 😮 😢 🙏 👀 (HERALD_REACTIONS)")
	typingEvery := fs.Duration("typing-every", envDuration(getenv, "HERALD_TYPING_EVERY", 0), "how often one user's typing in one chat reaches the others; more often is dropped; 0 for the default 3s (HERALD_TYPING_EVERY)")
	connsUser := fs.Int("conns-per-user", int(envFloat(getenv, "HERALD_CONNS_PER_USER", 0)), "WebSocket connections one account may hold to this node; 0 for the default 100, -1 for no cap (HERALD_CONNS_PER_USER)")
	connsAddr := fs.Int("conns-per-addr", int(envFloat(getenv, "HERALD_CONNS_PER_ADDR", 0)), "WebSocket connections one address (an IPv6 /64) may hold to this node, signed in or not; 0 for the default 256, -1 for no cap; behind a proxy every socket comes from its address (HERALD_CONNS_PER_ADDR)")
	blobsURL := fs.String("blobs", env(getenv, "HERALD_BLOBS", ""), "where files' encrypted bytes live: empty for DATA/blobs, file:///path, or s3://bucket?endpoint=host:port[&region=..&secure=false&prefix=..] with keys in HERALD_S3_ACCESS_KEY/HERALD_S3_SECRET_KEY (HERALD_BLOBS)")
	maxFile := fs.String("max-file-size", env(getenv, "HERALD_MAX_FILE_SIZE", "2GiB"), "largest file accepted, e.g. 2GiB or 500MiB (HERALD_MAX_FILE_SIZE)")
	quota := fs.String("storage-quota", env(getenv, "HERALD_STORAGE_QUOTA", "100GiB"), "bytes of files one user may own (HERALD_STORAGE_QUOTA)")
	retention := fs.Duration("secret-retention", envDuration(getenv, "HERALD_SECRET_RETENTION", 30*24*time.Hour), "how long an undelivered secret-chat envelope waits for its device (HERALD_SECRET_RETENTION)")
	memLimit := fs.String("memory-limit", env(getenv, "HERALD_MEMORY_LIMIT", "auto"), "Go's soft memory limit, so memory returns to the system soon after a burst: auto (80% of the cgroup's memory.max, else half the machine's memory), off, or a size like 2GiB; GOMEMLIMIT wins (HERALD_MEMORY_LIMIT)")
	abandoned := fs.Duration("upload-abandoned", envDuration(getenv, "HERALD_UPLOAD_ABANDONED", 24*time.Hour), "how long an unfinished upload is kept after its last byte (HERALD_UPLOAD_ABANDONED)")
	webhookPrivate := fs.Bool("webhook-allow-private", env(getenv, "HERALD_WEBHOOK_ALLOW_PRIVATE", "") == "1", "let bot webhooks point at loopback, private and link-local addresses and any port, for bots on the server's own machine or network; off, the server refuses them (HERALD_WEBHOOK_ALLOW_PRIVATE=1)")
	mediaUDP := fs.String("media-udp", env(getenv, "HERALD_MEDIA_UDP", ""), "UDP address of the TURN relay that carries calls' media between devices that cannot reach each other, e.g. 0.0.0.0:3478; empty for none (devices then connect directly) (HERALD_MEDIA_UDP)")
	mediaIP := fs.String("media-public-ip", env(getenv, "HERALD_MEDIA_PUBLIC_IP", ""), "the IP address devices reach the relay at; needed when -media-udp listens on all addresses (HERALD_MEDIA_PUBLIC_IP)")
	mediaPrivate := fs.Bool("media-allow-private", env(getenv, "HERALD_MEDIA_ALLOW_PRIVATE", "") == "1", "let the relay send to loopback and private addresses, for calls within one machine or LAN; off, it reaches only public addresses (HERALD_MEDIA_ALLOW_PRIVATE=1)")
	pushPrivate := fs.Bool("push-allow-private", env(getenv, "HERALD_PUSH_ALLOW_PRIVATE", "") == "1", "let push endpoints be plain http:// and point at loopback, private and link-local addresses and any port, for tests and a self-hosted UnifiedPush distributor; off, endpoints must be https:// on the public Internet (HERALD_PUSH_ALLOW_PRIVATE=1)")
	pushContact := fs.String("push-contact", env(getenv, "HERALD_PUSH_CONTACT", ""), "the VAPID contact push services see, mailto:you@example.org or an https: URL; empty for mailto:postmaster@localhost (HERALD_PUSH_CONTACT)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	maxFileBytes, err := herald.ParseSize(*maxFile)
	if err != nil {
		return fmt.Errorf("-max-file-size: %w", err)
	}
	quotaBytes, err := herald.ParseSize(*quota)
	if err != nil {
		return fmt.Errorf("-storage-quota: %w", err)
	}
	mode := service.SignupMode(*signup)
	switch mode {
	case service.SignupOpen, service.SignupClosed, service.SignupInvite:
	default:
		return fmt.Errorf("-signup must be open, closed or invite, not %q", *signup)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg := server.Config{Listen: *listen, DataDir: *data, DB: *db, Bus: *busSpec, Signup: mode, MasterKeyFile: *keyFile, Log: log}
	cfg.Pprof, cfg.NoMigrate = *pprofOn, *noMigrate
	cfg.Blobs, cfg.MaxFileSize, cfg.StorageQuota, cfg.UploadAbandoned = *blobsURL, maxFileBytes, quotaBytes, *abandoned
	cfg.BotLimits = service.BotLimits{PerSecond: *botRate, PerChatPerSecond: *botChatRate}
	cfg.EnvelopeRetention = *retention
	cfg.Reactions = strings.Fields(*reactions)
	cfg.BotAPI.WebhookAllowPrivate = *webhookPrivate
	cfg.Media = server.Media{UDP: *mediaUDP, PublicIP: *mediaIP, AllowPrivate: *mediaPrivate}
	cfg.PushAllowPrivate, cfg.PushSubscriber = *pushPrivate, *pushContact
	cfg.Limits.ConnsPerUser, cfg.Limits.ConnsPerAddr = *connsUser, *connsAddr
	cfg.AbuseLimits = service.Limits{DirectPerSecond: *sendRate, GroupPerSecond: *sendRate / 2, ChannelPerSecond: *sendRate / 2, SignupsPerHourPerAddr: *signupRate, JoinsPerMinutePerChat: *joinRate}
	cfg.AbuseLimits.CreatesPerHour, cfg.AbuseLimits.MaxOwnedChats, cfg.AbuseLimits.ReportsPerHour = *createRate, *maxOwned, *reportRate
	cfg.AbuseLimits.MemberChangesPerMinute, cfg.AbuseLimits.TypingEvery = *memberRate, *typingEvery
	cfg.AbuseLimits.MaxDevices = *maxDevices

	if sub == "migrate" {
		if strings.HasPrefix(*db, "postgres://") || strings.HasPrefix(*db, "postgresql://") {
			if err := postgres.Migrate(context.Background(), *db); err != nil {
				return err
			}
		} else {
			// Opening the SQLite store applies its migrations.
			cfg.Listen, cfg.Console = "127.0.0.1:0", true
			n, err := server.Open(cfg)
			if err != nil {
				return err
			}
			n.Shutdown(context.Background())
		}
		fmt.Fprintln(stdout, "schema is current")
		return nil
	}

	if sub == "admin" {
		cfg.Listen, cfg.Console = "127.0.0.1:0", true
		cfg.Log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		n, err := server.Open(cfg)
		if err != nil {
			return err
		}
		defer n.Shutdown(context.Background())
		return adminCommand(context.Background(), n.Service, fs.Args(), stdout)
	}

	if sub == "invite" {
		cfg.Listen, cfg.Console = "127.0.0.1:0", true
		n, err := server.Open(cfg)
		if err != nil {
			return err
		}
		defer n.Shutdown(context.Background())
		code, err := n.Service.CreateInvite(context.Background())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, code)
		return nil
	}

	// Before Open: the service sizes its Argon2id slots from this limit.
	limit, from, err := memoryLimit(*memLimit, getenv, os.ReadFile)
	if err != nil {
		return err
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	log.Info("memory limit", "bytes", debug.SetMemoryLimit(-1), "from", from)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := server.Open(cfg)
	if err != nil {
		return err
	}
	n.Serve()
	log.Info("heraldd listening", "addr", n.Addr(), "data", *data, "signup", string(mode))
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
