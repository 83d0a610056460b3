package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// BenchmarkSweep100k measures the sweeper on 100,000 messages that expire
// in the same second: how long until all are deleted and their bucket
// destroyed, and the send latency of unrelated traffic meanwhile.
//
//	go test ./server -run xxx -bench Sweep100k -benchtime 1x
func BenchmarkSweep100k(b *testing.B) {
	const total = 100_000
	for b.Loop() {
		n, err := server.Open(server.Config{
			Listen: "127.0.0.1:0", DataDir: b.TempDir(), PasswordCost: cheap, AbuseLimits: lax, BucketWidth: time.Second,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		svc := n.Service
		ctx := context.Background()
		alice, _ := svc.Signup(ctx, "alicebench", password, "", "bench", "")
		bobby, _ := svc.Signup(ctx, "bobbybench", password, "", "bench", "")
		carol, _ := svc.Signup(ctx, "carolbench", password, "", "bench", "")
		ca := service.Caller{UserID: alice.User.ID, DeviceID: alice.Device.ID, Username: "alicebench"}
		cc := service.Caller{UserID: carol.User.ID, DeviceID: carol.Device.ID, Username: "carolbench"}
		g, err := svc.CreateGroup(ctx, ca, "doomed", []string{"bobbybench"})
		if err != nil {
			b.Fatal(err)
		}
		_ = bobby
		// All of them expire within the same second: sent within a few
		// seconds, with timers that end together.
		end := time.Now().Add(60 * time.Second).Truncate(time.Second).Add(time.Second)
		var wg sync.WaitGroup
		for w := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < total; i += 64 {
					ttl := time.Until(end)
					if _, err := svc.Send(ctx, ca, service.SendParams{Peer: service.Peer{ChatID: g.ID}, Text: fmt.Sprintf("doomed %d", i), TTL: ttl}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		time.Sleep(time.Until(end.Add(10 * time.Millisecond)))

		// Unrelated traffic at 200 sends/s while the sweep runs.
		stop := make(chan struct{})
		var lat []time.Duration
		var lmu sync.Mutex
		var tw sync.WaitGroup
		tw.Add(1)
		go func() {
			defer tw.Done()
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					start := time.Now()
					if _, err := svc.Send(ctx, cc, service.SendParams{Peer: service.Peer{Username: "bobbybench"}, Text: "unrelated"}); err != nil {
						b.Error(err)
						return
					}
					lmu.Lock()
					lat = append(lat, time.Since(start))
					lmu.Unlock()
				}
			}
		}()
		time.Sleep(200 * time.Millisecond) // a baseline before the sweep
		start := time.Now()
		st, err := svc.Sweep(ctx)
		took := time.Since(start)
		time.Sleep(200 * time.Millisecond)
		close(stop)
		tw.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if st.Expired != total {
			b.Fatalf("swept %d messages, want %d", st.Expired, total)
		}
		slices.Sort(lat)
		p99 := lat[len(lat)*99/100]
		b.ReportMetric(took.Seconds(), "sweep-s")
		b.ReportMetric(float64(total)/took.Seconds(), "expired/s")
		b.ReportMetric(float64(p99.Microseconds())/1000, "unrelated-p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "unrelated-max-ms")
		n.Shutdown(ctx)
	}
}
