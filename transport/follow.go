package transport

import (
	"context"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/service"
)

// follower is one user's presence on this node: their connections and
// the broadcast chats they follow. The follow set is held once per user
// and shared by all their connections, so a user following N chats over
// M connections costs the node O(N + M) entries, not N × M: a device per
// connection adds one entry, whatever the user follows.
type follower struct {
	id int64

	// load serialises building and tearing down this user's
	// subscriptions, which take time proportional to the follow set; it
	// is the user's own lock, so another user never waits for it.
	load   sync.Mutex
	loaded bool // guarded by load

	mu      sync.Mutex
	conns   map[*conn]struct{}
	chats   map[int64]struct{} // the broadcast chats followed
	follows int                // follow and unfollow events applied: tells refollow its read may be stale
	gone    bool               // the last connection left; the entry is no longer in srv.users
}

// topicEntry is one bus subscription shared by every local user that
// needs the topic: a user's own topic, or a broadcast chat's followers
// online on this node. A channel post therefore crosses the bus once per
// node and is encoded once, however many followers are connected.
type topicEntry struct {
	topic string
	sub   bus.Subscription // set once ready is closed, unless err
	err   error
	ready chan struct{}
	users map[*follower]struct{} // guarded by the shard's mu

	// A broadcast chat's fan-out queue, drained by one goroutine at a
	// time (in publication order) that ends when it is empty.
	fmu     sync.Mutex
	fanned  *sync.Cond // signalled as the queue drains, for a publisher waiting for room
	fq      []fanItem
	fanning bool
}

// fanItem is one encoded frame for every follower of a broadcast chat.
type fanItem struct {
	frame      []byte
	newMessage bool
}

// fanQueue bounds a broadcast chat's frames waiting for fan-out; a
// publisher beyond it waits, as it did when the fan-out ran on its path.
const fanQueue = 256

// chatTopicPrefix is what every bus.ChatTopic starts with.
var chatTopicPrefix = strings.TrimSuffix(bus.ChatTopic(0), "0")

// fanOut queues a frame for e's followers and starts the fan-out
// goroutine if none runs.
func (s *Server) fanOut(e *topicEntry, it fanItem) {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	if e.fanned == nil {
		e.fanned = sync.NewCond(&e.fmu)
	}
	for len(e.fq) >= fanQueue {
		e.fanned.Wait()
	}
	e.fq = append(e.fq, it)
	if !e.fanning {
		e.fanning = true
		go s.fanLoop(e)
	}
}

func (s *Server) fanLoop(e *topicEntry) {
	for {
		e.fmu.Lock()
		if len(e.fq) == 0 {
			e.fq = nil
			e.fanning = false
			e.fmu.Unlock()
			return
		}
		it := e.fq[0]
		e.fq[0] = fanItem{}
		e.fq = e.fq[1:]
		e.fanned.Broadcast()
		e.fmu.Unlock()
		if h := fanHook.Load(); h != nil {
			(*h)(e.topic)
		}
		targets := usersConns(s.entryUsers(e))
		for _, c := range targets {
			c.push(it.frame)
		}
		if it.newMessage {
			s.metrics.messagesOut.Add(float64(len(targets)))
		}
	}
}

// fanHook, when set by a test, runs before each broadcast fan-out.
var fanHook atomic.Pointer[func(topic string)]

// topicShards spreads the topic table over locks, so that subscribing a
// big follow set never holds a lock another user's delivery needs for
// more than one map operation.
const topicShards = 64

type topicShard struct {
	mu sync.Mutex
	m  map[string]*topicEntry
}

var shardSeed = maphash.MakeSeed()

func (s *Server) shard(topic string) *topicShard {
	return &s.shards[maphash.String(shardSeed, topic)%topicShards]
}

// attach counts c as one of its user's connections, refusing it past the
// per-account cap, and makes sure the user's events and follow set are
// subscribed before it returns, so nothing committed after the client's
// next sync can be missed.
func (s *Server) attach(ctx context.Context, c *conn, caller service.Caller) error {
	s.mu.Lock()
	if _, ok := s.conns[c]; !ok {
		s.mu.Unlock()
		return nil // gone already: nothing would ever detach it
	}
	f := s.users[caller.UserID]
	if f == nil {
		f = &follower{id: caller.UserID, conns: map[*conn]struct{}{}, chats: map[int64]struct{}{}}
		s.users[caller.UserID] = f
	}
	f.mu.Lock()
	if max := s.limits.ConnsPerUser; max > 0 && len(f.conns) >= max {
		f.mu.Unlock()
		s.mu.Unlock()
		s.metrics.connsRefused.WithLabelValues("account").Inc()
		return herald.Errorf(herald.RateLimited, "too many connections for this account on this server (at most %d): close some and try again", max)
	}
	f.conns[c] = struct{}{}
	f.mu.Unlock()
	c.fol = f
	s.mu.Unlock()

	f.load.Lock()
	defer f.load.Unlock()
	if f.loaded {
		return nil
	}
	if err := s.join(f, bus.UserTopic(f.id)); err != nil {
		return err
	}
	f.mu.Lock()
	gen := f.follows
	f.mu.Unlock()
	chats, err := s.svc.FollowedChats(ctx, caller)
	if err != nil {
		return err
	}
	for _, id := range chats {
		if err := s.followChat(f, id, false); err != nil {
			return err
		}
	}
	f.loaded = true
	f.mu.Lock()
	stale := f.follows != gen
	f.mu.Unlock()
	if stale {
		// A follow or unfollow arrived while the store was read; read
		// again rather than guess which came first.
		return s.refollow(ctx, f, caller)
	}
	return nil
}

// detach removes c from its user; the last connection to go ends the
// user's subscriptions.
func (s *Server) detach(c *conn) {
	s.mu.Lock()
	f := c.fol
	c.fol = nil
	last := false
	var chats []int64
	if f != nil {
		f.mu.Lock()
		delete(f.conns, c)
		if last = len(f.conns) == 0; last {
			f.gone = true
			chats = make([]int64, 0, len(f.chats))
			for id := range f.chats {
				chats = append(chats, id)
			}
			if s.users[f.id] == f {
				delete(s.users, f.id)
			}
		}
		f.mu.Unlock()
	}
	s.mu.Unlock()
	if !last {
		return
	}
	f.load.Lock()
	defer f.load.Unlock()
	for _, id := range chats {
		s.part(f, bus.ChatTopic(id))
	}
	s.part(f, bus.UserTopic(f.id))
}

// followChat adds a broadcast chat to f's follow set and subscribes to
// it. event marks a follow event, which a concurrent refollow's store
// read may predate.
func (s *Server) followChat(f *follower, chatID int64, event bool) error {
	f.mu.Lock()
	if event {
		f.follows++
	}
	if f.gone {
		f.mu.Unlock()
		return nil
	}
	f.chats[chatID] = struct{}{}
	f.mu.Unlock()
	err := s.join(f, bus.ChatTopic(chatID))
	f.mu.Lock()
	gone := f.gone
	f.mu.Unlock()
	if gone {
		// The last connection left while we joined, and its teardown may
		// have run before the join: undo it ourselves.
		s.part(f, bus.ChatTopic(chatID))
	}
	return err
}

// unfollowChat removes a broadcast chat from f's follow set.
func (s *Server) unfollowChat(f *follower, chatID int64, event bool) {
	f.mu.Lock()
	if event {
		f.follows++
	}
	_, had := f.chats[chatID]
	delete(f.chats, chatID)
	f.mu.Unlock()
	if had {
		s.part(f, bus.ChatTopic(chatID))
	}
}

// join adds f to a topic, subscribing the node to it if f is the first.
// The bus subscription is made outside every lock: other users joining
// the same topic wait for it on the entry, nobody else waits at all.
func (s *Server) join(f *follower, topic string) error {
	sh := s.shard(topic)
	sh.mu.Lock()
	if e := sh.m[topic]; e != nil {
		e.users[f] = struct{}{}
		sh.mu.Unlock()
		<-e.ready
		return e.err
	}
	e := &topicEntry{topic: topic, ready: make(chan struct{}), users: map[*follower]struct{}{f: {}}}
	sh.m[topic] = e
	sh.mu.Unlock()
	sub, err := s.bus.Subscribe(topic, func(data []byte) { s.deliver(e, data) })
	sh.mu.Lock()
	e.sub, e.err = sub, err
	close(e.ready)
	current := sh.m[topic] == e
	if err != nil && current {
		delete(sh.m, topic)
	}
	sh.mu.Unlock()
	if err == nil && !current {
		sub.Unsubscribe() // everyone left while it was being made
	}
	return err
}

// part removes f from a topic; the node unsubscribes when nobody is left.
func (s *Server) part(f *follower, topic string) {
	sh := s.shard(topic)
	sh.mu.Lock()
	e := sh.m[topic]
	if e == nil {
		sh.mu.Unlock()
		return
	}
	delete(e.users, f)
	var sub bus.Subscription
	if len(e.users) == 0 {
		delete(sh.m, topic)
		sub = e.sub // nil while being made: join drops it when done
	}
	sh.mu.Unlock()
	// Unsubscribe waits for a delivery in progress; no lock is held.
	if sub != nil {
		sub.Unsubscribe()
	}
}

// entryUsers lists the users on a topic entry.
func (s *Server) entryUsers(e *topicEntry) []*follower {
	sh := s.shard(e.topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*follower, 0, len(e.users))
	for f := range e.users {
		out = append(out, f)
	}
	return out
}

// usersConns lists the connections of users.
func usersConns(users []*follower) []*conn {
	var out []*conn
	for _, f := range users {
		f.mu.Lock()
		for c := range f.conns {
			out = append(out, c)
		}
		f.mu.Unlock()
	}
	return out
}

// followEntries counts the entries the node holds to route bus topics to
// connections, for tests of what a follow set costs.
func (s *Server) followEntries() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			n += 1 + len(e.users)
		}
		sh.mu.Unlock()
	}
	s.mu.Lock()
	for _, f := range s.users {
		f.mu.Lock()
		n += len(f.conns) + len(f.chats)
		f.mu.Unlock()
	}
	s.mu.Unlock()
	return n
}

// addrKey is what the per-address cap counts by: the IPv4 address, or
// the /64 of an IPv6 one (one subscriber's network gets a /64).
func addrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
