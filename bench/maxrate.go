package bench

import (
	"context"
	"fmt"
	"time"
)

// SearchConfig bounds the search for the highest rate that meets a
// latency bound.
type SearchConfig struct {
	Start     float64       // first rate tried (default 1000/s)
	Ceiling   float64       // never try above this (default 1,000,000/s)
	Floor     float64       // give up below this (default 10/s)
	P99       time.Duration // the bound on p99 latency (default 50 ms)
	Precision float64       // stop when the bracket is this narrow, relative (default 0.1)
	MaxSteps  int           // at most this many runs (default 12)
	// Budget bounds the whole search; StepCost is what one run costs
	// (its duration, drain and pause), so no run starts that would end
	// past the budget.
	Budget   time.Duration
	StepCost time.Duration
}

func (c *SearchConfig) defaults() {
	if c.Start <= 0 {
		c.Start = 1000
	}
	if c.Ceiling <= 0 {
		c.Ceiling = 1_000_000
	}
	if c.Floor <= 0 {
		c.Floor = 10
	}
	if c.P99 <= 0 {
		c.P99 = 50 * time.Millisecond
	}
	if c.Precision <= 0 {
		c.Precision = 0.1
	}
	if c.MaxSteps <= 0 {
		c.MaxSteps = 12
	}
}

// Step is one run of a search.
type Step struct {
	Rate   float64    `json:"rate"`
	Pass   bool       `json:"pass"`
	Why    string     `json:"why,omitempty"` // why it failed
	Result LoadResult `json:"result"`
}

// MaxResult is the outcome of a search.
type MaxResult struct {
	Scenario string  `json:"scenario"`
	Pairs    int     `json:"pairs,omitempty"`
	P99Bound Millis  `json:"p99_bound_ms"`
	MaxRate  float64 `json:"max_rate"` // the highest rate that passed; 0 if none did
	// Bracketed is true if a failing rate above MaxRate was found within
	// Precision; false if the search ran out of steps or budget first, or
	// hit the ceiling.
	Bracketed bool   `json:"bracketed"`
	Steps     []Step `json:"steps"`
}

// Judge says whether a run met the bound: every scheduled send made and
// accepted, every delivery arrived once, and p99 latency (scheduled send to
// arrival) within the bound. It returns why not.
func Judge(r LoadResult, p99 time.Duration) (bool, string) {
	switch {
	case r.Skipped > 0:
		return false, fmt.Sprintf("%d sends skipped (generator backlog full)", r.Skipped)
	case r.Failed > 0:
		return false, fmt.Sprintf("%d sends failed", r.Failed)
	case r.Delivered < r.ExpectedDeliveries:
		return false, fmt.Sprintf("%d deliveries missing after the drain", r.ExpectedDeliveries-r.Delivered)
	case r.Latency.P99.Duration() > p99:
		return false, fmt.Sprintf("p99 %.1f ms over the bound", float64(r.Latency.P99))
	}
	return true, ""
}

// SearchMax finds the highest rate at which run's p99 latency stays within
// cfg.P99: it doubles the rate from cfg.Start until a run fails (or halves
// it until one passes), then bisects the bracket until it is narrower than
// cfg.Precision, within cfg.MaxSteps runs and cfg.Budget.
func SearchMax(ctx context.Context, cfg SearchConfig, run func(ctx context.Context, rate float64) (LoadResult, error)) (MaxResult, error) {
	cfg.defaults()
	res := MaxResult{P99Bound: MillisOf(cfg.P99)}
	began := time.Now()
	var lo, hi float64 // highest pass, lowest fail (0: none yet)
	try := func(rate float64) (bool, error) {
		r, err := run(ctx, rate)
		if err != nil {
			return false, err
		}
		ok, why := Judge(r, cfg.P99)
		res.Steps = append(res.Steps, Step{Rate: rate, Pass: ok, Why: why, Result: r})
		return ok, nil
	}
	rate := min(cfg.Start, cfg.Ceiling)
	for len(res.Steps) < cfg.MaxSteps {
		if cfg.Budget > 0 && time.Since(began)+cfg.StepCost > cfg.Budget {
			break
		}
		ok, err := try(rate)
		if err != nil {
			res.MaxRate = lo
			return res, err
		}
		if ok {
			lo = rate
		} else {
			hi = rate
		}
		switch {
		case hi == 0: // no failure yet: go up
			if rate >= cfg.Ceiling {
				res.MaxRate = lo
				return res, nil
			}
			rate = min(2*rate, cfg.Ceiling)
		case lo == 0: // no pass yet: go down
			rate /= 2
			if rate < cfg.Floor {
				return res, nil
			}
		default:
			if hi <= lo*(1+cfg.Precision) {
				res.MaxRate, res.Bracketed = lo, true
				return res, nil
			}
			rate = (lo + hi) / 2
		}
	}
	res.MaxRate = lo
	return res, nil
}
