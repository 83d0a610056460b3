package service

import (
	"context"
	"errors"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

func TestPasswordSlots(t *testing.T) {
	const mib = 1 << 20
	def := DefaultPasswordCost // 19 MiB + 1 MiB each
	tests := []struct {
		name  string
		limit int64
		procs int
		want  int
	}{
		{"no memory limit: two per CPU", math.MaxInt64, 4, 8},
		{"a quarter of 1 GiB", 1024 * mib, 64, 12},
		{"CPUs bind first", 8192 * mib, 2, 4},
		{"tiny limit: still one", 10 * mib, 8, 1},
		{"no CPUs reported", math.MaxInt64, 0, 2},
	}
	for _, tt := range tests {
		if got := PasswordSlots(tt.limit, tt.procs, def); got != tt.want {
			t.Errorf("%s: PasswordSlots(%d, %d) = %d, want %d", tt.name, tt.limit, tt.procs, got, tt.want)
		}
	}
}

// A password check that finds every slot taken for longer than the wait
// is refused with RATE_LIMITED and a time to retry, and never evaluated.
func TestPasswordsBusy(t *testing.T) {
	p := newPasswords(PasswordCost{Time: 1, MemoryK: 64, Threads: 1}, 1, 20*time.Millisecond)
	ctx := context.Background()
	hold, held := make(chan struct{}), make(chan struct{})
	go p.run(ctx, func() { close(held); <-hold })
	<-held
	ran := false
	err := p.run(ctx, func() { ran = true })
	var he *herald.Error
	if !errors.As(err, &he) || he.Kind != herald.RateLimited || he.RetryAfter <= 0 || ran {
		t.Fatalf("with the only slot taken: %v (ran: %v)", err, ran)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.run(cancelled, func() { ran = true }); !herald.IsKind(err, herald.RateLimited) || ran {
		t.Fatalf("a caller that gave up: %v (ran: %v)", err, ran)
	}
	close(hold)
	if ok, err := p.check(ctx, nil, "anything at all"); ok || err != nil {
		t.Fatalf("the dummy hash: %v, %v", ok, err)
	}
	if st := p.evaluations.Load(); st != 2 {
		t.Fatalf("%d evaluations, want 2", st)
	}
}

// retained is the memory the Go runtime holds from the system: everything
// it mapped minus what it has returned.
func retained() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// TestPasswordMemoryReturns: after a burst of Argon2id evaluations the
// node is idle, and the memory they used goes back to the system within a
// minute (issue 22) instead of waiting for Go's two-minute forced
// collection. Not parallel: it reads the whole process's memory.
func TestPasswordMemoryReturns(t *testing.T) {
	const mib = 1 << 20
	p := newPasswords(PasswordCost{Time: 1, MemoryK: 16 << 10, Threads: 1}, 2, time.Minute)
	enc, _ := p.hash(context.Background(), "pw") // the first evaluation, before the baseline
	debug.FreeOSMemory()                         // a clean baseline (the test's, not the fix)
	base := retained()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.check(context.Background(), enc, "wrong")
		}()
	}
	wg.Wait()
	high := retained()
	// Two slots of 16 MiB were in use at once; all of it must go back.
	deadline := time.Now().Add(time.Minute)
	for retained() > base+12*mib {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the burst the runtime holds %d MiB more than before it (%d MiB more at its end)",
				(retained()-base)/mib, (high-base)/mib)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("held %d MiB more at the end of the burst, back to within 12 MiB of the baseline", (high-base)/mib)
}
