package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/heraldim/herald/bus"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

// catchUpAgain is how long after the bus connection comes back the node
// tells its connections to catch up a second time. The subscriptions that
// a reconnect sends again reach the bus server at once, but cross a NATS
// cluster to the other servers asynchronously, with no signal when they
// have; an event another node publishes in that moment is missed, and a
// device that then receives nothing more would not notice the gap. Two
// seconds is far longer than interest takes to cross a healthy cluster.
const catchUpAgain = 2 * time.Second

// catchUpBeat is how often each node repeats its catch-up notice (its
// id and epoch, see BusLost). The notice a node publishes right after a
// reconnect can itself be lost: the server it reconnected to may not yet
// have its routes to the rest of the cluster back (a restarted server) or
// know the other nodes' interest. The beat delivers the new epoch once
// they are, so the other nodes' connections catch up at most a beat late.
const catchUpBeat = 5 * time.Second

// forgetNode is how long a node that sends no beat is remembered, so
// that nodes that come and go do not grow the table for ever. One that
// comes back after that costs a catch-up, as a node first heard of with a
// reconnect behind it does.
const forgetNode = time.Hour

// BusLost is the bus's report that events may not have reached this
// node's connections (bus/nats's OnLoss): topic's subscribers, when its
// subscription dropped messages because it fell behind, or everyone
// (topic ""), after the connection to the bus was re-established.
//
// The store has every update, so nothing is lost, only not pushed; each
// affected connection is sent a CatchUp frame, on which the client runs
// the catch-up it runs after a reconnect. After a reconnect the node also
// has every other node do the same for all their connections, since what
// this node published while it was cut off (Publish failed) or just before
// it noticed (the bytes were in flight) may never have reached them: it
// starts a new epoch, which its catch-up notices carry (at once, then
// every catchUpBeat), and a node that sees another's epoch grow tells its
// connections to catch up. A node it has not heard from before counts as
// having been at epoch 0 (no reconnect), so a notice that arrives only
// after the reconnect, or a node started meanwhile, still catches up
// (once, needlessly at worst). That costs every connected device
// one difference call per interruption, which a NATS server's loss
// justifies.
//
// BusLost does not block: it runs on the bus's callback goroutine.
func (s *Server) BusLost(topic string) {
	switch topic {
	case "":
		go s.reconnected()
	case bus.CatchUpTopic:
		// A notice from another node may be among the dropped messages;
		// its beat repeats it, but our connections need not wait.
		s.catchUp(s.allConns())
	default:
		s.catchUp(s.topicConns(topic))
	}
}

// reconnected tells this node's connections, and every other node, to
// catch up after the bus connection was interrupted, and this node's
// connections once more when interest has crossed the cluster.
func (s *Server) reconnected() {
	s.log.Warn("the bus connection was interrupted; connections on every node are told to catch up")
	s.epoch.Add(1)
	s.catchUp(s.allConns())
	go s.recheck()
	s.beat()
	t := time.NewTimer(catchUpAgain)
	defer t.Stop()
	select {
	case <-t.C:
		s.catchUp(s.allConns())
	case <-s.stopped:
	}
}

// beat publishes this node's catch-up notice: its id and epoch.
func (s *Server) beat() {
	if s.isClosing() {
		return
	}
	msg := binary.BigEndian.AppendUint64(append([]byte(nil), s.nodeID[:]...), s.epoch.Load())
	if err := s.bus.Publish(context.Background(), bus.CatchUpTopic, msg); err != nil {
		// The bus is down again; its reconnect starts a new epoch, and
		// the next beat carries it.
		s.log.Debug("catch-up notice", "err", err)
	}
}

// beats publishes the notice every catchUpBeat until the server stops.
func (s *Server) beats() {
	t := time.NewTicker(catchUpBeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.beat()
		case <-s.stopped:
			return
		}
	}
}

// followCatchUps subscribes the node to the other nodes' catch-up notices
// and starts its own beat.
func (s *Server) followCatchUps() error {
	sub, err := s.bus.Subscribe(bus.CatchUpTopic, s.notice)
	if err != nil {
		return err
	}
	s.catchUpSub = sub
	go s.beats()
	return nil
}

// notice handles a catch-up notice: if a node has started a new epoch
// since we last heard from it, what it published before may not have
// reached us.
func (s *Server) notice(data []byte) {
	if len(data) != len(s.nodeID)+8 {
		s.log.Warn("a catch-up notice of the wrong size", "bytes", len(data))
		return
	}
	var id [16]byte
	copy(id[:], data)
	if id == s.nodeID {
		return // our own: reconnected already told our connections
	}
	epoch := binary.BigEndian.Uint64(data[len(id):])
	now := time.Now()
	s.mu.Lock()
	seen := s.epochs[id]
	s.epochs[id] = nodeEpoch{epoch: max(epoch, seen.epoch), at: now}
	if len(s.epochs) > 1 && now.Sub(s.pruned) > forgetNode/4 {
		s.pruned = now
		for k, v := range s.epochs {
			if now.Sub(v.at) > forgetNode {
				delete(s.epochs, k)
			}
		}
	}
	s.mu.Unlock()
	if epoch > seen.epoch {
		s.catchUp(s.allConns())
		go s.recheck()
	}
}

// nodeEpoch is the last epoch heard from another node, and when.
type nodeEpoch struct {
	epoch uint64
	at    time.Time
}

// recheck repairs, from the store, what lost bus events other than
// updates would have left wrong on this node's connections: a revocation
// (the device's connection must close, on every node), a follow of a
// broadcast chat (the connection must receive its posts) and an unfollow
// (it must stop receiving them: the user left, was removed from a
// private channel, or muted it). A CatchUp cannot repair those, since
// they change the server's side of the connection, not the device's log.
// It reads each local user's devices and followed chats once.
//
// Calls while one runs are folded into one more run after it.
func (s *Server) recheck() {
	s.mu.Lock()
	if s.rechecking {
		s.recheckAgain = true
		s.mu.Unlock()
		return
	}
	s.rechecking = true
	s.mu.Unlock()
	for {
		s.recheckOnce()
		s.mu.Lock()
		again := s.recheckAgain
		s.recheckAgain = false
		s.rechecking = again
		s.mu.Unlock()
		if !again {
			return
		}
	}
}

func (s *Server) recheckOnce() {
	ctx := context.Background()
	for _, f := range s.followers() {
		if s.isClosing() {
			return
		}
		conns := usersConns([]*follower{f})
		var caller service.Caller
		for _, c := range conns {
			if cl, ok := c.authed(); ok {
				caller = cl
				break
			}
		}
		if caller.UserID == 0 {
			continue
		}
		devs, err := s.svc.Devices(ctx, caller)
		if err != nil {
			// The store is away too, most likely for every user: stop
			// rather than log once per user. The next interruption, or
			// each device's next reconnect, checks again.
			s.log.Warn("recheck connections after a bus interruption", "user", f.id, "err", err)
			return
		}
		live := make(map[int64]bool, len(devs))
		for _, d := range devs {
			live[d.ID] = true
		}
		for _, c := range conns {
			if !live[c.deviceID()] {
				c.revoke("device logged out")
			}
		}
		if err := s.refollow(ctx, f, caller); err != nil {
			s.log.Warn("resubscribe after a bus interruption", "user", f.id, "err", err)
		}
	}
}

// followers lists the users with a connection on this node.
func (s *Server) followers() []*follower {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*follower, 0, len(s.users))
	for _, f := range s.users {
		out = append(out, f)
	}
	return out
}

// refollow makes f's follow set match the chats the user follows in the
// store. If a follow or unfollow event reached f while the store was
// read, the read may be the older of the two and nothing is changed: the
// event itself is the newer word.
func (s *Server) refollow(ctx context.Context, f *follower, caller service.Caller) error {
	f.mu.Lock()
	gen := f.follows
	f.mu.Unlock()
	chats, err := s.svc.FollowedChats(ctx, caller)
	if err != nil {
		return err
	}
	want := make(map[int64]bool, len(chats))
	for _, id := range chats {
		want[id] = true
	}
	f.mu.Lock()
	if f.follows != gen || f.gone {
		f.mu.Unlock()
		return nil
	}
	var drop, add []int64
	for id := range f.chats {
		if !want[id] {
			drop = append(drop, id)
		}
	}
	for id := range want {
		if _, ok := f.chats[id]; !ok {
			add = append(add, id)
		}
	}
	f.mu.Unlock()
	for _, id := range drop {
		s.unfollowChat(f, id, false)
	}
	for _, id := range add {
		if err := s.followChat(f, id, false); err != nil {
			return err
		}
	}
	return nil
}

// catchUp pushes a CatchUp frame to each authenticated connection in
// conns. A connection whose queue is full is cut off as a slow consumer,
// which has the same effect once it reconnects.
func (s *Server) catchUp(conns []*conn) {
	n := 0
	for _, c := range conns {
		if _, ok := c.authed(); ok {
			c.push(catchUpFrame)
			n++
		}
	}
	s.metrics.catchUps.Add(float64(n))
}

func (s *Server) allConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) topicConns(topic string) []*conn {
	sh := s.shard(topic)
	sh.mu.Lock()
	e := sh.m[topic]
	sh.mu.Unlock()
	if e == nil {
		return nil
	}
	return usersConns(s.entryUsers(e))
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

var catchUpFrame = func() []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_CatchUp{CatchUp: &pb.CatchUp{Reason: "bus"}}})
	return b
}()

// newNodeID names this node in its own catch-up notices, so that it can
// tell them from other nodes'.
func newNodeID() (id [16]byte) {
	rand.Read(id[:])
	return id
}

// Abort drops every connection at once, without the closing handshake,
// and refuses new ones, as a node that crashed would: for failure tests
// (server.Node.Kill). Clients see a broken connection, not "going away".
func (s *Server) Abort() {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.stop()
	for _, c := range conns {
		c.ws.CloseNow()
	}
	for _, c := range conns {
		<-c.done
	}
}

// stop ends the node's own background work: catch-up timers and the
// catch-up subscription.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		close(s.stopped)
		if s.catchUpSub != nil {
			s.catchUpSub.Unsubscribe()
		}
	})
}
