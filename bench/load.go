package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// LoadResult is what one run of a messaging scenario (direct or group)
// measured: open loop at a rate, or closed loop (InFlight > 0).
type LoadResult struct {
	Offered float64 `json:"offered_per_s"` // the scheduled send rate (open loop)
	// InFlight is the closed loop's sends awaiting an answer per sender;
	// Scheduled is then the sends made.
	InFlight  int    `json:"in_flight,omitempty"`
	Duration  Millis `json:"duration_ms"` // the length of the send schedule
	Scheduled int    `json:"scheduled"`   // sends in the schedule
	// Skipped sends were never made: the generator already had
	// MaxInFlight sends waiting for an answer (the server is far behind).
	Skipped  int            `json:"skipped"`
	Accepted int            `json:"accepted"` // sends the server acknowledged
	Failed   int            `json:"failed"`   // sends that ended in an error
	Errors   map[string]int `json:"errors"`   // failed sends by error kind; TIMEOUT: no answer before the drain ended
	// Deliveries: each accepted message is expected once on the device of
	// every other member of its chat (1 for direct chats).
	ExpectedDeliveries int64 `json:"expected_deliveries"`
	Delivered          int64 `json:"delivered"`
	Duplicates         int64 `json:"duplicates"` // deliveries of a message a device already had
	// AcceptedPerSec and DeliveredPerSec divide the counts by the time from
	// the first scheduled send to the last acknowledgement (delivery).
	AcceptedPerSec  float64 `json:"accepted_per_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
	// Latency runs from a message's scheduled send time to its arrival on
	// the recipient's device (the SDK's Events channel); AckLatency from the
	// scheduled time to the sender receiving the server's answer.
	Latency    Latency `json:"latency"`
	AckLatency Latency `json:"ack_latency"`
	// Reconnects counts SDK clients reconnecting during the run (the
	// server's successful auth.resume requests).
	Reconnects int         `json:"reconnects"`
	Server     ServerStats `json:"server"`
	// ServerCPUPerMessage is the server's CPU time (process_cpu_seconds_total)
	// over the run divided by the messages it acknowledged, in microseconds.
	ServerCPUPerMessage float64 `json:"server_cpu_per_message_us"`
	GeneratorCPU        float64 `json:"generator_cpu_cores"` // this process, same window as Server.CPUCores
}

// member is one connected, following user of a messaging scenario.
type member struct {
	name string
	c    *client.Client
}

// loadEngine drives open-loop sends through SDK clients and matches the
// messages arriving on the recipients' devices with their schedule.
type loadEngine struct {
	server      string
	members     []*member
	target      func(i int) (from *member, chatID int64) // who sends message i, and where
	fanout      int                                      // deliveries expected per message
	textSize    int
	maxInFlight int
	drain       time.Duration
	log         io.Writer

	cur    atomic.Pointer[stepState]
	stale  atomic.Int64 // deliveries from an earlier step or the setup
	nextID atomic.Int64
	wg     sync.WaitGroup
}

// stepState is one run's bookkeeping, shared with the receivers.
type stepState struct {
	id        int64
	sched     Schedule
	start     time.Time
	fanout    int32
	got       []atomic.Int32 // deliveries seen per message index
	delivered atomic.Int64
	dups      atomic.Int64
	lastNs    atomic.Int64 // latest delivery, since start
	lat       *Histogram
	// sent: when message i was sent, since start (closed loop); nil when
	// the schedule says.
	sent []atomic.Int64
}

// sentAt is when message i was sent (or due), since the step's start.
func (st *stepState) sentAt(i int) time.Duration {
	if st.sent != nil {
		return time.Duration(st.sent[i].Load())
	}
	return st.sched.At(i)
}

// marker text: "hb STEP INDEX " padded to the configured size. Step 0 is
// the setup's warm-up messages.
func (e *loadEngine) text(step int64, i int) string {
	s := fmt.Sprintf("hb %d %d ", step, i)
	if n := e.textSize - len(s); n > 0 {
		s += strings.Repeat("x", n)
	}
	return s
}

// parseMarker reads the step and index from a message written by text.
func parseMarker(text string) (step int64, i int, ok bool) {
	rest, found := strings.CutPrefix(text, "hb ")
	if !found {
		return 0, 0, false
	}
	f := strings.SplitN(rest, " ", 3)
	if len(f) < 2 {
		return 0, 0, false
	}
	step, err1 := strconv.ParseInt(f[0], 10, 64)
	idx, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || step < 0 || idx < 0 {
		return 0, 0, false
	}
	return step, idx, true
}

// connectMembers opens a following client for every account, parallel at a
// time, and starts a receiver for each.
func (e *loadEngine) connectMembers(ctx context.Context, accs []Account, parallel int) error {
	e.members = make([]*member, len(accs))
	err := forEach(ctx, len(accs), parallel, func(i int) error {
		c, err := client.New(client.Options{Server: Pick(e.server, i), Token: accs[i].Token, Follow: true, Pts: -1, EventBuffer: 4096})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.Connect(cctx); err != nil {
			return fmt.Errorf("connect as %s: %w", accs[i].Username, err)
		}
		m := &member{name: accs[i].Username, c: c}
		e.members[i] = m
		e.wg.Add(1)
		go e.receive(m)
		return nil
	})
	return err
}

// receive matches the messages arriving on m's device with their step.
func (e *loadEngine) receive(m *member) {
	defer e.wg.Done()
	for ev := range m.c.Events() {
		msg := ev.Update.GetNewMessage()
		if msg == nil || msg.From == m.name {
			continue
		}
		step, i, ok := parseMarker(msg.Text)
		if !ok {
			continue
		}
		st := e.cur.Load()
		if st == nil || st.id != step || i >= len(st.got) {
			e.stale.Add(1)
			continue
		}
		el := time.Since(st.start)
		st.lat.Record(el - st.sentAt(i))
		if st.got[i].Add(1) > st.fanout {
			st.dups.Add(1)
			continue
		}
		st.delivered.Add(1)
		for {
			last := st.lastNs.Load()
			if int64(el) <= last || st.lastNs.CompareAndSwap(last, int64(el)) {
				break
			}
		}
	}
}

// close disconnects every member and waits for the receivers.
func (e *loadEngine) close() {
	var wg sync.WaitGroup
	for _, m := range e.members {
		if m == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); m.c.Close() }()
	}
	wg.Wait()
	e.wg.Wait()
}

// run sends at rate for d, open loop, then waits up to the drain time for
// the deliveries, and reports.
func (e *loadEngine) run(ctx context.Context, rate float64, d time.Duration) (LoadResult, error) {
	sched := Schedule{Rate: rate, Duration: d}
	n := sched.Count()
	if n == 0 {
		return LoadResult{}, fmt.Errorf("a rate of %g/s for %s schedules no sends", rate, d)
	}
	st := &stepState{id: e.nextID.Add(1), sched: sched, fanout: int32(e.fanout), got: make([]atomic.Int32, n), lat: NewHistogram()}
	before, err := SampleServer(ctx, e.server)
	if err != nil {
		return LoadResult{}, fmt.Errorf("reading the server's metrics: %w", err)
	}
	cpu0 := ownCPU()
	st.start = time.Now()
	e.cur.Store(st)
	defer e.cur.Store(nil)
	deadline := st.start.Add(d + e.drain)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var (
		inflight, accepted, failed, skipped, lastAck atomic.Int64
		sends                                        sync.WaitGroup
		errMu                                        sync.Mutex
		errs                                         = map[string]int{}
		ack                                          = NewHistogram()
	)
	fired := sched.Run(runCtx, st.start, func(i int) {
		if inflight.Load() >= int64(e.maxInFlight) {
			skipped.Add(1)
			return
		}
		inflight.Add(1)
		sends.Add(1)
		go func() {
			defer sends.Done()
			defer inflight.Add(-1)
			from, chat := e.target(i)
			_, err := from.c.Send(runCtx, &pb.SendRequest{Peer: &pb.Peer{ChatId: chat}, Text: e.text(st.id, i)})
			el := time.Since(st.start)
			if err != nil {
				failed.Add(1)
				errMu.Lock()
				errs[errorKind(err)]++
				errMu.Unlock()
				return
			}
			accepted.Add(1)
			ack.Record(el - sched.At(i))
			for {
				last := lastAck.Load()
				if int64(el) <= last || lastAck.CompareAndSwap(last, int64(el)) {
					break
				}
			}
		}()
	})
	loaded, err := SampleServer(ctx, e.server)
	cpu1 := ownCPU()
	wall := time.Since(st.start)
	if err != nil {
		return LoadResult{}, fmt.Errorf("reading the server's metrics: %w", err)
	}
	sends.Wait()
	expected := accepted.Load() * int64(e.fanout)
	for st.delivered.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	after, err := SampleServer(ctx, e.server)
	if err != nil {
		return LoadResult{}, fmt.Errorf("reading the server's metrics: %w", err)
	}
	r := LoadResult{
		Offered: rate, Duration: MillisOf(d), Scheduled: n,
		Skipped:  int(skipped.Load()) + n - fired,
		Accepted: int(accepted.Load()), Failed: int(failed.Load()), Errors: errs,
		ExpectedDeliveries: expected, Delivered: st.delivered.Load(), Duplicates: st.dups.Load(),
		Latency: st.lat.Summary(), AckLatency: ack.Summary(),
		Reconnects: int(after.Resumes - before.Resumes),
		Server:     Diff(before, loaded),
	}
	r.Server.SlowConsumers = after.SlowConsumers - before.SlowConsumers
	r.Server.RSSAfterMiB = after.RSS / (1 << 20)
	r.finish(lastAck.Load(), st.lastNs.Load(), wall, cpu1-cpu0)
	return r, ctx.Err()
}

// finish derives the rates from the last acknowledgement and delivery
// (nanoseconds since the start), and the CPU figures.
func (r *LoadResult) finish(lastAck, lastDelivery int64, wall, generatorCPU time.Duration) {
	if s := time.Duration(lastAck).Seconds(); s > 0 {
		r.AcceptedPerSec = float64(r.Accepted) / s
	}
	if s := time.Duration(lastDelivery).Seconds(); s > 0 {
		r.DeliveredPerSec = float64(r.Delivered) / s
	}
	if w := wall.Seconds(); w > 0 {
		r.GeneratorCPU = generatorCPU.Seconds() / w
	}
	if r.Accepted > 0 {
		r.ServerCPUPerMessage = r.Server.CPUSeconds / float64(r.Accepted) * 1e6
	}
}

// forEach calls fn(i) for i in [0, n), parallel at a time, and returns the
// first error (after which no new calls start).
func forEach(ctx context.Context, n, parallel int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	for range min(max(parallel, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				mu.Lock()
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := ctx.Err(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
