package bench_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldim/herald/bench"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// startServer runs a real server on a free loopback port, with cheap
// password hashing so signups over the protocol are quick, and abuse
// limits out of the way, as a benchmark's server is run.
func startServer(t *testing.T) string {
	t.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
		AbuseLimits:  service.Limits{DirectPerSecond: 1e6, GroupPerSecond: 1e6, SignupsPerHourPerAddr: 1e6},
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	url, err := bench.CheckServer(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// ctxFor bounds a scenario. The ceiling only stops a hung run, so it is
// generous: -race on a loaded 2-core machine is slow.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkLoad asserts that a run made, and delivered, everything it
// scheduled: counts only, never speed.
func checkLoad(t *testing.T, r bench.LoadResult, fanout int64) {
	t.Helper()
	if r.Scheduled == 0 || r.Accepted != r.Scheduled || r.Skipped != 0 || r.Failed != 0 || len(r.Errors) != 0 {
		t.Errorf("scheduled %d, accepted %d, skipped %d, failed %d %v", r.Scheduled, r.Accepted, r.Skipped, r.Failed, r.Errors)
	}
	if r.ExpectedDeliveries != int64(r.Accepted)*fanout || r.Delivered != r.ExpectedDeliveries || r.Duplicates != 0 {
		t.Errorf("delivered %d of %d expected (%d duplicates)", r.Delivered, r.ExpectedDeliveries, r.Duplicates)
	}
	if r.Latency.Count != r.Delivered || r.AckLatency.Count != int64(r.Accepted) {
		t.Errorf("latency samples %d (deliveries %d), ack samples %d (accepted %d)", r.Latency.Count, r.Delivered, r.AckLatency.Count, r.Accepted)
	}
	if r.Reconnects != 0 {
		t.Errorf("%d reconnects", r.Reconnects)
	}
	if r.Server.RSSAfterMiB <= 0 {
		t.Errorf("no server RSS read from /metrics: %+v", r.Server)
	}
}

// TestScenarios runs each scenario tiny against its own real server (the
// reconnect count is read from the server's metrics, so runs must not
// share one).
func TestScenarios(t *testing.T) {
	cfgFor := func(t *testing.T) bench.LoadConfig {
		return bench.LoadConfig{Server: startServer(t), Rate: 40, Duration: time.Second, Drain: 20 * time.Second}
	}

	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		r, err := bench.RunDirect(ctxFor(t), cfgFor(t), 2)
		if err != nil {
			t.Fatal(err)
		}
		if r.Pairs != 2 || r.Scheduled != 40 {
			t.Errorf("pairs %d, scheduled %d; want 2 and 40", r.Pairs, r.Scheduled)
		}
		checkLoad(t, r.LoadResult, 1)
	})

	t.Run("direct closed loop", func(t *testing.T) {
		t.Parallel()
		cfg := cfgFor(t)
		cfg.InFlight = 2
		r, err := bench.RunDirect(ctxFor(t), cfg, 2)
		if err != nil {
			t.Fatal(err)
		}
		if r.InFlight != 2 || r.Scheduled == 0 {
			t.Errorf("in flight %d, sends %d", r.InFlight, r.Scheduled)
		}
		checkLoad(t, r.LoadResult, 1)
		if r.ServerCPUPerMessage <= 0 {
			t.Errorf("no server CPU per message: %+v", r.Server)
		}
	})

	t.Run("direct max", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		d, err := bench.NewDirect(ctx, cfgFor(t), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		res, err := bench.SearchMax(ctx, bench.SearchConfig{Start: 20, MaxSteps: 2, P99: time.Hour}, func(ctx context.Context, rate float64) (bench.LoadResult, error) {
			r, err := d.Run(ctx, rate, 500*time.Millisecond)
			return r.LoadResult, err
		})
		if err != nil {
			t.Fatal(err)
		}
		// With an hour's bound every step passes: 20/s, then 40/s.
		if len(res.Steps) != 2 || res.MaxRate != 40 {
			t.Fatalf("steps %d, max %g; want 2 steps and 40", len(res.Steps), res.MaxRate)
		}
		for _, s := range res.Steps {
			checkLoad(t, s.Result, 1)
		}
	})

	t.Run("group", func(t *testing.T) {
		t.Parallel()
		r, err := bench.RunGroup(ctxFor(t), cfgFor(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		checkLoad(t, r.LoadResult, 2)
	})

	t.Run("connect", func(t *testing.T) {
		t.Parallel()
		r, err := bench.RunConnect(ctxFor(t), bench.ConnectConfig{
			Server: startServer(t), Connections: 24, Users: 3, Sources: 3, Parallel: 8, Hold: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Opened != 24 || r.Failed != 0 || r.Dropped != 0 || r.Users != 3 || r.ConnectLatency.Count != 24 {
			t.Errorf("opened %d, failed %d %v, dropped %d, users %d, latency samples %d", r.Opened, r.Failed, r.ErrorSamples, r.Dropped, r.Users, r.ConnectLatency.Count)
		}
		if b := r.Broadcast; b == nil || b.Reached != 24 || b.Missing != 0 || b.Delivery.Count != 24 {
			t.Errorf("broadcast = %+v, want the post on all 24 connections", b)
		}
		if r.ServerConnections < 24 {
			t.Errorf("the server counted %.0f connections after the ramp, want at least 24", r.ServerConnections)
		}
	})

	t.Run("channel", func(t *testing.T) {
		t.Parallel()
		r, err := bench.RunChannel(ctxFor(t), bench.ChannelConfig{
			Server: startServer(t), Subscribers: 20, Posts: 3, Sources: 2, JoinParallel: 4, Parallel: 8,
			Accounts: &bench.Accounts{Parallel: 8},
		})
		if err != nil {
			t.Fatal(err)
		}
		// Every subscriber got every post exactly once.
		if r.Connected != 20 || r.Sent != 3 || r.Expected != 60 || r.Delivered != 60 || r.Missing != 0 || r.Duplicates != 0 || r.Unexpected != 0 || r.Dropped != 0 {
			t.Errorf("connected %d, sent %d, delivered %d of %d, missing %d, duplicates %d, unexpected %d, dropped %d %v",
				r.Connected, r.Sent, r.Delivered, r.Expected, r.Missing, r.Duplicates, r.Unexpected, r.Dropped, r.ErrorSamples)
		}
		if r.ToLast.Count != 3 || r.ToFirst.Count != 3 || r.Delivery.Count != 60 {
			t.Errorf("samples: to last %d, to first %d, deliveries %d", r.ToLast.Count, r.ToFirst.Count, r.Delivery.Count)
		}
	})

	t.Run("sync", func(t *testing.T) {
		t.Parallel()
		r, err := bench.RunSync(ctxFor(t), bench.SyncConfig{Server: startServer(t), Missed: 1050, SenderUsers: 3, Senders: 8, InFlight: 64})
		if err != nil {
			t.Fatal(err)
		}
		// 1050 updates take two difference pages of at most 1000.
		if r.SenderUsers != 3 || r.Accepted != 1050 || r.Received != 1050 || !r.InOrder || r.Duplicates != 0 || r.Other != 0 || r.Failed != 0 {
			t.Errorf("accepted %d, received %d, in order %v, duplicates %d, other %d, failed %d %v",
				r.Accepted, r.Received, r.InOrder, r.Duplicates, r.Other, r.Failed, r.Errors)
		}
	})
}

func TestConnectRefusesWhatTheServerCannotHold(t *testing.T) {
	url := startServer(t)
	m, err := bench.SampleServer(ctxFor(t), url)
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxFDs == 0 {
		t.Skip("the server's process metrics have no process_max_fds on this OS")
	}
	_, err = bench.RunConnect(ctxFor(t), bench.ConnectConfig{Server: url, Connections: int(m.MaxFDs) + 1, Hold: time.Millisecond})
	if err == nil {
		t.Fatal("a run that cannot fit in the server's file limit was started")
	}
}

// TestSyncHonoursRateLimits sends more missed messages than the server's
// per-user send limit lets through at once: the refused sends are retried
// after the server's wait, so all of them arrive.
func TestSyncHonoursRateLimits(t *testing.T) {
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
		// 2 a second with a burst of 4: low enough that even a slow,
		// loaded machine sends faster and meets the limit.
		AbuseLimits: service.Limits{DirectPerSecond: 2, SignupsPerHourPerAddr: 1e6},
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	r, err := bench.RunSync(ctxFor(t), bench.SyncConfig{Server: n.URL(), Missed: 24, Senders: 2, InFlight: 8})
	if err != nil {
		t.Fatal(err)
	}
	if r.RateLimited == 0 || r.Accepted != 24 || r.Received != 24 || r.Failed != 0 {
		t.Errorf("rate limited %d, accepted %d, received %d, failed %d %v", r.RateLimited, r.Accepted, r.Received, r.Failed, r.Errors)
	}
}
