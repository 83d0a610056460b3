// Package bustest is the conformance suite for bus.Bus. Every
// implementation runs it unchanged.
//
// Delivery may be asynchronous, so the suite waits for messages with a
// generous timeout and, to show that something was not delivered, uses a
// fence: a later message that must arrive after it would have.
package bustest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
)

// timeout bounds every wait for a delivery. It is a deadlock guard, not a
// performance goal.
const timeout = 10 * time.Second

// Run runs the conformance suite. newBus must return a new bus each time it
// is called; Run closes every bus it got when the subtest that asked for it
// ends. The subtests run in parallel.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b bus.Bus)
	}{
		{"Delivery", testDelivery},
		{"Fanout", testFanout},
		{"Order", testOrder},
		{"Unsubscribe", testUnsubscribe},
		{"UnsubscribeWhilePublishing", testUnsubscribeWhilePublishing},
		{"OneCallAtATime", testOneCallAtATime},
		{"ConcurrentTopics", testConcurrentTopics},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBus(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, b)
		})
	}
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		testClosed(t, newBus(t))
	})
}

// topic returns a topic name unique to the running test, so tests never
// see each other's messages even if their buses share a server.
func topic(t *testing.T, name string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	return "bustest." + clean + "." + name
}

// recorder is a subscriber that copies every message into a queue.
type recorder struct {
	ch       chan []byte
	overflow atomic.Bool
}

func newRecorder(size int) *recorder { return &recorder{ch: make(chan []byte, size)} }

// fn is the subscription callback. It never blocks.
func (r *recorder) fn(data []byte) {
	select {
	case r.ch <- bytes.Clone(data):
	default:
		r.overflow.Store(true)
	}
}

// next waits for the next message.
func (r *recorder) next(t *testing.T, what string) []byte {
	t.Helper()
	select {
	case d := <-r.ch:
		return d
	case <-time.After(timeout):
		t.Fatalf("%s: no message within %v", what, timeout)
		return nil
	}
}

// want waits for the next message and checks it.
func (r *recorder) want(t *testing.T, what string, want []byte) {
	t.Helper()
	if got := r.next(t, what); !bytes.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// empty checks that nothing is queued right now.
func (r *recorder) empty(t *testing.T, what string) {
	t.Helper()
	select {
	case d := <-r.ch:
		t.Errorf("%s: unexpected message %q", what, d)
	default:
	}
	if r.overflow.Load() {
		t.Errorf("%s: the test's queue overflowed", what)
	}
}

func subscribe(t *testing.T, b bus.Bus, topic string, fn func([]byte)) bus.Subscription {
	t.Helper()
	s, err := b.Subscribe(topic, fn)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	return s
}

func publish(t *testing.T, b bus.Bus, topic string, data []byte) {
	t.Helper()
	if err := b.Publish(t.Context(), topic, data); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// numbered returns message i of publisher p: an 8-byte header and a body
// that depends on both, so a corrupted or misrouted message shows.
func numbered(p, i int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(p))
	b = binary.BigEndian.AppendUint32(b, uint32(i))
	return fmt.Appendf(b, "publisher %d message %d", p, i)
}

func parseNumbered(b []byte) (p, i int, ok bool) {
	if len(b) < 8 {
		return 0, 0, false
	}
	p, i = int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
	return p, i, bytes.Equal(b, numbered(p, i))
}

func testDelivery(t *testing.T, b bus.Bus) {
	here, there := topic(t, "here"), topic(t, "there")
	rh, rt := newRecorder(10), newRecorder(10)
	subscribe(t, b, here, rh.fn)
	subscribe(t, b, there, rt.fn)

	binaryData := make([]byte, 4096)
	for i := range binaryData {
		binaryData[i] = byte(i * 7)
	}
	msgs := [][]byte{[]byte("hello"), binaryData, {0}}
	for _, m := range msgs {
		publish(t, b, here, m)
	}
	for i, m := range msgs {
		rh.want(t, fmt.Sprintf("message %d on its topic", i), m)
	}
	// Nothing published on "here" reached "there": the fence is the first
	// message it receives.
	publish(t, b, there, []byte("fence"))
	rt.want(t, "first message on the other topic", []byte("fence"))
	rh.empty(t, "after the fence")
	rt.empty(t, "after the fence")

	// Publishing to a topic nobody listens to is not an error.
	publish(t, b, topic(t, "nobody"), []byte("void"))
}

func testFanout(t *testing.T, b bus.Bus) {
	tp, other := topic(t, "shared"), topic(t, "other")
	const subs, n = 4, 20
	rs := make([]*recorder, subs)
	for i := range rs {
		rs[i] = newRecorder(n + 1)
		subscribe(t, b, tp, rs[i].fn)
	}
	ro := newRecorder(n + 1)
	subscribe(t, b, other, ro.fn)
	for i := range n {
		publish(t, b, tp, numbered(0, i))
	}
	for s, r := range rs {
		for i := range n {
			r.want(t, fmt.Sprintf("subscriber %d, message %d", s, i), numbered(0, i))
		}
	}
	publish(t, b, other, []byte("fence"))
	ro.want(t, "other topic", []byte("fence"))
	for s, r := range rs {
		r.empty(t, fmt.Sprintf("subscriber %d after all messages", s))
	}
}

func testOrder(t *testing.T, b bus.Bus) {
	tp := topic(t, "ordered")
	const subs, n = 3, 1000
	rs := make([]*recorder, subs)
	for i := range rs {
		rs[i] = newRecorder(n)
		subscribe(t, b, tp, rs[i].fn)
	}
	for i := range n {
		publish(t, b, tp, numbered(0, i))
	}
	for s, r := range rs {
		for i := range n {
			got := r.next(t, fmt.Sprintf("subscriber %d, message %d", s, i))
			if !bytes.Equal(got, numbered(0, i)) {
				_, gi, ok := parseNumbered(got)
				t.Fatalf("subscriber %d: message %d is %d (intact %v), want them in publication order", s, i, gi, ok)
			}
		}
		r.empty(t, fmt.Sprintf("subscriber %d after all messages", s))
	}
}

func testUnsubscribe(t *testing.T, b bus.Bus) {
	tp := topic(t, "t")
	var stopped atomic.Bool
	var late atomic.Int64
	r := newRecorder(10)
	sub := subscribe(t, b, tp, func(data []byte) {
		if stopped.Load() {
			late.Add(1)
		}
		r.fn(data)
	})
	fence := newRecorder(20)
	subscribe(t, b, tp, fence.fn)

	publish(t, b, tp, []byte("before"))
	r.want(t, "before unsubscribing", []byte("before"))
	fence.want(t, "fence before unsubscribing", []byte("before"))

	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	stopped.Store(true)
	for i := range 10 {
		publish(t, b, tp, numbered(0, i))
	}
	for i := range 10 {
		fence.want(t, "fence after unsubscribing", numbered(0, i))
	}
	if n := late.Load(); n > 0 {
		t.Errorf("the callback ran %d times after Unsubscribe returned", n)
	}
	r.empty(t, "after Unsubscribe")
}

func testUnsubscribeWhilePublishing(t *testing.T, b bus.Bus) {
	tp := topic(t, "busy")
	var stopped atomic.Bool
	var late atomic.Int64
	first := make(chan struct{})
	var once sync.Once
	sub := subscribe(t, b, tp, func([]byte) {
		if stopped.Load() {
			late.Add(1)
		}
		once.Do(func() { close(first) })
	})
	fence := newRecorder(1)
	subscribe(t, b, topic(t, "fence"), fence.fn)

	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; err == nil; i++ {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			err = b.Publish(t.Context(), tp, numbered(0, i))
		}
		done <- err
	}()
	select {
	case <-first:
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	stopped.Store(true)
	// Let the publisher go on for a while after Unsubscribe returned.
	for range 100 {
		runtime.Gosched()
	}
	close(quit)
	if err := <-done; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	publish(t, b, tp, []byte("last"))
	publish(t, b, topic(t, "fence"), []byte("fence"))
	fence.want(t, "fence", []byte("fence"))
	if n := late.Load(); n > 0 {
		t.Errorf("the callback ran %d times after Unsubscribe returned", n)
	}
}

func testOneCallAtATime(t *testing.T, b bus.Bus) {
	tp := topic(t, "contended")
	const publishers, n = 4, 250
	var inFlight atomic.Int32
	var overlap atomic.Bool
	var mu sync.Mutex // guards last and bad for the final read
	last := make([]int, publishers)
	for i := range last {
		last[i] = -1
	}
	var bad []string
	all := make(chan struct{})
	var count atomic.Int32
	subscribe(t, b, tp, func(data []byte) {
		if inFlight.Add(1) != 1 {
			overlap.Store(true)
		}
		runtime.Gosched() // widen the window for a second call
		p, i, ok := parseNumbered(data)
		mu.Lock()
		switch {
		case !ok || p >= publishers:
			bad = append(bad, fmt.Sprintf("corrupt message %q", data))
		case i <= last[p]:
			bad = append(bad, fmt.Sprintf("publisher %d: message %d after %d", p, i, last[p]))
		default:
			last[p] = i
		}
		mu.Unlock()
		inFlight.Add(-1)
		if count.Add(1) == publishers*n {
			close(all)
		}
	})
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range n {
				if err := b.Publish(t.Context(), tp, numbered(p, i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(timeout):
		t.Fatalf("%d of %d messages arrived within %v", count.Load(), publishers*n, timeout)
	}
	if overlap.Load() {
		t.Errorf("the callback of one subscription ran concurrently with itself")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range bad {
		t.Error(s)
	}
	for p, i := range last {
		if i != n-1 {
			t.Errorf("publisher %d: last message seen %d, want %d", p, i, n-1)
		}
	}
}

func testConcurrentTopics(t *testing.T, b bus.Bus) {
	const topics, n = 8, 200
	rs := make([]*recorder, topics)
	for p := range rs {
		rs[p] = newRecorder(n)
		subscribe(t, b, topic(t, fmt.Sprint(p)), rs[p].fn)
	}
	var wg sync.WaitGroup
	for p := range topics {
		wg.Go(func() {
			tp := topic(t, fmt.Sprint(p))
			for i := range n {
				if err := b.Publish(t.Context(), tp, numbered(p, i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for p, r := range rs {
		for i := range n {
			got := r.next(t, fmt.Sprintf("topic %d, message %d", p, i))
			if gp, gi, ok := parseNumbered(got); !ok || gp != p || gi != i {
				t.Fatalf("topic %d: message %d is publisher %d message %d (intact %v)", p, i, gp, gi, ok)
			}
		}
		r.empty(t, fmt.Sprintf("topic %d after all messages", p))
	}
}

func testClosed(t *testing.T, b bus.Bus) {
	tp := topic(t, "t")
	var calls atomic.Int64
	sub := subscribe(t, b, tp, func([]byte) { calls.Add(1) })
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range 2 {
		err := b.Publish(t.Context(), tp, []byte("after close"))
		if !herald.IsKind(err, herald.Unavailable) {
			t.Errorf("Publish %d after Close: err = %v, want kind %s", i, err, herald.Unavailable)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("a subscriber was called %d times after Close", n)
	}
	// Unsubscribing from a closed bus is harmless.
	_ = sub.Unsubscribe()
}
