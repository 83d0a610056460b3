package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/push/pushtest"
	"github.com/heraldim/herald/server"
)

// cpuTime is the process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPushSend is what a push costs the server: direct messages to a
// recipient with a push subscription and to one without, reporting the
// process's CPU per message (server, client and a receiver that only
// answers 201). The push is encrypted and signed per message.
//
//	go test -run '^$' -bench BenchmarkPushSend -benchtime 2000x ./server
func BenchmarkPushSend(b *testing.B) {
	for _, subscribed := range []bool{false, true} {
		name := "unsubscribed"
		if subscribed {
			name = "subscribed"
		}
		b.Run(name, func(b *testing.B) {
			var got atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Add(1)
				w.WriteHeader(http.StatusCreated)
			}))
			defer recv.Close()
			n, err := server.Open(server.Config{
				Listen: "127.0.0.1:0", DataDir: b.TempDir(), PasswordCost: cheap, AbuseLimits: lax, PushAllowPrivate: true,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			n.Serve()
			defer n.Shutdown(context.Background())
			user := func(name string) *client.Client {
				c, err := client.New(client.Options{Server: n.URL()})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
				if err := c.Connect(b.Context()); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Signup(b.Context(), &pb.SignupRequest{Username: name, Password: password, DeviceName: "bench"}); err != nil {
					b.Fatal(err)
				}
				return c
			}
			alice, bobby := user("alice"+name), user("bobby"+name)
			if subscribed {
				keys := pushtest.New()
				defer keys.Close()
				s := keys.Subscribe("bench")
				if err := bobby.PushSubscribe(b.Context(), recv.URL+"/push/bench", s.P256dh, s.Auth); err != nil {
					b.Fatal(err)
				}
			}
			peer := to("bobby" + name)
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				if _, err := alice.Send(b.Context(), &pb.SendRequest{Peer: peer, Text: "a message of ordinary length, about sixty characters"}); err != nil {
					b.Fatal(err)
				}
			}
			if subscribed {
				deadline := time.Now().Add(time.Minute)
				for got.Load() < int64(b.N) && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if got.Load() < int64(b.N) {
					b.Fatalf("%d of %d pushes arrived", got.Load(), b.N)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}
