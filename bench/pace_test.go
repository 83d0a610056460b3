package bench

import (
	"context"
	"testing"
	"time"
)

func TestScheduleCount(t *testing.T) {
	for _, c := range []struct {
		rate float64
		d    time.Duration
		want int
	}{
		{10, time.Second, 10}, // offsets 0, 0.1 … 0.9 s
		{1, time.Second, 1},
		{3, time.Second, 3},
		{2.5, time.Second, 3}, // 0, 0.4, 0.8 s
		{1000, 30 * time.Second, 30_000},
		{20_000, 30 * time.Second, 600_000},
		{139_000, time.Second, 139_000},
		{1, 1500 * time.Millisecond, 2}, // 0 and 1 s
		{0.5, time.Second, 1},           // only offset 0
		{7, 10 * time.Millisecond, 1},
		{0, time.Second, 0},
		{10, 0, 0},
		{-5, time.Second, 0},
	} {
		s := Schedule{Rate: c.rate, Duration: c.d}
		if got := s.Count(); got != c.want {
			t.Errorf("Schedule{%g/s, %s}.Count() = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}

func TestScheduleAt(t *testing.T) {
	s := Schedule{Rate: 4, Duration: time.Second}
	for i, want := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond} {
		if got := s.At(i); got != want {
			t.Errorf("At(%d) = %s, want %s", i, got, want)
		}
	}
}

// TestScheduleDueAgrees checks Due against At for every send: a send is
// due exactly from its offset on.
func TestScheduleDueAgrees(t *testing.T) {
	for _, s := range []Schedule{
		{Rate: 3, Duration: time.Second},
		{Rate: 1000, Duration: 2 * time.Second},
		{Rate: 7777, Duration: time.Second},
		{Rate: 0.7, Duration: 10 * time.Second},
	} {
		n := s.Count()
		for i := range n {
			if got := s.Due(s.At(i)); got != i+1 {
				t.Fatalf("%+v: Due(At(%d)) = %d, want %d", s, i, got, i+1)
			}
			if i > 0 && s.At(i) > s.At(i-1) {
				if got := s.Due(s.At(i) - 1); got != i {
					t.Fatalf("%+v: Due(At(%d)-1ns) = %d, want %d", s, i, got, i)
				}
			}
		}
		if got := s.Due(-time.Nanosecond); got != 0 {
			t.Errorf("%+v: Due before the start = %d", s, got)
		}
		if got := s.Due(time.Hour); got != n {
			t.Errorf("%+v: Due long after the end = %d, want Count %d", s, got, n)
		}
	}
}

// TestScheduleRunCatchesUp starts the schedule in the past: every send is
// already due, so Run fires all of them at once, in order, without
// sleeping and without skipping any.
func TestScheduleRunCatchesUp(t *testing.T) {
	s := Schedule{Rate: 500, Duration: time.Second}
	var got []int
	n := s.Run(context.Background(), time.Now().Add(-time.Hour), func(i int) { got = append(got, i) })
	if n != s.Count() || len(got) != s.Count() {
		t.Fatalf("fired %d (%d calls), want %d", n, len(got), s.Count())
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("call %d fired send %d", i, v)
		}
	}
}

func TestScheduleRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := Schedule{Rate: 10, Duration: time.Second}
	// Starting an hour from now, nothing is due; a cancelled context ends
	// the wait at once.
	calls := 0
	if n := s.Run(ctx, time.Now().Add(time.Hour), func(int) { calls++ }); n != 0 || calls != 0 {
		t.Fatalf("fired %d (%d calls) on a cancelled context", n, calls)
	}
}
