//go:build unix

package server_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSecretGroupSend measures one message to every member of a
// secret group of 100 (one device each), sent once with the sender's key
// (mode=group) or, for comparison, as one secret chat message to each
// member (mode=pairwise). The members do not receive, so cpu-ms/op is the
// sender's and the server's CPU (one process) per message to all of them.
//
//	go test ./server -run xxx -bench SecretGroupSend -benchtime 20x
func BenchmarkSecretGroupSend(b *testing.B) {
	const members = 100
	n := benchNode(b)
	ctx := context.Background()
	alice := benchDevice(b, n, "alicegroup", true, "memory")
	var names []string
	for i := range members - 1 {
		name := fmt.Sprintf("member%03d", i)
		benchDevice(b, n, name, true, "memory")
		names = append(names, name)
	}
	t0 := time.Now()
	chat, err := alice.CreateGroup(ctx, "bench", names)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice.Send(ctx, chat, "warm up: distributes the sender key", client.SecretSendOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Logf("create and first message (key distribution to %d members): %s", members-1, time.Since(t0))
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
