package push_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald/egress"
	"github.com/heraldim/herald/push"
	"github.com/heraldim/herald/push/pushtest"
	"github.com/prometheus/client_golang/prometheus"
)

func newDispatcher(t *testing.T, adjust func(*push.Config)) (*push.Dispatcher, *prometheus.Registry) {
	t.Helper()
	keys, err := push.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := push.Config{Keys: keys, Subscriber: "mailto:ops@example.org", Client: egress.Policy{AllowPrivate: true}.Client(10 * time.Second),
		Registry: reg, Backoff: 20 * time.Millisecond, QueueLen: 4}
	if adjust != nil {
		adjust(&cfg)
	}
	d := push.New(cfg)
	t.Cleanup(d.Close)
	return d, reg
}

func job(s *pushtest.Sub, text string) push.Job {
	return push.Job{Endpoint: s.Endpoint, P256dh: s.P256dh, Auth: s.Auth, Payload: []byte(text), TTL: time.Minute, Committed: time.Now()}
}

func payloads(ps []pushtest.Push) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Payload))
	}
	return out
}

// TestSlowEndpointDropsOldest: a push service that does not answer holds
// up only its own endpoint; its queue keeps the newest QueueLen messages
// and counts the dropped ones.
func TestSlowEndpointDropsOldest(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	d, reg := newDispatcher(t, nil)
	slow, fast := ps.Subscribe("slow"), ps.Subscribe("fast")
	release := ps.Hold(slow.Endpoint)
	defer release()
	d.Enqueue(job(slow, "in flight"))
	time.Sleep(100 * time.Millisecond) // the first is taken off the queue and held
	for i := range 7 {
		d.Enqueue(job(slow, fmt.Sprint("queued ", i)))
	}
	d.Enqueue(job(fast, "not held up"))
	if !ps.Wait(10*time.Second, func(got []pushtest.Push) bool { return len(got) == 1 }) {
		t.Fatal("the fast endpoint's push waited for the slow one")
	}
	if got := mustGatherVec(t, reg, "herald_push_dropped_total")[""]; got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
	release()
	if !ps.Wait(10*time.Second, func(got []pushtest.Push) bool { return len(ps.GotFor(slow.Endpoint)) == 5 }) {
		t.Fatalf("slow endpoint got %v", payloads(ps.GotFor(slow.Endpoint)))
	}
	want := "in flight,queued 3,queued 4,queued 5,queued 6"
	if got := strings.Join(payloads(ps.GotFor(slow.Endpoint)), ","); got != want {
		t.Errorf("delivered %s, want %s (oldest dropped, order kept)", got, want)
	}
	if bad := ps.Bad(); len(bad) > 0 {
		t.Errorf("refused: %v", bad)
	}
}

// TestRetriesAndGone: 5xx and 429 are retried with backoff until
// accepted; 404 and 410 call Gone once and drop what was queued.
func TestRetriesAndGone(t *testing.T) {
	ps := pushtest.New()
	defer ps.Close()
	var mu sync.Mutex
	var gone []string
	d, reg := newDispatcher(t, func(c *push.Config) {
		c.Gone = func(_ context.Context, endpoint string) { mu.Lock(); gone = append(gone, endpoint); mu.Unlock() }
	})
	flaky, dead := ps.Subscribe("flaky"), ps.Subscribe("dead")
	ps.Reply(flaky.Endpoint, "", 503, 500, 429)
	d.Enqueue(job(flaky, "eventually"))
	if !ps.Wait(10*time.Second, func([]pushtest.Push) bool { return len(ps.GotFor(flaky.Endpoint)) == 1 }) {
		t.Fatal("the flaky endpoint never got its push")
	}
	ps.Reply(dead.Endpoint, "", 410)
	d.Enqueue(job(dead, "one"))
	d.Enqueue(job(dead, "two"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(gone)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(gone) != 1 || gone[0] != dead.Endpoint {
		t.Errorf("Gone called for %v, want once for %s", gone, dead.Endpoint)
	}
	if got := ps.GotFor(dead.Endpoint); len(got) != 0 {
		t.Errorf("pushes after 410: %v", payloads(got))
	}
	failed := mustGatherVec(t, reg, "herald_push_failed_total")
	for reason, want := range map[string]float64{"server": 2, "rate_limited": 1, "gone": 1} {
		if failed[reason] != want {
			t.Errorf("failed{reason=%s} = %v, want %v", reason, failed[reason], want)
		}
	}
}

// mustGatherVec returns a metric's values by its "reason" label ("" for
// an unlabelled metric).
func mustGatherVec(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					key = l.GetValue()
				}
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[key] = v
		}
	}
	return out
}
