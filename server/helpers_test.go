package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// cheap keeps Argon2id fast in tests; production uses the default cost.
var cheap = service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}

const password = "correct horse battery"

// lax lifts the abuse limits for tests that send in bursts; the limits
// have their own test.
var lax = service.Limits{
	SignupsPerHourPerAddr: 1 << 30, DirectPerSecond: 1 << 30, GroupPerSecond: 1 << 30, ChannelPerSecond: 1 << 30,
	NewAccountChatsPerDay: 1 << 30, JoinsPerMinutePerChat: 1 << 30,
	CreatesPerHour: 1 << 30, MaxOwnedChats: 1 << 30, ReportsPerHour: 1 << 30, MemberChangesPerMinute: 1 << 30,
}

// startNode starts a real server on a free loopback port with its data
// in dir (a fresh temporary directory if empty).
func startNode(t *testing.T, dir string) *server.Node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var userSeq atomic.Int64

// user is a test account with one or more devices.
type user struct {
	name string
	id   int64
}

// device is a connected client of a user.
type device struct {
	*client.Client
	user  user
	token string
}

func newClient(t *testing.T, url, token string, follow bool, pts int64) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: url, Token: token, Follow: follow, Pts: pts, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// signup creates a fresh user and returns their first device, following
// updates from the moment of signup.
func signup(t *testing.T, n *server.Node, prefix string) *device {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	c := newClient(t, n.URL(), "", true, -1)
	res, err := c.Signup(ctxT(t), &pb.SignupRequest{Username: name, Password: password, DeviceName: "test"})
	if err != nil {
		t.Fatalf("signup %s: %v", name, err)
	}
	return &device{Client: c, user: user{name: name, id: res.User.Id}, token: res.Token}
}

// login adds another device for u.
func login(t *testing.T, n *server.Node, u user) *device {
	t.Helper()
	c := newClient(t, n.URL(), "", true, -1)
	res, err := c.Login(ctxT(t), &pb.LoginRequest{Username: u.name, Password: password, DeviceName: "second"})
	if err != nil {
		t.Fatalf("login %s: %v", u.name, err)
	}
	return &device{Client: c, user: u, token: res.Token}
}

func to(name string) *pb.Peer { return &pb.Peer{Username: name} }

func send(t *testing.T, d *device, p *pb.Peer, text string) *pb.Message {
	t.Helper()
	m, err := d.Send(ctxT(t), &pb.SendRequest{Peer: p, Text: text})
	if err != nil {
		t.Fatalf("%s sends: %v", d.user.name, err)
	}
	return m
}

// next waits for the device's next update that matches keep.
func next(t *testing.T, d *device, keep func(*pb.Update) bool) *pb.Update {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-d.Events():
			if !ok {
				t.Fatalf("%s: events closed", d.user.name)
			}
			if ev.Update != nil && keep(ev.Update) {
				return ev.Update
			}
		case <-timeout:
			t.Fatalf("%s: no matching update within 20s", d.user.name)
		}
	}
}

func isNew(u *pb.Update) bool { return u.GetNewMessage() != nil }

// nextMessage waits for the next new message on d.
func nextMessage(t *testing.T, d *device) *pb.Message {
	t.Helper()
	return next(t, d, isNew).GetNewMessage()
}

func errorsAs(err error, target **herald.Error) bool { return errors.As(err, target) }

// startNodeAt restarts a node on a given address and data directory,
// retrying briefly while the old listener's port is released.
func startNodeAt(t *testing.T, dir, addr string) *server.Node {
	t.Helper()
	var err error
	for range 50 {
		var n *server.Node
		n, err = server.Open(server.Config{
			Listen: addr, DataDir: dir, PasswordCost: cheap, AbuseLimits: lax,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err == nil {
			n.Serve()
			t.Cleanup(func() { n.Shutdown(context.Background()) })
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart on %s: %v", addr, err)
	return nil
}

// newClientWith reconnects a device from saved log positions.
func newClientWith(t *testing.T, url, token string, pts int64, chans map[int64]int64) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: url, Token: token, Follow: true, Pts: pts, ChannelPts: chans, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
