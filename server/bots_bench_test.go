package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

type benchPerson struct {
	*client.Client
	bot string
}

// benchBot starts a server with a person and their bot, who have a direct
// chat; it returns the bot's token and the person's chat id for the bot.
func benchBot(b *testing.B) (*server.Node, string, int64, benchPerson) {
	b.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: b.TempDir(), PasswordCost: cheap, AbuseLimits: lax, BotLimits: laxBots,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	n.Serve()
	b.Cleanup(func() { n.Shutdown(context.Background()) })
	ctx := context.Background()
	c, err := client.New(client.Options{Server: n.URL(), Follow: false})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	res, err := c.Signup(ctx, &pb.SignupRequest{Username: "alice", Password: password})
	if err != nil {
		b.Fatal(err)
	}
	bot, err := c.CreateBot(ctx, "bench_bot", "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Send(ctx, &pb.SendRequest{Peer: &pb.Peer{Username: "bench_bot"}, Text: "/start"}); err != nil {
		b.Fatal(err)
	}
	// Drop the /start, so the latency benchmark sees only its own.
	for _, q := range []string{"", "?offset=-1"} {
		resp, err := http.Get(n.URL() + "/bot" + bot.Token + "/getUpdates" + q)
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Result []struct {
				UpdateID int64 `json:"update_id"`
			} `json:"result"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if len(r.Result) > 0 {
			resp, err := http.Get(fmt.Sprintf("%s/bot%s/getUpdates?offset=%d", n.URL(), bot.Token, r.Result[len(r.Result)-1].UpdateID+1))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			break
		}
	}
	return n, bot.Token, res.User.Id, benchPerson{Client: c, bot: "bench_bot"}
}

// Bot API measurements, recorded in docs/BENCHMARKS.md ("Bots"). They
// measure; they assert nothing about speed.
//
//	go test ./server -run '^$' -bench 'BenchmarkBot' -benchtime 2000x

// BenchmarkBotSendMessage is sendMessage throughput for one bot into one
// direct chat, from 8 concurrent HTTP clients (a bot's usual worker pool),
// each call committed before it is answered.
func BenchmarkBotSendMessage(b *testing.B) {
	n, token, chat, _ := benchBot(b)
	url := n.URL() + "/bot" + token + "/sendMessage"
	b.SetParallelism(4) // × GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{}
		for pb.Next() {
			body, _ := json.Marshal(map[string]any{"chat_id": chat, "text": "benchmark"})
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode != 200 {
				b.Errorf("sendMessage: %s", resp.Status)
			}
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkBotLongPollLatency is the time from a person's send returning
// to the bot's waiting getUpdates returning that message.
func BenchmarkBotLongPollLatency(b *testing.B) {
	n, token, _, alice := benchBot(b)
	peer := &pb.Peer{Username: alice.bot}
	got := make(chan time.Time, 1)
	stop := make(chan struct{})
	go func() {
		offset := int64(0)
		client := &http.Client{}
		for {
			select {
			case <-stop:
				return
			default:
			}
			body, _ := json.Marshal(map[string]any{"offset": offset, "timeout": 10})
			resp, err := client.Post(n.URL()+"/bot"+token+"/getUpdates", "application/json", bytes.NewReader(body))
			if err != nil {
				return
			}
			var r struct {
				Result []struct {
					UpdateID int64 `json:"update_id"`
				} `json:"result"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			at := time.Now()
			for _, u := range r.Result {
				offset = u.UpdateID + 1
				got <- at
			}
		}
	}()
	defer close(stop)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		sent := time.Now()
		if _, err := alice.Send(context.Background(), &pb.SendRequest{Peer: peer, Text: fmt.Sprint("m", i)}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(sent))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
