package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// benchDevice signs up (or logs in) a device with secret chats on a
// store of the given kind ("memory" or "dir").
func benchDevice(b *testing.B, n *server.Node, name string, signupFirst bool, kind string) *client.Secret {
	ctx := context.Background()
	c, err := client.New(client.Options{Server: n.URL(), Pts: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if signupFirst {
		_, err = c.Signup(ctx, &pb.SignupRequest{Username: name, Password: password, DeviceName: "bench"})
	} else {
		_, err = c.Login(ctx, &pb.LoginRequest{Username: name, Password: password, DeviceName: "bench"})
	}
	if err != nil {
		b.Fatal(err)
	}
	var st client.SecretStore = &client.MemoryStore{}
	if kind == "dir" {
		st = (client.Home{Dir: b.TempDir()}).SecretStore()
	}
	s := client.NewSecret(c, client.SecretOptions{Store: st})
	if err := s.Init(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

func benchNode(b *testing.B) *server.Node {
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: b.TempDir(), PasswordCost: cheap, AbuseLimits: lax,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	n.Serve()
	b.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// BenchmarkSecretLatency measures one secret message from alice's device
// to bobby's, one at a time: encrypt, send, store, push, decrypt, store on
// bobby's device. ns/op is the latency.
//
//	go test ./server -run xxx -bench SecretLatency -benchtime 200x
func BenchmarkSecretLatency(b *testing.B) {
	for _, kind := range []string{"memory", "dir"} {
		b.Run("store="+kind, func(b *testing.B) {
			n := benchNode(b)
			alice := benchDevice(b, n, "alicebench", true, kind)
			bobby := benchDevice(b, n, "bobbybench", true, kind)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bobby.Receive(ctx)
			if _, err := alice.Send(ctx, "bobbybench", "warm up", client.SecretSendOptions{}); err != nil {
				b.Fatal(err)
			}
			<-bobby.Events()
			for b.Loop() {
				if _, err := alice.Send(ctx, "bobbybench", "a secret of modest length", client.SecretSendOptions{}); err != nil {
					b.Fatal(err)
				}
				select {
				case ev := <-bobby.Events():
					if ev.Err != nil {
						b.Fatal(ev.Err)
					}
				case <-time.After(20 * time.Second):
					b.Fatal("no delivery")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSecretFanOut measures the sender's cost of one secret message
// to a user with 1 or 5 devices (one Signal encryption and one envelope
// per device, one request).
//
//	go test ./server -run xxx -bench SecretFanOut -benchtime 200x
func BenchmarkSecretFanOut(b *testing.B) {
	for _, devices := range []int{1, 5} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			n := benchNode(b)
			alice := benchDevice(b, n, "alicebench", true, "memory")
			benchDevice(b, n, "bobbybench", true, "memory")
			for range devices - 1 {
				benchDevice(b, n, "bobbybench", false, "memory")
			}
			ctx := context.Background()
			if _, err := alice.Send(ctx, "bobbybench", "warm up", client.SecretSendOptions{}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := alice.Send(ctx, "bobbybench", "a secret of modest length", client.SecretSendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
