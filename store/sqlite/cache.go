package sqlite

import (
	"context"
	"slices"
	"sync"

	"github.com/heraldim/herald"
)

// cache keeps the rows every send reads before it is queued — the chat,
// the sender's membership, the members, a block between them — so that a
// send costs no reads on the pool. It is exact, not a guess: every write
// goes through this process's one writer, which after each commit (and
// before any caller hears of it) either applies what a batch of plain
// appends changed (a chat's last seq, a sender's read position) or, after
// any other write, empties the cache. gen makes a read that raced a
// commit drop what it read instead of caching it.
type cache struct {
	mu      sync.Mutex
	gen     uint64
	chats   map[int64]herald.Chat
	members map[int64][]herald.Member // whole member lists of small chats
	member  map[[2]int64]herald.Member
	blocked map[[2]int64]bool
}

// Bounds: a cache past them is emptied, which costs a few reads.
const (
	cacheEntries   = 50_000
	cacheMemberMax = 256 // longer member lists are not kept whole
)

func newCache() *cache {
	c := &cache{}
	c.reset()
	return c
}

func (c *cache) reset() {
	c.chats = map[int64]herald.Chat{}
	c.members = map[int64][]herald.Member{}
	c.member = map[[2]int64]herald.Member{}
	c.blocked = map[[2]int64]bool{}
}

// snapshot is the generation a read starts at.
func (c *cache) snapshot() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// store runs put if nothing was committed since gen.
func (c *cache) store(gen uint64, put func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.chats)+len(c.members)+len(c.member)+len(c.blocked) >= cacheEntries {
		c.reset()
	}
	put()
}

// clear forgets everything: a write the cache does not follow committed.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.reset()
}

// appended applies what committed grouped appends changed: each chat's
// last seq, and each sender's read position (never lowered).
func (c *cache) appended(chats []chatSeq, reads []readPos) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, s := range chats {
		if ch, ok := c.chats[s.chat]; ok {
			ch.LastSeq = s.seq
			c.chats[s.chat] = ch
		}
	}
	for _, r := range reads {
		k := [2]int64{r.chat, r.user}
		if m, ok := c.member[k]; ok && m.ReadSeq < r.seq {
			m.ReadSeq = r.seq
			c.member[k] = m
		}
		if ms, ok := c.members[r.chat]; ok {
			for i := range ms {
				if ms[i].UserID == r.user && ms[i].ReadSeq < r.seq {
					// A new list: callers may hold the old one.
					ms = slices.Clone(ms)
					ms[i].ReadSeq = r.seq
					c.members[r.chat] = ms
					break
				}
			}
		}
	}
}

type chatSeq struct{ chat, seq int64 }

// Chat implements store.Store.
func (db *DB) Chat(ctx context.Context, chatID int64) (herald.Chat, error) {
	db.cache.mu.Lock()
	ch, ok := db.cache.chats[chatID]
	gen := db.cache.gen
	db.cache.mu.Unlock()
	if ok {
		return ch, nil
	}
	ch, err := db.reads.Chat(ctx, chatID)
	if err == nil {
		db.cache.store(gen, func() { db.cache.chats[chatID] = ch })
	}
	return ch, err
}

// Member implements store.Store.
func (db *DB) Member(ctx context.Context, chatID, userID int64) (herald.Member, error) {
	k := [2]int64{chatID, userID}
	db.cache.mu.Lock()
	m, ok := db.cache.member[k]
	ms, whole := db.cache.members[chatID]
	gen := db.cache.gen
	db.cache.mu.Unlock()
	if ok {
		return m, nil
	}
	if whole {
		for _, m := range ms {
			if m.UserID == userID {
				return m, nil
			}
		}
		return herald.Member{}, herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
	}
	m, err := db.reads.Member(ctx, chatID, userID)
	if err == nil {
		db.cache.store(gen, func() { db.cache.member[k] = m })
	}
	return m, err
}

// Members implements store.Store.
func (db *DB) Members(ctx context.Context, chatID int64) ([]herald.Member, error) {
	db.cache.mu.Lock()
	ms, ok := db.cache.members[chatID]
	gen := db.cache.gen
	db.cache.mu.Unlock()
	if ok {
		return slices.Clone(ms), nil
	}
	ms, err := db.reads.Members(ctx, chatID)
	if err == nil && len(ms) <= cacheMemberMax {
		kept := slices.Clone(ms)
		db.cache.store(gen, func() { db.cache.members[chatID] = kept })
	}
	return ms, err
}

// Blocked implements store.Moderation.
func (db *DB) Blocked(ctx context.Context, userID, blockedID int64) (bool, error) {
	k := [2]int64{userID, blockedID}
	db.cache.mu.Lock()
	b, ok := db.cache.blocked[k]
	gen := db.cache.gen
	db.cache.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := db.reads.Blocked(ctx, userID, blockedID)
	if err == nil {
		db.cache.store(gen, func() { db.cache.blocked[k] = b })
	}
	return b, err
}
