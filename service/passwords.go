package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	"golang.org/x/crypto/argon2"
)

// DefaultPasswordWait is how long a login or signup waits for an Argon2id
// slot before it is refused with RATE_LIMITED.
const DefaultPasswordWait = 2 * time.Second

// PasswordSlots is how many Argon2id evaluations of cost c may run at once
// on a node whose Go memory limit is limit bytes (math.MaxInt64: none) and
// that has procs CPUs for Go: a quarter of the limit, and never more than
// two per CPU, since more would only queue for the CPU while holding
// memory. At least one.
func PasswordSlots(limit int64, procs int, c PasswordCost) int {
	n := 2 * max(1, procs)
	if limit > 0 && limit != math.MaxInt64 {
		// The hash's memory plus the goroutine's and the request's.
		per := int64(c.MemoryK)*1024 + 1<<20
		n = int(min(int64(n), limit/4/per))
	}
	return max(1, n)
}

// PasswordStats counts this node's Argon2id evaluations.
type PasswordStats struct {
	Evaluations int64 // since start
	Peak        int64 // most ever running at once
	Running     int64 // running now
}

// passwords puts every Argon2id evaluation of the node behind one
// semaphore: each holds MemoryK of memory, and a flood of logins must meet
// RATE_LIMITED, never the OOM killer.
type passwords struct {
	cost  PasswordCost
	slots chan struct{}
	wait  time.Duration
	// dummy is checked for a username that does not exist, so that an
	// unknown name costs exactly one evaluation, as a known one does. Its
	// key is random bytes, not a hash: no password matches it, and making
	// it costs no evaluation of its own.
	dummy []byte

	evaluations, running, peak atomic.Int64
	// garbage is the bytes evaluations have left since the last collection
	// this type asked for; collecting is pending while one is scheduled.
	garbage    atomic.Int64
	collecting atomic.Bool
}

func newPasswords(c PasswordCost, slots int, wait time.Duration) *passwords {
	if slots <= 0 {
		slots = PasswordSlots(debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0), c)
	}
	if wait <= 0 {
		wait = DefaultPasswordWait
	}
	salt, key := make([]byte, 16), make([]byte, 32)
	rand.Read(salt)
	rand.Read(key)
	return &passwords{cost: c, slots: make(chan struct{}, slots), wait: wait, dummy: phc(c, salt, key)}
}

func phc(c PasswordCost, salt, key []byte) []byte {
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.MemoryK, c.Time, c.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// run runs f, one Argon2id evaluation, once a slot is free; if none frees
// up in time it refuses with RATE_LIMITED and does not run f.
func (p *passwords) run(ctx context.Context, f func()) error {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-t.C:
		return p.busy()
	case <-ctx.Done():
		return p.busy()
	}
	defer func() { <-p.slots }()
	p.evaluations.Add(1)
	n := p.running.Add(1)
	defer func() {
		p.garbage.Add(int64(p.cost.MemoryK) * 1024)
		if p.running.Add(-1) == 0 {
			p.collectSoon()
		}
	}()
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	f()
	return nil
}

// collectSoon collects the garbage a burst of evaluations left once the
// slots have been idle for a moment. Each evaluation drops MemoryK of
// memory the moment it ends, but a node that falls idle after a flood of
// logins allocates too little to start a collection before Go's forced one
// two minutes later, and until then the scavenger may not return those
// pages: RSS stayed at the flood's peak (issue 22). A collection is asked
// for only when the garbage is at least half the live heap, so its cost,
// which grows with the live heap, stays in proportion to the work done.
func (p *passwords) collectSoon() {
	if !p.collecting.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(250*time.Millisecond, func() {
		defer p.collecting.Store(false)
		if p.running.Load() != 0 {
			return // still busy: the last evaluation to end asks again
		}
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		if g := p.garbage.Load(); g > 0 && uint64(g) >= live[0].Value.Uint64()/2 {
			p.garbage.Store(0)
			// Twice: the scavenger's target follows the heap in use when
			// the previous collection finished marking, which still counts
			// the garbage that collection then swept.
			runtime.GC()
			runtime.GC()
		}
	})
}

func (p *passwords) busy() error {
	return &herald.Error{Kind: herald.RateLimited, RetryAfter: p.wait,
		Msg: fmt.Sprintf("the server is busy checking passwords; try again in %s", p.wait.Round(time.Second))}
}

// hash makes a stored hash of password, behind the semaphore.
func (p *passwords) hash(ctx context.Context, password string) (encoded []byte, err error) {
	err = p.run(ctx, func() { encoded = p.cost.hash(password) })
	return encoded, err
}

// check verifies password against encoded (nil: the dummy), behind the
// semaphore.
func (p *passwords) check(ctx context.Context, encoded []byte, password string) (ok bool, err error) {
	if encoded == nil {
		encoded = p.dummy
	}
	err = p.run(ctx, func() { ok = checkPassword(encoded, password) })
	return ok, err
}

// PasswordStats reports the node's Argon2id work, for metrics and for the
// tests that prove a flood of logins cannot exceed its budget.
func (s *Service) PasswordStats() PasswordStats {
	return PasswordStats{Evaluations: s.pw.evaluations.Load(), Peak: s.pw.peak.Load(), Running: s.pw.running.Load()}
}
