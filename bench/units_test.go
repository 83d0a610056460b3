package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	const text = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 4.2e+07
process_cpu_seconds_total 12.5
herald_requests_total{method="auth.resume",kind="OK"} 7
herald_requests_total{method="auth.resume",kind="UNAUTHENTICATED"} 2
herald_requests_total{method="messages.send",kind="OK"} 100
weird{label="a value with spaces } and braces"} 3 1700000000000
broken{label="x" 1
not_a_number NaNx

`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"rss", m.Get("process_resident_memory_bytes"), 42e6},
		{"cpu", m.Get("process_cpu_seconds_total"), 12.5},
		{"absent", m.Get("nothing"), 0},
		{"labelled", m.Get(`herald_requests_total{method="messages.send",kind="OK"}`), 100},
		{"sum by labels", m.Sum("herald_requests_total", `method="auth.resume"`, `kind="OK"`), 7},
		{"sum of a method", m.Sum("herald_requests_total", `method="auth.resume"`), 9},
		{"sum of all", m.Sum("herald_requests_total"), 109},
		{"label value with braces, and a timestamp", m.Get(`weird{label="a value with spaces } and braces"}`), 3},
	} {
		if c.got != c.want {
			t.Errorf("%s: %g, want %g", c.name, c.got, c.want)
		}
	}
	if len(m) != 6 {
		t.Errorf("parsed %d samples, want 6 (broken lines skipped): %v", len(m), m)
	}
}

func TestDiff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := Diff(
		ServerSample{At: t0, RSS: 100 << 20, CPU: 10, SlowConsumers: 1},
		ServerSample{At: t0.Add(4 * time.Second), RSS: 300 << 20, CPU: 16, SlowConsumers: 4, Goroutines: 50},
	)
	want := ServerStats{RSSBeforeMiB: 100, RSSAfterMiB: 300, CPUSeconds: 6, CPUCores: 1.5, Goroutines: 50, SlowConsumers: 3}
	if d != want {
		t.Fatalf("Diff = %+v, want %+v", d, want)
	}
}

func TestCheckServer(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" means refused
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"ws://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.1.2.3:9", "http://127.1.2.3:9"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"http://LOCALHOST:8080", "http://LOCALHOST:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://10.0.0.1:8080", ""},
		{"http://192.168.1.1", ""},
		{"http://example.com", ""},
		{"http://localhost.example.com", ""},
		{"https://127.0.0.1:8443", ""},
		{"127.0.0.1:8080", ""},
		{"", ""},
		{"http://0.0.0.0:8080", ""},
	} {
		got, err := CheckServer(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("CheckServer(%q) = %q, want it refused", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CheckServer(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestMarker(t *testing.T) {
	e := &loadEngine{textSize: 40}
	txt := e.text(3, 12345)
	if len(txt) != 40 {
		t.Errorf("text %q has %d bytes, want 40", txt, len(txt))
	}
	if len((&loadEngine{textSize: 1}).text(3, 12345)) <= 1 {
		t.Error("a marker is never cut short by a small text size")
	}
	for _, c := range []struct {
		in       string
		step     int64
		i        int
		wantFail bool
	}{
		{txt, 3, 12345, false},
		{"hb 0 0 ", 0, 0, false},
		{"hb 7 9", 7, 9, false},
		{"hello", 0, 0, true},
		{"hb 7", 0, 0, true},
		{"hb x 1 ", 0, 0, true},
		{"hb 1 -2 ", 0, 0, true},
		{"", 0, 0, true},
	} {
		step, i, ok := parseMarker(c.in)
		if ok == c.wantFail || (ok && (step != c.step || i != c.i)) {
			t.Errorf("parseMarker(%q) = %d, %d, %v", c.in, step, i, ok)
		}
	}
}

func TestReadAccounts(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     int
		fail     bool
	}{
		{"two users", "alice1 tok1\nbobby1 tok2\n", 2, false},
		{"comments and blanks", "# made by heraldd bench-users\n\n alice1   tok1 \n", 1, false},
		{"empty", "", 0, false},
		{"missing token", "alice1\n", 0, true},
		{"extra field", "alice1 tok1 x\n", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadAccounts(strings.NewReader(c.in))
			if (err != nil) != c.fail || len(got) != c.want {
				t.Fatalf("ReadAccounts = %v, %v", got, err)
			}
			if c.want > 0 && (got[0].Username != "alice1" || got[0].Token != "tok1") {
				t.Errorf("first account %+v", got[0])
			}
		})
	}
}

func TestAccountsTakeFromFile(t *testing.T) {
	a := &Accounts{File: []Account{{"a1", "t1"}, {"a2", "t2"}, {"a3", "t3"}}}
	first, err := a.Take(context.Background(), "http://127.0.0.1:1", 2)
	if err != nil || len(first) != 2 || first[1].Username != "a2" {
		t.Fatalf("Take(2) = %v, %v", first, err)
	}
	second, err := a.Take(context.Background(), "http://127.0.0.1:1", 1)
	if err != nil || len(second) != 1 || second[0].Username != "a3" {
		t.Fatalf("then Take(1) = %v, %v", second, err)
	}
}

func TestJudge(t *testing.T) {
	good := LoadResult{Accepted: 100, ExpectedDeliveries: 100, Delivered: 100, Latency: Latency{P99: 20}}
	for _, c := range []struct {
		name string
		edit func(*LoadResult)
		pass bool
	}{
		{"all good", func(*LoadResult) {}, true},
		{"p99 at the bound", func(r *LoadResult) { r.Latency.P99 = 50 }, true},
		{"p99 over", func(r *LoadResult) { r.Latency.P99 = 50.5 }, false},
		{"skipped", func(r *LoadResult) { r.Skipped = 1 }, false},
		{"failed", func(r *LoadResult) { r.Failed = 1 }, false},
		{"missing deliveries", func(r *LoadResult) { r.Delivered = 99 }, false},
	} {
		r := good
		c.edit(&r)
		if ok, why := Judge(r, 50*time.Millisecond); ok != c.pass || (!ok && why == "") {
			t.Errorf("%s: Judge = %v %q, want %v", c.name, ok, why, c.pass)
		}
	}
}

// fakeServer answers runs like a server whose p99 stays at 10 ms up to
// capacity and then grows past any bound.
func fakeServer(capacity float64, calls *[]float64) func(context.Context, float64) (LoadResult, error) {
	return func(_ context.Context, rate float64) (LoadResult, error) {
		*calls = append(*calls, rate)
		r := LoadResult{Offered: rate, Accepted: 1, ExpectedDeliveries: 1, Delivered: 1, Latency: Latency{P99: 10}}
		if rate > capacity {
			r.Latency.P99 = 900
		}
		return r, nil
	}
}

func TestSearchMax(t *testing.T) {
	for _, c := range []struct {
		name          string
		cfg           SearchConfig
		capacity      float64
		wantMax       float64 // exact when wantBracketed is false
		wantBracketed bool
	}{
		{"up then bisect", SearchConfig{Start: 1000, Precision: 0.05}, 5500, 5500, true},
		{"down then bisect", SearchConfig{Start: 8000, Precision: 0.05}, 1300, 1300, true},
		{"start is exactly the capacity", SearchConfig{Start: 1000}, 1000, 1000, true},
		{"capacity above the ceiling", SearchConfig{Start: 1000, Ceiling: 3000}, 1e9, 3000, false},
		{"nothing passes", SearchConfig{Start: 1000, Floor: 100}, 50, 0, false},
		{"out of steps", SearchConfig{Start: 1000, MaxSteps: 3}, 1e9, 4000, false},
		{"out of budget before the first step", SearchConfig{Start: 1000, Budget: time.Second, StepCost: time.Minute}, 1e9, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls []float64
			res, err := SearchMax(context.Background(), c.cfg, fakeServer(c.capacity, &calls))
			if err != nil {
				t.Fatal(err)
			}
			cfg := c.cfg
			cfg.defaults()
			if len(res.Steps) != len(calls) || len(calls) > cfg.MaxSteps {
				t.Fatalf("%d steps recorded, %d runs, at most %d allowed", len(res.Steps), len(calls), cfg.MaxSteps)
			}
			if res.Bracketed != c.wantBracketed {
				t.Errorf("bracketed = %v, want %v (steps %v)", res.Bracketed, c.wantBracketed, calls)
			}
			if c.wantBracketed {
				if res.MaxRate > c.capacity || res.MaxRate < c.capacity/(1+cfg.Precision) {
					t.Errorf("max %g, want within %g %% below %g (steps %v)", res.MaxRate, 100*cfg.Precision, c.capacity, calls)
				}
			} else if res.MaxRate != c.wantMax {
				t.Errorf("max %g, want %g (steps %v)", res.MaxRate, c.wantMax, calls)
			}
			for _, s := range res.Steps {
				if s.Pass != (s.Rate <= c.capacity) {
					t.Errorf("step at %g judged pass=%v", s.Rate, s.Pass)
				}
			}
		})
	}
}

func TestSearchMaxStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	_, err := SearchMax(context.Background(), SearchConfig{}, func(context.Context, float64) (LoadResult, error) {
		n++
		if n == 2 {
			return LoadResult{}, boom
		}
		return LoadResult{Latency: Latency{P99: 1}}, nil
	})
	if !errors.Is(err, boom) || n != 2 {
		t.Fatalf("err %v after %d runs, want boom after 2", err, n)
	}
}

func ExampleSchedule() {
	s := Schedule{Rate: 4, Duration: time.Second}
	fmt.Println(s.Count(), s.At(1), s.Due(600*time.Millisecond))
	// Output: 4 250ms 3
}
