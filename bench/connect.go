package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// ConnectConfig configures the connect scenario.
type ConnectConfig struct {
	Server      string
	Connections int
	Hold        time.Duration
	// Users is how many distinct accounts the connections authenticate
	// as, round robin (default: every account of the users file, at most
	// Connections; 20 signed up over the protocol without one).
	Users int
	// Parallel bounds connections being opened at once (default 64).
	Parallel int
	// Sources is how many source addresses (127.0.0.2 …) the connections
	// are spread over (default: one per 20,000 connections, at least 1).
	Sources int
	// MaxFailures stops the ramp after this many failed connections
	// (default 100).
	MaxFailures int
	// RampTimeout bounds the ramp (default 10 minutes).
	RampTimeout time.Duration
	// NoBroadcast skips the closing broadcast: by default the users join
	// one channel before the ramp, and after the hold one post goes to
	// every connection.
	NoBroadcast bool
	// BroadcastTimeout bounds the wait for the post to reach every
	// connection (default 1 minute).
	BroadcastTimeout time.Duration
	Accounts         *Accounts
	Log              io.Writer
}

// ConnectResult is the outcome of the connect scenario.
type ConnectResult struct {
	Scenario     string            `json:"scenario"`
	Requested    int               `json:"requested"`
	Opened       int               `json:"opened"`
	Failed       int               `json:"failed"`
	Errors       map[string]int    `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"` // the first error of each kind
	Users        int               `json:"users"`
	Sources      int               `json:"source_addresses"`
	RampSeconds  float64           `json:"ramp_s"`
	RampPerSec   float64           `json:"ramp_per_s"`
	// Connect latency: from starting to dial to the auth.resume answer.
	ConnectLatency Latency `json:"connect_latency"`
	HoldSeconds    float64 `json:"hold_s"`
	// Dropped connections closed by the server or the network during
	// the hold.
	Dropped int `json:"dropped"`
	// FramesReceived counts frames pushed to the idle connections.
	FramesReceived int64 `json:"frames_received"`
	// Server figures: RSS before the ramp, after it and at the end of the
	// hold; per-connection costs are the deltas divided by Opened.
	Server              ServerStats `json:"server"`
	RSSEndMiB           float64     `json:"rss_end_mib"`
	BytesPerConn        float64     `json:"server_rss_bytes_per_conn"`
	HeapBytesPerConn    float64     `json:"server_heap_bytes_per_conn"`
	GoroutinesPerConn   float64     `json:"server_goroutines_per_conn"`
	ServerConnections   float64     `json:"server_connections"` // herald_connections after the ramp
	GeneratorHeapPerCon float64     `json:"generator_heap_bytes_per_conn"`
	// The closing broadcast: one channel post, timed from the owner's
	// send to its arrival on each connection.
	Broadcast *BroadcastResult `json:"broadcast,omitempty"`
}

// BroadcastResult is how one post reached every idle connection.
type BroadcastResult struct {
	Channel  string  `json:"channel"`
	Reached  int     `json:"reached"` // connections that received the post
	Missing  int     `json:"missing"` // open connections that did not, by the timeout
	LastMS   float64 `json:"last_ms"` // send → arrival at the last connection
	Delivery Latency `json:"delivery"`
}

func (c *ConnectConfig) defaults() {
	if c.Parallel <= 0 {
		c.Parallel = 64
	}
	if c.Sources <= 0 {
		c.Sources = max(1, (c.Connections+19_999)/20_000)
	}
	c.Sources = min(c.Sources, 250)
	if c.MaxFailures <= 0 {
		c.MaxFailures = 100
	}
	if c.RampTimeout <= 0 {
		c.RampTimeout = 10 * time.Minute
	}
	if c.BroadcastTimeout <= 0 {
		c.BroadcastTimeout = time.Minute
	}
	if c.Accounts == nil {
		c.Accounts = &Accounts{Parallel: 4}
	}
	if c.Users <= 0 {
		c.Users = len(c.Accounts.File)
		if c.Users == 0 {
			c.Users = 20
		}
	}
	c.Users = min(c.Users, c.Connections)
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// fdMargin is the descriptors a run needs besides its connections.
const fdMargin = 256

// RunConnect opens Connections idle WebSocket connections (a raw client:
// dial, auth.resume, then only reading), holds them open for Hold, and
// measures what they cost the server; then, unless NoBroadcast, one
// channel post (every user joined the channel before the ramp) goes to
// all of them, timed to the last.
func RunConnect(ctx context.Context, cfg ConnectConfig) (ConnectResult, error) {
	cfg.defaults()
	res := ConnectResult{Scenario: "connect", Requested: cfg.Connections, Errors: map[string]int{}, ErrorSamples: map[string]string{}}
	if cfg.Connections < 1 {
		return res, fmt.Errorf("--connections must be at least 1")
	}
	// The server's limit first: when it runs in this process (tests),
	// raising our own limit would raise its too.
	before, err := SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	if before.MaxFDs > 0 && before.MaxFDs-before.OpenFDs < float64(cfg.Connections) {
		return res, fmt.Errorf("--connections %d: the server may open only %.0f files and has %.0f open; restart it with a higher limit (e.g. `ulimit -n %d` in its shell; raise the hard limit as root first with `ulimit -Hn`)",
			cfg.Connections, before.MaxFDs, before.OpenFDs, cfg.Connections+fdMargin*4)
	}
	if _, err := RaiseFileLimit(uint64(cfg.Connections + fdMargin)); err != nil {
		return res, fmt.Errorf("--connections %d: %w", cfg.Connections, err)
	}
	want := cfg.Users
	if !cfg.NoBroadcast {
		want++ // the channel's owner, who posts and holds no idle connection
	}
	accs, err := cfg.Accounts.Take(ctx, cfg.Server, want)
	if err != nil {
		return res, err
	}
	clients := sourceClients(cfg.Sources)
	url := wsURL(cfg.Server)
	var bc *broadcaster
	if !cfg.NoBroadcast {
		if bc, err = newBroadcaster(ctx, cfg.Server, accs[0], accs[1:], clients, url, cfg.Log); err != nil {
			return res, err
		}
		defer bc.close()
		accs = accs[1:]
	}
	res.Users, res.Sources = len(accs), cfg.Sources

	var genMem0 runtime.MemStats
	runtime.ReadMemStats(&genMem0)
	before, err = SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}

	conns := make([]*websocket.Conn, cfg.Connections)
	var (
		mu        sync.Mutex
		failed    int
		opened    atomic.Int64
		dropped   atomic.Int64
		frames    atomic.Int64
		closing   atomic.Bool
		readers   sync.WaitGroup
		lat       = NewHistogram()
		lastPrint = time.Now()
	)
	rampCtx, cancel := context.WithTimeout(ctx, cfg.RampTimeout)
	defer cancel()
	fmt.Fprintf(cfg.Log, "opening %d connections as %d users from %d source addresses\n", cfg.Connections, len(accs), len(clients))
	start := time.Now()
	err = forEach(rampCtx, cfg.Connections, cfg.Parallel, func(i int) error {
		t0 := time.Now()
		dctx, dcancel := context.WithTimeout(rampCtx, 30*time.Second)
		ws, err := dialResume(dctx, clients[i%len(clients)], url, accs[i%len(accs)].Token)
		dcancel()
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			failed++
			k := errorKind(err)
			res.Errors[k]++
			if _, ok := res.ErrorSamples[k]; !ok {
				res.ErrorSamples[k] = err.Error()
			}
			if failed >= cfg.MaxFailures {
				return fmt.Errorf("%d connections failed; stopping the ramp (first: %s)", failed, res.ErrorSamples[k])
			}
			return nil
		}
		lat.Record(time.Since(t0))
		conns[i] = ws
		n := opened.Add(1)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				_, data, err := ws.Read(context.Background())
				if err != nil {
					if !closing.Load() {
						dropped.Add(1)
					}
					return
				}
				frames.Add(1)
				if bc != nil {
					bc.saw(data)
				}
			}
		}()
		mu.Lock()
		if time.Since(lastPrint) > 5*time.Second {
			lastPrint = time.Now()
			fmt.Fprintf(cfg.Log, "%d connections open (%.0f/s)\n", n, float64(n)/time.Since(start).Seconds())
		}
		mu.Unlock()
		return nil
	})
	ramp := time.Since(start)
	res.Opened, res.Failed = int(opened.Load()), failed
	res.RampSeconds = ramp.Seconds()
	res.RampPerSec = float64(res.Opened) / ramp.Seconds()
	res.ConnectLatency = lat.Summary()

	defer func() {
		closing.Store(true)
		fmt.Fprintf(cfg.Log, "closing %d connections\n", res.Opened)
		forEach(context.Background(), len(conns), 256, func(i int) error {
			if conns[i] != nil {
				conns[i].Close(websocket.StatusNormalClosure, "")
			}
			return nil
		})
		readers.Wait()
	}()
	if err != nil {
		return res, err
	}

	ramped, err := SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	var genMem1 runtime.MemStats
	runtime.ReadMemStats(&genMem1)
	res.Server = Diff(before, ramped)
	res.ServerConnections = ramped.Connections
	if n := float64(res.Opened); n > 0 {
		res.BytesPerConn = (ramped.RSS - before.RSS) / n
		res.HeapBytesPerConn = (ramped.HeapInuse - before.HeapInuse) / n
		res.GoroutinesPerConn = (ramped.Goroutines - before.Goroutines) / n
		res.GeneratorHeapPerCon = (float64(genMem1.HeapInuse+genMem1.StackInuse) - float64(genMem0.HeapInuse+genMem0.StackInuse)) / n
	}

	fmt.Fprintf(cfg.Log, "%d connections open after %.1f s; holding for %s\n", res.Opened, ramp.Seconds(), cfg.Hold)
	holdStart := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Hold):
	}
	res.HoldSeconds = time.Since(holdStart).Seconds()
	if end, err := SampleServer(ctx, cfg.Server); err == nil {
		res.RSSEndMiB = end.RSS / (1 << 20)
	}
	if bc != nil && ctx.Err() == nil {
		open := res.Opened - int(dropped.Load())
		fmt.Fprintf(cfg.Log, "posting to @%s, which %d connections follow\n", bc.name, open)
		b, err := bc.post(ctx, open, cfg.BroadcastTimeout)
		res.Broadcast = &b
		if err != nil {
			return res, err
		}
	}
	res.Dropped = int(dropped.Load())
	res.FramesReceived = frames.Load()
	return res, ctx.Err()
}
