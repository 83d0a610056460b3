// Command herald-bench is Herald's load generator. It drives a server on
// this machine over the real protocol and reports throughput, end-to-end
// latency and what the load cost the server.
//
//	herald-bench direct  --server URL --pairs N --rate R --duration D [--max --p99 50ms]
//	herald-bench direct  --server URL --pairs N --in-flight K --duration D (closed loop)
//	herald-bench group   --server URL --members N --rate R --duration D
//	herald-bench channel --server URL --subscribers N --posts P
//	herald-bench connect --server URL --connections C --hold D
//	herald-bench sync    --server URL --missed K
//	herald-bench files   --server URL --size 1GiB [--ranges 200 --range-size 1MiB]
//
// Every subcommand takes --json (one JSON object on stdout instead of a
// table) and --users FILE (accounts made by `heraldd bench-users`; without
// it, users are signed up over the protocol). Only loopback servers are
// accepted, and every run stops by itself. See docs/BENCH-LOAD.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/heraldim/herald/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: herald-bench COMMAND [flags]

commands:
  direct   pairs of users in direct chats, open-loop at a fixed rate (--max: find the highest rate within a p99 bound; --in-flight K: closed loop)
  group    one group of N members, fan-out on write
  channel  one channel, N connected subscribers: time for a post to reach the last of them
  connect  ramp to C idle WebSocket connections and hold them; memory per connection; then one channel post to all of them
  sync     an offline device catches up on K missed updates
  files    upload one large generated file, download it, and time random range reads

run "herald-bench COMMAND -h" for its flags; docs/BENCH-LOAD.md explains the figures.
`

// Bounds that keep every run finite whatever the flags say.
const (
	maxDuration    = time.Hour
	maxPairs       = 100_000
	maxMembers     = 1000 // the server's fan-out-on-write group limit
	maxConnections = 1_000_000
	maxMissed      = 10_000_000
	maxPosts       = 100_000
	maxFileSize    = 64 << 30 // the server's own limit (-max-file-size, 2 GiB by default) usually refuses first
	maxRanges      = 100_000
	maxRangeSize   = 1 << 30
)

// common holds the flags every subcommand takes.
type common struct {
	server   string
	json     bool
	users    string
	signups  int
	quiet    bool
	deadline time.Duration
}

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	def := getenv("HERALD_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.server, "server", def, "the server's base URL, a loopback address only ($HERALD_SERVER); direct, group and channel take a comma-separated list of nodes and spread clients over them")
	fs.BoolVar(&c.json, "json", false, "print one JSON object with the figures instead of a table")
	fs.StringVar(&c.users, "users", "", "`FILE` of \"username token\" lines from `heraldd bench-users`; without it users are signed up over the protocol")
	fs.IntVar(&c.signups, "signup-parallel", 4, "signups in flight when users are signed up over the protocol")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines on stderr")
	fs.DurationVar(&c.deadline, "deadline", time.Hour, "stop everything after this long, whatever else the flags say")
}

// accounts loads --users.
func (c *common) accounts(log io.Writer) (*bench.Accounts, error) {
	a := &bench.Accounts{Parallel: c.signups, Progress: log}
	if c.users != "" {
		f, err := bench.ReadAccountsFile(c.users)
		if err != nil {
			return nil, err
		}
		a.File = f
	}
	return a, nil
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
		"direct": runDirect, "group": runGroup, "channel": runChannel, "connect": runConnect, "sync": runSync,
		"files": runFiles,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "herald-bench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := cmd(ctx, args[1:], getenv, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "herald-bench %s: %s\n", args[0], err)
		return 2
	}
	fmt.Fprintf(stderr, "herald-bench %s: %s\n", args[0], err)
	return 1
}

// parse parses a subcommand's flags and checks the common ones.
func parse(fs *flag.FlagSet, c *common, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	srv, err := bench.CheckServers(c.server)
	if err != nil {
		return usageError{err.Error()}
	}
	c.server = srv
	if c.deadline <= 0 {
		return usagef("--deadline must be positive")
	}
	return nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("herald-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func progress(c *common, stderr io.Writer) io.Writer {
	if c.quiet {
		return io.Discard
	}
	return stderr
}

// output prints a result as JSON or as a table, then returns runErr.
func output(c *common, stdout io.Writer, res interface{ Write(io.Writer) error }, runErr error) error {
	if c.json {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := res.Write(stdout); err != nil {
		return err
	}
	return runErr
}

func checkRange(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return usagef("--%s must be between %d and %d", name, lo, hi)
	}
	return nil
}

func checkDuration(name string, d time.Duration) error {
	if d <= 0 || d > maxDuration {
		return usagef("--%s must be positive and at most %s", name, maxDuration)
	}
	return nil
}

// loadFlags are the flags of direct and group.
type loadFlags struct {
	rate        float64
	duration    time.Duration
	textSize    int
	drain       time.Duration
	maxInFlight int
	parallel    int
}

func (l *loadFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&l.rate, "rate", 1000, "messages per second, open loop (with --max: the first rate tried)")
	fs.DurationVar(&l.duration, "duration", 10*time.Second, "how long to send (with --max: each step)")
	fs.IntVar(&l.textSize, "text-size", 64, "bytes of text per message")
	fs.DurationVar(&l.drain, "drain", 10*time.Second, "how long to wait after the last send for answers and deliveries")
	fs.IntVar(&l.maxInFlight, "max-in-flight", 50_000, "sends awaiting an answer before further sends are skipped (and reported)")
	fs.IntVar(&l.parallel, "parallel", 32, "clients connected, chats created at once during setup")
}

func (l *loadFlags) check() error {
	if l.rate <= 0 || l.rate > 10_000_000 {
		return usagef("--rate must be positive and at most 10,000,000")
	}
	if err := checkDuration("duration", l.duration); err != nil {
		return err
	}
	if err := checkDuration("drain", l.drain); err != nil {
		return err
	}
	if err := checkRange("text-size", l.textSize, 1, 4096); err != nil {
		return err
	}
	if err := checkRange("max-in-flight", l.maxInFlight, 1, 1_000_000); err != nil {
		return err
	}
	return checkRange("parallel", l.parallel, 1, 10_000)
}

func (l *loadFlags) config(c *common, accs *bench.Accounts, log io.Writer) bench.LoadConfig {
	return bench.LoadConfig{
		Server: c.server, Rate: l.rate, Duration: l.duration, TextSize: l.textSize, Drain: l.drain,
		MaxInFlight: l.maxInFlight, Parallel: l.parallel, Accounts: accs, Log: log,
	}
}

func runDirect(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("direct", stderr)
	var (
		c        common
		l        loadFlags
		pairs    = fs.Int("pairs", 100, "pairs of users, each pair in its own direct chat, sending both ways")
		maxMode  = fs.Bool("max", false, "search for the highest rate whose p99 latency stays within --p99")
		p99      = fs.Duration("p99", 50*time.Millisecond, "with --max: the bound on p99 latency (scheduled send to arrival)")
		maxTime  = fs.Duration("max-time", 5*time.Minute, "with --max: the time budget of the whole search")
		maxSteps = fs.Int("max-steps", 12, "with --max: at most this many runs")
		pause    = fs.Duration("pause", 2*time.Second, "with --max: rest between runs")
		inFlight = fs.Int("in-flight", 0, "closed loop instead of --rate: the first member of each pair sends to the other, keeping this many sends awaiting an answer")
	)
	c.register(fs, getenv)
	l.register(fs)
	if err := parse(fs, &c, args); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	if err := checkRange("pairs", *pairs, 1, maxPairs); err != nil {
		return err
	}
	if *maxMode {
		if err := checkDuration("max-time", *maxTime); err != nil {
			return err
		}
		if err := checkRange("max-steps", *maxSteps, 1, 50); err != nil {
			return err
		}
		if *p99 <= 0 || *pause < 0 {
			return usagef("--p99 must be positive and --pause not negative")
		}
		if *inFlight != 0 {
			return usagef("--max searches open-loop rates; it does not take --in-flight")
		}
	}
	if err := checkRange("in-flight", *inFlight, 0, 10_000); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	log := progress(&c, stderr)
	accs, err := c.accounts(log)
	if err != nil {
		return err
	}
	cfg := l.config(&c, accs, log)
	cfg.InFlight = *inFlight
	if !*maxMode {
		res, err := bench.RunDirect(ctx, cfg, *pairs)
		if res.Scenario == "" {
			return err
		}
		return output(&c, stdout, res, err)
	}
	d, err := bench.NewDirect(ctx, cfg, *pairs)
	if err != nil {
		return err
	}
	defer d.Close()
	steps := 0
	res, err := bench.SearchMax(ctx, bench.SearchConfig{
		Start: l.rate, P99: *p99, MaxSteps: *maxSteps, Budget: *maxTime, StepCost: l.duration + l.drain + *pause,
	}, func(ctx context.Context, rate float64) (bench.LoadResult, error) {
		if steps > 0 {
			select {
			case <-ctx.Done():
				return bench.LoadResult{}, ctx.Err()
			case <-time.After(*pause):
			}
		}
		steps++
		fmt.Fprintf(log, "step %d: %.0f msg/s for %s\n", steps, rate, l.duration)
		r, err := d.Run(ctx, rate, l.duration)
		if err == nil {
			fmt.Fprintf(log, "  accepted %.0f/s, p99 %.1f ms\n", r.AcceptedPerSec, float64(r.Latency.P99))
		}
		return r.LoadResult, err
	})
	res.Scenario, res.Pairs = "direct", *pairs
	return output(&c, stdout, res, err)
}

func runGroup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("group", stderr)
	var (
		c       common
		l       loadFlags
		members = fs.Int("members", 100, "members of the group; each message is delivered to the others")
	)
	c.register(fs, getenv)
	l.register(fs)
	if err := parse(fs, &c, args); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	if err := checkRange("members", *members, 2, maxMembers); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	log := progress(&c, stderr)
	accs, err := c.accounts(log)
	if err != nil {
		return err
	}
	res, err := bench.RunGroup(ctx, l.config(&c, accs, log), *members)
	if res.Scenario == "" {
		return err
	}
	return output(&c, stdout, res, err)
}

func runConnect(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("connect", stderr)
	var (
		c        common
		conns    = fs.Int("connections", 1000, "idle WebSocket connections to open")
		hold     = fs.Duration("hold", 10*time.Second, "how long to hold them open once all are open")
		users    = fs.Int("distinct-users", 0, "accounts the connections authenticate as, round robin (default: all of --users, else 20 signed up)")
		parallel = fs.Int("parallel", 64, "connections being opened at once")
		sources  = fs.Int("sources", 0, "source addresses 127.0.0.2… to spread connections over (default: one per 20,000)")
		maxFail  = fs.Int("max-failures", 100, "stop the ramp after this many failed connections")
		rampMax  = fs.Duration("ramp-timeout", 10*time.Minute, "bound on the ramp")
		noBcast  = fs.Bool("no-broadcast", false, "skip the closing broadcast (one channel post to every connection)")
		bcastMax = fs.Duration("broadcast-timeout", time.Minute, "bound on the wait for the broadcast to reach every connection")
	)
	c.register(fs, getenv)
	if err := parse(fs, &c, args); err != nil {
		return err
	}
	for _, chk := range []error{
		checkRange("connections", *conns, 1, maxConnections),
		checkDuration("broadcast-timeout", *bcastMax),
		checkDuration("hold", *hold),
		checkDuration("ramp-timeout", *rampMax),
		checkRange("parallel", *parallel, 1, 10_000),
		checkRange("sources", *sources, 0, 250),
		checkRange("max-failures", *maxFail, 1, maxConnections),
		checkRange("distinct-users", *users, 0, maxConnections),
	} {
		if chk != nil {
			return chk
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	log := progress(&c, stderr)
	accs, err := c.accounts(log)
	if err != nil {
		return err
	}
	if strings.Contains(c.server, ",") {
		return usagef("--server: this scenario takes one server")
	}
	res, err := bench.RunConnect(ctx, bench.ConnectConfig{
		Server: c.server, Connections: *conns, Hold: *hold, Users: *users, Parallel: *parallel,
		Sources: *sources, MaxFailures: *maxFail, RampTimeout: *rampMax, Accounts: accs, Log: log,
		NoBroadcast: *noBcast, BroadcastTimeout: *bcastMax,
	})
	if res.Opened == 0 && err != nil {
		return err
	}
	return output(&c, stdout, res, err)
}

func runSync(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("sync", stderr)
	var (
		c        common
		missed   = fs.Int("missed", 10_000, "messages sent to the device while it is offline")
		users    = fs.Int("sender-users", 1, "users sending the missed messages, each in its own direct chat with the device")
		senders  = fs.Int("senders", 8, "connections the senders send over (at least one per sender user)")
		inFlight = fs.Int("in-flight", 256, "sends outstanding at once, across the sender connections")
		textSize = fs.Int("text-size", 64, "bytes of text per message")
		timeout  = fs.Duration("timeout", 10*time.Minute, "bound on the send phase and on the catch-up, each")
	)
	c.register(fs, getenv)
	if err := parse(fs, &c, args); err != nil {
		return err
	}
	for _, chk := range []error{
		checkRange("missed", *missed, 1, maxMissed),
		checkRange("sender-users", *users, 1, 10_000),
		checkRange("senders", *senders, 1, 10_000),
		checkRange("in-flight", *inFlight, 1, 100_000),
		checkRange("text-size", *textSize, 1, 4096),
		checkDuration("timeout", *timeout),
	} {
		if chk != nil {
			return chk
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	log := progress(&c, stderr)
	accs, err := c.accounts(log)
	if err != nil {
		return err
	}
	if strings.Contains(c.server, ",") {
		return usagef("--server: this scenario takes one server")
	}
	res, err := bench.RunSync(ctx, bench.SyncConfig{
		Server: c.server, Missed: *missed, SenderUsers: *users, Senders: *senders, InFlight: *inFlight, TextSize: *textSize,
		Timeout: *timeout, Accounts: accs, Log: log,
	})
	if res.Accepted == 0 && err != nil {
		return err
	}
	return output(&c, stdout, res, err)
}

func runChannel(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("channel", stderr)
	var (
		c        common
		subs     = fs.Int("subscribers", 1000, "subscribers, each its own user, joined and connected (idle raw WebSockets) before the posts")
		posts    = fs.Int("posts", 20, "posts, one at a time: each is sent when the previous one reached every subscriber")
		gap      = fs.Duration("gap", 100*time.Millisecond, "pause between a post reaching everyone and the next post")
		timeout  = fs.Duration("post-timeout", 30*time.Second, "how long a post may take to reach every subscriber before the next is sent anyway")
		joinPar  = fs.Int("join-parallel", 32, "joins in flight, each over its own short-lived connection")
		parallel = fs.Int("parallel", 64, "subscriber connections being opened at once")
		sources  = fs.Int("sources", 0, "source addresses 127.0.0.2… to spread the subscriber connections over (default: one per 20,000)")
		textSize = fs.Int("text-size", 64, "bytes of text per post")
	)
	c.register(fs, getenv)
	if err := parse(fs, &c, args); err != nil {
		return err
	}
	for _, chk := range []error{
		checkRange("subscribers", *subs, 1, maxConnections),
		checkRange("posts", *posts, 1, maxPosts),
		checkDuration("post-timeout", *timeout),
		checkRange("join-parallel", *joinPar, 1, 10_000),
		checkRange("parallel", *parallel, 1, 10_000),
		checkRange("sources", *sources, 0, 250),
		checkRange("text-size", *textSize, 1, 4096),
	} {
		if chk != nil {
			return chk
		}
	}
	if *gap < 0 || *gap > maxDuration {
		return usagef("--gap must be between 0 and %s", maxDuration)
	}
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	log := progress(&c, stderr)
	accs, err := c.accounts(log)
	if err != nil {
		return err
	}
	g := *gap
	if g == 0 {
		g = -1 // no pause (ChannelConfig takes 0 as the default)
	}
	res, err := bench.RunChannel(ctx, bench.ChannelConfig{
		Server: c.server, Subscribers: *subs, Posts: *posts, Gap: g, PostTimeout: *timeout,
		JoinParallel: *joinPar, Parallel: *parallel, Sources: *sources, TextSize: *textSize, Accounts: accs, Log: log,
	})
	if res.Sent == 0 && err != nil {
		return err
	}
	return output(&c, stdout, res, err)
}

func runFiles(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("files", stderr)
	var (
		c         common
		size      = bench.ByteSize(1 << 30)
		rangeSize = bench.ByteSize(1 << 20)
		ranges    = fs.Int("ranges", 200, "random range reads after the download, one at a time, from the middle half of the file")
		timeout   = fs.Duration("timeout", 30*time.Minute, "bound on the upload, the download and the range reads, each")
	)
	fs.Var(&size, "size", "the file's size, e.g. 1GiB or 100MiB (the content is generated, never held in memory)")
	fs.Var(&rangeSize, "range-size", "bytes per range read, e.g. 1MiB")
	c.register(fs, getenv)
	if err := parse(fs, &c, args); err != nil {
		return err
	}
	switch {
	case size > maxFileSize:
		return usagef("--size must be at most 64GiB")
	case rangeSize > maxRangeSize || rangeSize > size:
		return usagef("--range-size must be at most 1GiB and at most --size")
	}
	for _, chk := range []error{
		checkRange("ranges", *ranges, 0, maxRanges),
		checkDuration("timeout", *timeout),
	} {
		if chk != nil {
			return chk
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	log := progress(&c, stderr)
	accs, err := c.accounts(log)
	if err != nil {
		return err
	}
	n := *ranges
	if n == 0 {
		n = -1 // none (FilesConfig takes 0 as the default)
	}
	res, err := bench.RunFiles(ctx, bench.FilesConfig{
		Server: c.server, Size: int64(size), Ranges: n, RangeSize: int64(rangeSize), Timeout: *timeout, Accounts: accs, Log: log,
	})
	if res.FileID == "" && err != nil {
		return err
	}
	return output(&c, stdout, res, err)
}
