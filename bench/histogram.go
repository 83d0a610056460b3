package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: one microsecond resolution up to two minutes, three
// significant digits (a recorded value is off by at most 0.1 %).
const (
	histMin = int64(time.Microsecond)
	histMax = int64(2 * time.Minute)
)

// Histogram records latencies in an HDR histogram. It is safe for
// concurrent use. Values below one microsecond are recorded as one
// microsecond; values above two minutes as two minutes, and counted in
// Clamped.
type Histogram struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram
	clamped int64
}

// NewHistogram returns an empty Histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histMin, histMax, 3)}
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case v < histMin:
		v = histMin
	case v > histMax:
		v = histMax
		h.clamped++
	}
	h.h.RecordValue(v) // in range by construction
}

// Summary returns the count and the usual quantiles.
func (h *Histogram) Summary() Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return Latency{}
	}
	q := func(p float64) Millis { return MillisOf(time.Duration(h.h.ValueAtQuantile(p))) }
	return Latency{
		Count:   h.h.TotalCount(),
		Mean:    MillisOf(time.Duration(h.h.Mean())),
		P50:     q(50),
		P90:     q(90),
		P99:     q(99),
		P999:    q(99.9),
		Max:     MillisOf(time.Duration(h.h.Max())),
		Clamped: h.clamped,
	}
}

// Millis is a duration reported in milliseconds (JSON: a number).
type Millis float64

// MillisOf converts a duration to Millis.
func MillisOf(d time.Duration) Millis { return Millis(float64(d) / float64(time.Millisecond)) }

// Duration converts back to a time.Duration.
func (m Millis) Duration() time.Duration {
	return time.Duration(float64(m) * float64(time.Millisecond))
}

// Latency summarises a Histogram; times are in milliseconds.
type Latency struct {
	Count   int64  `json:"count"`
	Mean    Millis `json:"mean_ms"`
	P50     Millis `json:"p50_ms"`
	P90     Millis `json:"p90_ms"`
	P99     Millis `json:"p99_ms"`
	P999    Millis `json:"p999_ms"`
	Max     Millis `json:"max_ms"`
	Clamped int64  `json:"clamped,omitempty"` // values above the histogram's two-minute ceiling
}
