// Package memory is the in-process Bus used when Herald runs as one node.
package memory

import (
	"context"
	"sync"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
)

// Bus delivers messages to subscribers in the same process.
type Bus struct {
	mu     sync.RWMutex
	subs   map[string]map[*sub]struct{}
	closed bool
}

var _ bus.Bus = (*Bus)(nil)

type sub struct {
	b     *Bus
	topic string
	fn    func([]byte)
	mu    sync.Mutex // serialises fn calls and Unsubscribe
	done  bool
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[string]map[*sub]struct{}{}} }

// Publish implements bus.Bus. Handlers run on the publisher's goroutine,
// which is why they must not block.
func (b *Bus) Publish(ctx context.Context, topic string, data []byte) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return herald.Errorf(herald.Unavailable, "the bus is closed")
	}
	subs := make([]*sub, 0, len(b.subs[topic]))
	for s := range b.subs[topic] {
		subs = append(subs, s)
	}
	b.mu.RUnlock()
	for _, s := range subs {
		s.mu.Lock()
		if !s.done {
			s.fn(data)
		}
		s.mu.Unlock()
	}
	return nil
}

// Subscribe implements bus.Bus.
func (b *Bus) Subscribe(topic string, fn func([]byte)) (bus.Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, herald.Errorf(herald.Unavailable, "the bus is closed")
	}
	s := &sub{b: b, topic: topic, fn: fn}
	m := b.subs[topic]
	if m == nil {
		m = map[*sub]struct{}{}
		b.subs[topic] = m
	}
	m[s] = struct{}{}
	return s, nil
}

func (s *sub) Unsubscribe() error {
	s.b.mu.Lock()
	if m := s.b.subs[s.topic]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(s.b.subs, s.topic)
		}
	}
	s.b.mu.Unlock()
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	return nil
}

// Close implements bus.Bus.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = map[string]map[*sub]struct{}{}
	b.mu.Unlock()
	for _, m := range subs {
		for s := range m {
			s.mu.Lock()
			s.done = true
			s.mu.Unlock()
		}
	}
	return nil
}
