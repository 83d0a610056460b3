package bench

import (
	"context"
	"math"
	"time"
)

// Schedule is an open-loop send plan: sends at fixed intervals of 1/Rate
// seconds from the start (offset 0) for as long as their offset is below
// Duration. When a send happens does not depend on how fast earlier sends
// were answered, so a slow server cannot slow the load down and hide its
// latency (coordinated omission).
type Schedule struct {
	Rate     float64 // sends per second, > 0
	Duration time.Duration
}

// Count is the number of sends in the plan: the i with At(i) < Duration.
func (s Schedule) Count() int {
	if s.Rate <= 0 || s.Duration <= 0 {
		return 0
	}
	n := int(math.Ceil(s.Rate * s.Duration.Seconds()))
	// Correct float rounding at the edges so Count agrees with At exactly.
	for n > 0 && s.At(n-1) >= s.Duration {
		n--
	}
	for s.At(n) < s.Duration {
		n++
	}
	return n
}

// At is the offset of send i from the start.
func (s Schedule) At(i int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / s.Rate)
}

// Due is how many sends are due once elapsed has passed since the start:
// the number of i < Count with At(i) <= elapsed.
func (s Schedule) Due(elapsed time.Duration) int {
	if elapsed < 0 || s.Rate <= 0 {
		return 0
	}
	total := s.Count()
	n := min(total, int(elapsed.Seconds()*s.Rate)+1)
	for n > 0 && s.At(n-1) > elapsed {
		n--
	}
	for n < total && s.At(n) <= elapsed {
		n++
	}
	return n
}

// Run calls fire(i) for every send of the plan, in order, as soon as its
// offset from start has passed. Sends that fell due while Run was asleep
// or busy are fired at once in a burst, never skipped, so each keeps its
// own scheduled time. fire must not block. Run returns how many sends it
// fired: Count, or fewer if ctx ended first.
func (s Schedule) Run(ctx context.Context, start time.Time, fire func(i int)) int {
	total := s.Count()
	next := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for next < total {
		due := s.Due(time.Since(start))
		for ; next < due; next++ {
			fire(next)
		}
		if next == total {
			break
		}
		timer.Reset(time.Until(start.Add(s.At(next))))
		select {
		case <-ctx.Done():
			return next
		case <-timer.C:
		}
	}
	return next
}
