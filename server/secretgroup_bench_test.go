//go:build unix

package server_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSecretGroupSend measures one message to every member of a
// secret group of 100 or 1,000 (one device each), sent once with the sender's key
// (mode=group) or, for comparison, as one secret chat message to each
// member (mode=pairwise). The members do not receive, so cpu-ms/op is the
// sender's and the server's CPU (one process) per message to all of them.
//
//	go test ./server -run xxx -bench SecretGroupSend -benchtime 20x -v
func BenchmarkSecretGroupSend(b *testing.B) {
	for _, members := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) { benchGroupSend(b, members) })
	}
}

func benchGroupSend(b *testing.B, members int) {
	n := benchNode(b)
	ctx := context.Background()
	alice := benchDevice(b, n, "alicegroup", true, "memory")
	var names []string
	for i := range members - 1 {
		name := fmt.Sprintf("member%04d", i)
		memberDevice(b, n, name)
		names = append(names, name)
	}
	t0, cpu0 := time.Now(), cpuNow()
	chat, err := alice.CreateGroup(ctx, "bench", names)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice.Send(ctx, chat, "warm up: distributes the sender key", client.SecretSendOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d members: create and first message (sessions and key distribution): %s, %s CPU", members, time.Since(t0).Round(time.Millisecond), (cpuNow() - cpu0).Round(time.Millisecond))
	for _, mode := range []string{"group", "pairwise"} {
		b.Run("mode="+mode, func(b *testing.B) {
			cpu0 := cpuNow()
			for b.Loop() {
				if mode == "group" {
					if _, err := alice.Send(ctx, chat, "a secret of modest length", client.SecretSendOptions{}); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, name := range names {
					if _, err := alice.Send(ctx, name, "a secret of modest length", client.SecretSendOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((cpuNow()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// memberDevice signs up a device with secret-chat keys and disconnects
// it: a thousand open connections from one address would meet the
// server's per-address cap.
func memberDevice(b *testing.B, n *server.Node, name string) {
	ctx := context.Background()
	c, err := client.New(client.Options{Server: n.URL(), Pts: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Signup(ctx, &pb.SignupRequest{Username: name, Password: password, DeviceName: "bench"}); err != nil {
		b.Fatal(err)
	}
	if err := client.NewSecret(c, client.SecretOptions{Store: &client.MemoryStore{}, PreKeys: 5}).Init(ctx); err != nil {
		b.Fatal(err)
	}
}
