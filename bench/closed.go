package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// sender is one closed-loop sender: a member and the chat it writes to.
type sender struct {
	from *member
	chat int64
}

// maxClosedSends bounds one closed-loop run's bookkeeping (12 bytes a
// send): far more than one node acknowledges in an hour's run.
const maxClosedSends = 1 << 24

// runClosed keeps inFlight sends waiting for an answer per sender for d:
// each answer starts the next send. Latency runs from the send call to
// the arrival on the recipient's device, so a slower server sends less
// instead of queueing more (the workload other servers publish).
func (e *loadEngine) runClosed(ctx context.Context, senders []sender, inFlight int, d time.Duration) (LoadResult, error) {
	n := min(maxClosedSends, int(d.Seconds()*200_000)+1024)
	st := &stepState{id: e.nextID.Add(1), fanout: int32(e.fanout), got: make([]atomic.Int32, n), sent: make([]atomic.Int64, n), lat: NewHistogram()}
	before, err := SampleServer(ctx, e.server)
	if err != nil {
		return LoadResult{}, fmt.Errorf("reading the server's metrics: %w", err)
	}
	cpu0 := ownCPU()
	st.start = time.Now()
	e.cur.Store(st)
	defer e.cur.Store(nil)
	stopAt := st.start.Add(d)
	deadline := stopAt.Add(e.drain)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var (
		next, accepted, failed, lastAck atomic.Int64
		sends                           sync.WaitGroup
		errMu                           sync.Mutex
		errs                            = map[string]int{}
		ack                             = NewHistogram()
	)
	for _, s := range senders {
		for range inFlight {
			sends.Add(1)
			go func() {
				defer sends.Done()
				for time.Now().Before(stopAt) && runCtx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					at := time.Since(st.start)
					st.sent[i].Store(int64(at))
					_, err := s.from.c.Send(runCtx, &pb.SendRequest{Peer: &pb.Peer{ChatId: s.chat}, Text: e.text(st.id, i)})
					el := time.Since(st.start)
					if err != nil {
						failed.Add(1)
						errMu.Lock()
						errs[errorKind(err)]++
						errMu.Unlock()
						// Do not spin on a failing server.
						time.Sleep(10 * time.Millisecond)
						continue
					}
					accepted.Add(1)
					ack.Record(el - at)
					for {
						last := lastAck.Load()
						if int64(el) <= last || lastAck.CompareAndSwap(last, int64(el)) {
							break
						}
					}
				}
			}()
		}
	}
	sends.Wait()
	// Every send has its answer: the server's work for them is done but
	// for delivering the last few.
	expected := accepted.Load() * int64(e.fanout)
	for st.delivered.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	loaded, err := SampleServer(ctx, e.server)
	cpu1 := ownCPU()
	wall := time.Since(st.start)
	if err != nil {
		return LoadResult{}, fmt.Errorf("reading the server's metrics: %w", err)
	}
	sendsMade := int(min(next.Load(), int64(n)))
	r := LoadResult{
		InFlight: inFlight, Duration: MillisOf(d), Scheduled: sendsMade,
		Accepted: int(accepted.Load()), Failed: int(failed.Load()), Errors: errs,
		ExpectedDeliveries: expected, Delivered: st.delivered.Load(), Duplicates: st.dups.Load(),
		Latency: st.lat.Summary(), AckLatency: ack.Summary(),
		Reconnects: int(loaded.Resumes - before.Resumes),
		Server:     Diff(before, loaded),
	}
	r.finish(lastAck.Load(), st.lastNs.Load(), wall, cpu1-cpu0)
	return r, ctx.Err()
}
