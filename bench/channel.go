package bench

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

// ChannelConfig configures the channel scenario.
type ChannelConfig struct {
	Server      string
	Subscribers int // connected subscribers, each its own user
	Posts       int
	// Gap is the pause between one post reaching every subscriber and the
	// next post (default 100 ms).
	Gap time.Duration
	// PostTimeout is how long a post may take to reach every subscriber
	// before the next one is sent anyway (default 30 s); what has not
	// arrived by the end of the run is reported missing.
	PostTimeout time.Duration
	// JoinParallel bounds joins in flight, each over its own short-lived
	// connection (default 32); Parallel bounds subscriber connections
	// being opened at once (default 64).
	JoinParallel int
	Parallel     int
	// Sources is how many source addresses (127.0.0.2 …) the subscriber
	// connections are spread over (default: one per 20,000).
	Sources  int
	TextSize int // bytes of text per post (default 64)
	Accounts *Accounts
	Log      io.Writer
}

func (c *ChannelConfig) defaults() {
	if c.Gap < 0 {
		c.Gap = 0
	} else if c.Gap == 0 {
		c.Gap = 100 * time.Millisecond
	}
	if c.PostTimeout <= 0 {
		c.PostTimeout = 30 * time.Second
	}
	if c.JoinParallel <= 0 {
		c.JoinParallel = 32
	}
	if c.Parallel <= 0 {
		c.Parallel = 64
	}
	if c.Sources <= 0 {
		c.Sources = max(1, (c.Subscribers+19_999)/20_000)
	}
	c.Sources = min(c.Sources, 250)
	if c.TextSize <= 0 {
		c.TextSize = 64
	}
	if c.Accounts == nil {
		c.Accounts = &Accounts{Parallel: 4}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// ChannelResult is the outcome of the channel scenario.
type ChannelResult struct {
	Scenario    string `json:"scenario"`
	Channel     string `json:"channel"` // the run's public @name
	Subscribers int    `json:"subscribers"`
	Connected   int    `json:"connected"` // subscriber connections open when the posts began
	Sources     int    `json:"source_addresses"`
	Posts       int    `json:"posts"`
	Sent        int    `json:"sent"` // posts the server accepted
	// Setup: joins over short-lived connections, then the idle
	// subscriber connections.
	JoinSeconds      float64           `json:"join_s"`
	JoinsRateLimited int               `json:"joins_rate_limited"` // joins refused with RATE_LIMITED (each retried after the server's wait)
	ConnectSeconds   float64           `json:"connect_s"`
	Errors           map[string]int    `json:"errors"`
	ErrorSamples     map[string]string `json:"error_samples,omitempty"`
	// Per post, from the start of its send to its arrival at the last
	// (first) subscriber; the posts go one at a time.
	ToLast  Latency `json:"time_to_last"`
	ToFirst Latency `json:"time_to_first"`
	// Every delivery: post send to arrival at one subscriber.
	Delivery Latency `json:"delivery"`
	// The owner's send to the server's answer.
	SendAck Latency `json:"send_ack"`
	// Counts: each subscriber must receive each post exactly once (by the
	// update's chat_pts).
	Expected   int64 `json:"expected"` // Sent × Connected
	Delivered  int64 `json:"delivered"`
	Missing    int64 `json:"missing"`
	Duplicates int64 `json:"duplicates"`
	Unexpected int64 `json:"unexpected"` // channel updates with a chat_pts of no post of this run
	Other      int64 `json:"other_frames"`
	Dropped    int   `json:"dropped"` // subscriber connections closed by the server or the network
	// DeliveredPerSec divides the deliveries by the time posts were in
	// flight (the sum of the times to the last subscriber).
	DeliveredPerSec float64 `json:"delivered_per_s"`
	// Server memory: RSS before and after the subscribers connected; per
	// subscriber is the growth divided by Connected.
	RSSBeforeConnectMiB  float64     `json:"rss_before_connect_mib"`
	RSSAfterConnectMiB   float64     `json:"rss_after_connect_mib"`
	BytesPerSubscriber   float64     `json:"server_rss_bytes_per_subscriber"`
	HeapPerSubscriber    float64     `json:"server_heap_bytes_per_subscriber"`
	GoroutinesPerSub     float64     `json:"server_goroutines_per_subscriber"`
	Server               ServerStats `json:"server"` // during the posts
	GeneratorCPU         float64     `json:"generator_cpu_cores"`
	ServerConnectionsNow float64     `json:"server_connections"`
}

// postSlot tracks one post's arrivals; times are nanoseconds since the
// run's clock started.
type postSlot struct {
	sent  atomic.Int64
	first atomic.Int64
	last  atomic.Int64
	count atomic.Int64
	all   chan struct{} // closed when count reaches the target
}

// RunChannel creates a public channel, has Subscribers users join it and
// then hold idle raw WebSocket connections, and times Posts posts from
// the owner, one at a time, to the last subscriber.
func RunChannel(ctx context.Context, cfg ChannelConfig) (ChannelResult, error) {
	cfg.defaults()
	res := ChannelResult{Scenario: "channel", Subscribers: cfg.Subscribers, Posts: cfg.Posts, Sources: cfg.Sources,
		Errors: map[string]int{}, ErrorSamples: map[string]string{}}
	if cfg.Subscribers < 1 || cfg.Posts < 1 {
		return res, fmt.Errorf("--subscribers and --posts must be at least 1")
	}
	before, err := SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	if before.MaxFDs > 0 && before.MaxFDs-before.OpenFDs < float64(cfg.Subscribers+cfg.JoinParallel) {
		return res, fmt.Errorf("--subscribers %d: the server may open only %.0f files and has %.0f open; restart it with a higher limit (e.g. `ulimit -n %d` in its shell)",
			cfg.Subscribers, before.MaxFDs, before.OpenFDs, cfg.Subscribers+fdMargin*4)
	}
	if _, err := RaiseFileLimit(uint64(cfg.Subscribers + cfg.JoinParallel + fdMargin)); err != nil {
		return res, fmt.Errorf("--subscribers %d: %w", cfg.Subscribers, err)
	}
	accs, err := cfg.Accounts.Take(ctx, cfg.Server, 1+cfg.Subscribers)
	if err != nil {
		return res, err
	}
	owner, subs := accs[0], accs[1:]
	clients := sourceClients(cfg.Sources)
	failure := func(err error) {
		k := errorKind(err)
		res.Errors[k]++
		if _, ok := res.ErrorSamples[k]; !ok {
			res.ErrorSamples[k] = err.Error()
		}
	}

	// The owner and the channel.
	oc, err := client.New(client.Options{Server: Pick(cfg.Server, 0), Token: owner.Token})
	if err != nil {
		return res, err
	}
	defer oc.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := oc.Connect(cctx); err != nil {
		return res, fmt.Errorf("connect as %s: %w", owner.Username, err)
	}
	res.Channel = channelName()
	ch, err := oc.CreateChannel(cctx, &pb.CreateChannelRequest{Username: res.Channel, Title: "herald-bench " + res.Channel})
	if err != nil {
		return res, fmt.Errorf("channels.create: %w", err)
	}
	base := ch.Pts // the channel log's position: post k gets chat_pts base+k+1

	// Joins, each over a short-lived connection.
	fmt.Fprintf(cfg.Log, "channel @%s: %d users joining, %d at a time\n", res.Channel, len(subs), cfg.JoinParallel)
	var (
		mu        sync.Mutex
		limited   atomic.Int64
		joined    atomic.Int64
		lastPrint = time.Now()
	)
	start := time.Now()
	err = forEach(ctx, len(subs), cfg.JoinParallel, func(i int) error {
		err := joinChannel(ctx, clients[i%len(clients)], wsURL(Pick(cfg.Server, i)), subs[i].Token, res.Channel, &limited)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failure(err)
			return fmt.Errorf("%s joining @%s: %w", subs[i].Username, res.Channel, err)
		}
		if n := joined.Add(1); time.Since(lastPrint) > 5*time.Second {
			lastPrint = time.Now()
			fmt.Fprintf(cfg.Log, "%d joined (%.0f/s)\n", n, float64(n)/time.Since(start).Seconds())
		}
		return nil
	})
	res.JoinSeconds = time.Since(start).Seconds()
	res.JoinsRateLimited = int(limited.Load())
	if err != nil {
		return res, err
	}

	// The subscribers connect and read.
	clock := time.Now()
	now := func() int64 { return int64(time.Since(clock)) }
	slots := make([]postSlot, cfg.Posts)
	for i := range slots {
		slots[i].first.Store(math.MaxInt64)
		slots[i].all = make(chan struct{})
	}
	var (
		target     atomic.Int64 // subscribers every post must reach
		delivered  atomic.Int64
		dups       atomic.Int64
		unexpected atomic.Int64
		other      atomic.Int64
		dropped    atomic.Int64
		closing    atomic.Bool
		readers    sync.WaitGroup
		delivery   = NewHistogram()
	)
	target.Store(math.MaxInt64)
	got := make([][]uint8, len(subs))
	read := func(ws *websocket.Conn, seen []uint8) {
		defer readers.Done()
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				if !closing.Load() {
					dropped.Add(1)
				}
				return
			}
			at := now()
			var f pb.Frame
			if proto.Unmarshal(data, &f) != nil {
				other.Add(1)
				continue
			}
			u := f.GetUpdate()
			m := u.GetNewMessage()
			if u == nil || u.Pts != 0 || u.ChatPts == 0 || m == nil || m.ChatId != ch.Id {
				other.Add(1)
				continue
			}
			k := u.ChatPts - base - 1
			if k < 0 || k >= int64(len(slots)) {
				unexpected.Add(1)
				continue
			}
			seen[k]++
			if seen[k] > 1 {
				dups.Add(1)
				continue
			}
			s := &slots[k]
			delivered.Add(1)
			delivery.Record(time.Duration(at - s.sent.Load()))
			for v := s.first.Load(); at < v && !s.first.CompareAndSwap(v, at); v = s.first.Load() {
			}
			for v := s.last.Load(); at > v && !s.last.CompareAndSwap(v, at); v = s.last.Load() {
			}
			if s.count.Add(1) == target.Load() {
				close(s.all)
			}
		}
	}
	conns := make([]*websocket.Conn, len(subs))
	defer func() {
		closing.Store(true)
		forEach(context.Background(), len(conns), 256, func(i int) error {
			if conns[i] != nil {
				conns[i].Close(websocket.StatusNormalClosure, "")
			}
			return nil
		})
		readers.Wait()
	}()
	runtime.GC()
	preConnect, err := SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	fmt.Fprintf(cfg.Log, "opening %d subscriber connections from %d source addresses\n", len(subs), len(clients))
	var opened atomic.Int64
	start = time.Now()
	err = forEach(ctx, len(subs), cfg.Parallel, func(i int) error {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		ws, err := dialResume(dctx, clients[i%len(clients)], wsURL(Pick(cfg.Server, i)), subs[i].Token)
		dcancel()
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			failure(err)
			return fmt.Errorf("connecting %s: %w", subs[i].Username, err)
		}
		conns[i] = ws
		got[i] = make([]uint8, cfg.Posts)
		readers.Add(1)
		go read(ws, got[i])
		n := opened.Add(1)
		mu.Lock()
		if time.Since(lastPrint) > 5*time.Second {
			lastPrint = time.Now()
			fmt.Fprintf(cfg.Log, "%d connections open (%.0f/s)\n", n, float64(n)/time.Since(start).Seconds())
		}
		mu.Unlock()
		return nil
	})
	res.ConnectSeconds = time.Since(start).Seconds()
	res.Connected = int(opened.Load())
	if err != nil {
		return res, err
	}
	connected, err := SampleServer(ctx, cfg.Server)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	res.RSSBeforeConnectMiB, res.RSSAfterConnectMiB = preConnect.RSS/(1<<20), connected.RSS/(1<<20)
	res.ServerConnectionsNow = connected.Connections
	if n := float64(res.Connected); n > 0 {
		res.BytesPerSubscriber = (connected.RSS - preConnect.RSS) / n
		res.HeapPerSubscriber = (connected.HeapInuse - preConnect.HeapInuse) / n
		res.GoroutinesPerSub = (connected.Goroutines - preConnect.Goroutines) / n
	}
	target.Store(int64(res.Connected))

	// The posts, one at a time.
	fmt.Fprintf(cfg.Log, "%d subscribers connected in %.1f s; posting %d posts\n", res.Connected, res.ConnectSeconds, cfg.Posts)
	ack := NewHistogram()
	text := strings.Repeat("p", cfg.TextSize)
	cpu0 := ownCPU()
	postStart := time.Now()
	var postErr error
	for k := range slots {
		if k > 0 && cfg.Gap > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Gap):
			}
		}
		if ctx.Err() != nil {
			postErr = ctx.Err()
			break
		}
		s := &slots[k]
		req := &pb.SendRequest{Peer: &pb.Peer{ChatId: ch.Id}, Text: text, RandomId: client.RandomID()}
		var err error
		for {
			s.sent.Store(now())
			sctx, scancel := context.WithTimeout(ctx, cfg.PostTimeout)
			_, err = oc.Send(sctx, req)
			scancel()
			var he *herald.Error
			if !errors.As(err, &he) || he.Kind != herald.RateLimited {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(max(he.RetryAfter, 10*time.Millisecond)):
			}
		}
		if err != nil {
			failure(err)
			postErr = fmt.Errorf("post %d: %w", k+1, err)
			break
		}
		ack.Record(time.Duration(now() - s.sent.Load()))
		res.Sent++
		select {
		case <-s.all:
		case <-time.After(cfg.PostTimeout):
			fmt.Fprintf(cfg.Log, "post %d reached %d of %d subscribers within %s\n", k+1, s.count.Load(), res.Connected, cfg.PostTimeout)
		case <-ctx.Done():
		}
		if cfg.Log != io.Discard && (k+1)%max(1, cfg.Posts/10) == 0 {
			fmt.Fprintf(cfg.Log, "post %d: last subscriber after %s\n", k+1, time.Duration(s.last.Load()-s.sent.Load()).Round(time.Microsecond))
		}
	}
	// Late duplicates come with the others; give them a moment.
	select {
	case <-ctx.Done():
	case <-time.After(max(cfg.Gap, 200*time.Millisecond)):
	}
	wall := time.Since(postStart)
	cpu1 := ownCPU()
	after, err := SampleServer(ctx, cfg.Server)
	if err == nil {
		res.Server = Diff(connected, after)
	}

	toLast, toFirst := NewHistogram(), NewHistogram()
	var inFlight time.Duration
	for k := range res.Sent {
		s := &slots[k]
		if n := s.count.Load(); n > 0 {
			toFirst.Record(time.Duration(s.first.Load() - s.sent.Load()))
		}
		if s.count.Load() == int64(res.Connected) {
			d := time.Duration(s.last.Load() - s.sent.Load())
			toLast.Record(d)
			inFlight += d
		}
	}
	res.ToLast, res.ToFirst, res.Delivery, res.SendAck = toLast.Summary(), toFirst.Summary(), delivery.Summary(), ack.Summary()
	res.Expected = int64(res.Sent) * int64(res.Connected)
	res.Delivered, res.Duplicates = delivered.Load(), dups.Load()
	res.Unexpected, res.Other, res.Dropped = unexpected.Load(), other.Load(), int(dropped.Load())
	res.Missing = res.Expected - res.Delivered
	if s := inFlight.Seconds(); s > 0 {
		res.DeliveredPerSec = float64(res.Delivered) / s
	}
	if w := wall.Seconds(); w > 0 {
		res.GeneratorCPU = (cpu1 - cpu0).Seconds() / w
	}
	if postErr != nil {
		return res, postErr
	}
	if res.Missing != 0 || res.Duplicates != 0 || res.Unexpected != 0 {
		return res, fmt.Errorf("%d deliveries missing, %d duplicates, %d unexpected", res.Missing, res.Duplicates, res.Unexpected)
	}
	return res, ctx.Err()
}

// channelName returns a fresh public @name such as "hbq4zt2m7xch".
func channelName() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "hb" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)) + "ch"
}

// joinChannel joins a public channel over a short-lived raw connection;
// a join refused with RATE_LIMITED is retried after the server's wait and
// counted in limited.
func joinChannel(ctx context.Context, hc *http.Client, url, token, name string, limited *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	ws, err := dialResume(dctx, hc, url, token)
	dcancel()
	if err != nil {
		return err
	}
	defer ws.Close(websocket.StatusNormalClosure, "")
	for id := uint64(2); ; id++ {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		err := rawCall(rctx, ws, id, "channels.join", &pb.JoinRequest{Username: name})
		rcancel()
		var he *herald.Error
		if !errors.As(err, &he) || he.Kind != herald.RateLimited {
			return err
		}
		limited.Add(1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(max(he.RetryAfter, 10*time.Millisecond)):
		}
	}
}

// rawCall sends one request on a raw connection and waits for its
// answer, skipping pushed frames. The result is not decoded.
func rawCall(ctx context.Context, ws *websocket.Conn, id uint64, method string, req proto.Message) error {
	params, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	frame, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: id, Method: method, Params: params}}})
	if err := ws.Write(ctx, websocket.MessageBinary, frame); err != nil {
		return err
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		var f pb.Frame
		if proto.Unmarshal(data, &f) != nil {
			continue
		}
		r := f.GetResponse()
		if r == nil || r.Id != id {
			continue
		}
		if e := r.Error; e != nil {
			return &herald.Error{Kind: herald.Kind(e.Kind), Msg: e.Message, RetryAfter: time.Duration(e.RetryAfterMs) * time.Millisecond}
		}
		return nil
	}
}
