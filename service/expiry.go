package service

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

// sweepBatch bounds one sweeper transaction, so a burst of expiries never
// holds the write path for long: other writes queue between batches.
const sweepBatch = 500

// sweepLease is how long a node holds the sweep after its last renewal:
// how long the sweep waits for a node that died in the middle of one.
const sweepLease = 30 * time.Second

// pruneEvery is how often the shared rate buckets are rid of full ones.
const pruneEvery = time.Minute

// pruneBuckets forgets full rate buckets in a shared store now and then,
// so the table holds only users who spent recently.
func (s *Service) pruneBuckets(ctx context.Context, now time.Time) error {
	r, ok := s.store.(store.Rates)
	last := s.pruned.Load()
	if !ok || now.Sub(time.Unix(0, last)) < pruneEvery || !s.pruned.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	return r.PruneTokens(ctx)
}

// SweepStats says what one sweep did.
type SweepStats struct {
	Expired   int // messages deleted
	Resealed  int // waiting timers moved to a later bucket
	Destroyed int // key-ring buckets destroyed
	Files     int // files of self-destructed messages deleted
	Envelopes int // secret-chat envelopes past their time, or of devices gone
}

// Sweep deletes every message whose time is up, keeps waiting timers'
// bodies in near buckets, and destroys the key-ring buckets that have
// ended. The order matters: a waiting body is moved to a later bucket
// before its old bucket is destroyed, and everything due is deleted before
// its key goes. Run at start, before serving, and then every second.
//
// On a store shared by several nodes every node runs it, and the
// database decides who works: the node that takes the store's "sweep"
// lease does this round; the others only destroy ended bucket keys in
// their own memory (the shared ring is already rid of them, or will be
// by the node holding the lease). So no message is expired twice, and as
// long as one node is up none is missed: a node that dies mid-sweep
// holds the lease at most sweepLease longer.
func (s *Service) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	now := s.now()
	l, shared := s.store.(store.Leaser)
	if shared {
		mine, err := l.Lease(ctx, "sweep", s.node, sweepLease)
		if err != nil {
			return st, err
		}
		if !mine {
			if s.ring != nil {
				if _, err := s.ring.DestroyBefore(now); err != nil {
					return st, herald.Wrap("service.Sweep", err)
				}
			}
			return st, nil
		}
		// Released at once, so the next round goes to whichever node
		// comes first.
		defer l.Release(context.WithoutCancel(ctx), "sweep", s.node)
	}
	if err := s.pruneBuckets(ctx, now); err != nil {
		return st, err
	}
	for {
		if shared {
			// A long sweep renews its lease between batches.
			if _, err := l.Lease(ctx, "sweep", s.node, sweepLease); err != nil {
				return st, err
			}
		}
		ups, n, err := s.store.ExpireMessages(ctx, now, sweepBatch)
		if err != nil {
			return st, err
		}
		s.announce(ctx, ups)
		s.notifyExpired(ups)
		st.Expired += n
		if n < sweepBatch {
			break
		}
	}
	ne, err := s.sweepEnvelopes(ctx, now)
	st.Envelopes = ne
	if err != nil {
		return st, err
	}
	nf, err := s.sweepFiles(ctx)
	st.Files = nf
	if err != nil {
		return st, err
	}
	if s.ring == nil {
		return st, nil
	}
	w := s.width()
	for {
		msgs, err := s.store.WaitingTimers(ctx, now.Add(w), sweepBatch)
		if err != nil {
			return st, err
		}
		if len(msgs) == 0 {
			break
		}
		roll := msgs[:0]
		for i := range msgs {
			m := msgs[i]
			if err := s.open(ctx, &m); err != nil {
				return st, err
			}
			if m.Deleted {
				continue // its body no longer opens: never reseal it as empty text
			}
			m.SealedUntil = minTime(m.ExpiresAt, now.Add(2*w))
			if err := s.seal(&m); err != nil {
				return st, err
			}
			roll = append(roll, m)
		}
		if _, err := s.store.Reseal(ctx, roll, false, now); err != nil {
			return st, err
		}
		st.Resealed += len(roll)
		if len(msgs) < sweepBatch || len(roll) == 0 {
			break
		}
	}
	d, err := s.ring.DestroyBefore(now)
	st.Destroyed = d
	if err != nil {
		return st, herald.Wrap("service.Sweep", err)
	}
	if st.Expired > 0 || st.Destroyed > 0 {
		// Deleted bodies must not linger in the write-ahead log.
		if err := s.store.Checkpoint(ctx); err != nil {
			return st, err
		}
	}
	return st, nil
}

// SetAutoDelete sets a chat's auto-delete timer for new messages (0: off).
// Either side may set it in a direct chat; owners and admins elsewhere.
// The change appears in the chat as a service message.
func (s *Service) SetAutoDelete(ctx context.Context, c Caller, p Peer, ttl time.Duration) (herald.Chat, error) {
	if ttl != 0 && (ttl < herald.MinAutoDelete || ttl > herald.MaxAutoDelete) {
		return herald.Chat{}, herald.Errorf(herald.Invalid, "an auto-delete timer is off, or between 1 hour and 365 days")
	}
	// The service message reaches every member as a send does; on a new
	// direct chat it is paid before the chat is created.
	ch, m, paid, err := s.resolveToWrite(ctx, c, p, 1)
	if err != nil {
		return ch, err
	}
	if ch.Kind != herald.Direct && m.Role < herald.RoleAdmin {
		return ch, herald.Errorf(herald.PermissionDenied, "only the owner and admins can set the auto-delete timer")
	}
	if !paid {
		if err := s.spend(ctx, c, ch, 1); err != nil {
			return ch, err
		}
	}
	if err := s.store.SetChatTTL(ctx, ch.ID, ttl); err != nil {
		return ch, err
	}
	s.forgetChat(ctx, ch.ID)
	ch.TTL = ttl
	note := fmt.Sprintf("@%s set messages to auto-delete %s after sending", c.Username, HumanDuration(ttl))
	if ttl == 0 {
		note = fmt.Sprintf("@%s turned off auto-delete", c.Username)
	}
	_, err = s.append(ctx, herald.Message{ChatID: ch.ID, SenderID: c.UserID, Text: note, Service: true, SentAt: s.now()})
	return ch, err
}

// HumanDuration writes a timer as people say it: 30s, 5m, 1h, 7d.
func HumanDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// HoldLease takes, or renews, the lease name for this node for ttl, for
// work that one node at a time must do (a bot's webhook deliveries). On a
// store served by one node, that node always holds it.
func (s *Service) HoldLease(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	l, ok := s.store.(store.Leaser)
	if !ok {
		return true, nil
	}
	return l.Lease(ctx, name, s.node, ttl)
}

// HoldLeases is HoldLease for many names in one round trip; it returns
// the names this node holds afterwards.
func (s *Service) HoldLeases(ctx context.Context, names []string, ttl time.Duration) ([]string, error) {
	l, ok := s.store.(store.Leaser)
	if !ok {
		return names, nil
	}
	return l.LeaseAll(ctx, names, s.node, ttl)
}

// ReleaseLease gives up this node's lease on name, so another node can
// take it without waiting for it to lapse.
func (s *Service) ReleaseLease(ctx context.Context, name string) error {
	if l, ok := s.store.(store.Leaser); ok {
		return l.Release(ctx, name, s.node)
	}
	return nil
}
