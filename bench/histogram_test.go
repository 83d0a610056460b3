package bench

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summary()
	for _, c := range []struct {
		name string
		got  Millis
		want float64
	}{
		{"p50", s.P50, 500},
		{"p90", s.P90, 900},
		{"p99", s.P99, 990},
		{"p99.9", s.P999, 999},
		{"max", s.Max, 1000},
		{"mean", s.Mean, 500.5},
	} {
		// Three significant digits: within 0.1 % (plus a rounding hair).
		if math.Abs(float64(c.got)-c.want) > c.want*0.0011 {
			t.Errorf("%s = %.3f ms, want %.1f ms ± 0.1 %%", c.name, float64(c.got), c.want)
		}
	}
	if s.Count != 1000 || s.Clamped != 0 {
		t.Errorf("count %d clamped %d, want 1000 and 0", s.Count, s.Clamped)
	}
}

func TestHistogramEdges(t *testing.T) {
	for _, c := range []struct {
		name        string
		values      []time.Duration
		wantMax     float64 // ms
		wantClamped int64
	}{
		{"empty", nil, 0, 0},
		{"below the floor counts as 1µs", []time.Duration{0, -time.Second, 10}, 0.001, 0},
		{"above the ceiling is clamped and counted", []time.Duration{5 * time.Minute, time.Second}, 120_000, 1},
		{"the ceiling itself is not clamped", []time.Duration{2 * time.Minute}, 120_000, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := NewHistogram()
			for _, v := range c.values {
				h.Record(v)
			}
			s := h.Summary()
			if s.Count != int64(len(c.values)) {
				t.Errorf("count %d, want %d", s.Count, len(c.values))
			}
			// Within 0.1 %, or the histogram's one-microsecond resolution.
			if math.Abs(float64(s.Max)-c.wantMax) > max(c.wantMax*0.0011, 0.001) {
				t.Errorf("max %.4f ms, want %.4f ms", float64(s.Max), c.wantMax)
			}
			if s.Clamped != c.wantClamped {
				t.Errorf("clamped %d, want %d", s.Clamped, c.wantClamped)
			}
		})
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if n := h.Summary().Count; n != 8000 {
		t.Fatalf("count %d after 8000 concurrent records", n)
	}
}

func TestMillis(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 1500 * time.Microsecond, 3 * time.Second} {
		if got := MillisOf(d).Duration(); got != d {
			t.Errorf("MillisOf(%s).Duration() = %s", d, got)
		}
	}
}
