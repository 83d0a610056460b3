package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// The login policy (service/limits.go): failures per username and per
// address, as burst and refill interval.
const (
	nameBurst, nameEvery = 5, 12 * time.Second
	addrBurst, addrEvery = 20, 3 * time.Second
)

// startLoginNode starts a node whose Argon2id is dear enough that
// evaluations overlap, with two slots for it.
func startLoginNode(t *testing.T) *server.Node {
	t.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), AbuseLimits: lax, PasswordSlots: 2,
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 4 * 1024, Threads: 1},
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(t.Context()) })
	return n
}

// loginsAtOnce sends one login per username from its own connection (to
// the nodes in turn), all released together, and returns their errors.
func loginsAtOnce(t *testing.T, nodes []*server.Node, names []string, pass string) []error {
	t.Helper()
	clients := make([]*client.Client, len(names))
	for i := range clients {
		clients[i] = newClient(t, nodes[i%len(nodes)].URL(), "", false, -1)
	}
	errs := make([]error, len(names))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = c.Login(ctxT(t), &pb.LoginRequest{Username: names[i], Password: pass})
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// refills is how many tokens a bucket may have regained in elapsed.
func refills(elapsed, every time.Duration) int64 { return int64(elapsed/every) + 1 }

// TestParallelLoginsSpendFirst is issue 22's attack: 60 wrong passwords
// for one user, sent at once from one address. The policy allows five
// failures per username, so at most five (and what refills meanwhile)
// may cost an Argon2id evaluation; the rest are refused before hashing,
// and no more evaluations run at once than the node's slots.
func TestParallelLoginsSpendFirst(t *testing.T) {
	n := startLoginNode(t)
	alice := signup(t, n, "alice")
	before := n.Service.PasswordStats()
	names := make([]string, 60)
	for i := range names {
		names[i] = alice.user.name
	}
	began := time.Now()
	errs := loginsAtOnce(t, []*server.Node{n}, names, "not the password")
	elapsed := time.Since(began)
	evaluated := n.Service.PasswordStats().Evaluations - before.Evaluations

	limited := 0
	for i, err := range errs {
		var he *herald.Error
		switch {
		case herald.IsKind(err, herald.Unauthenticated):
		case errorsAs(err, &he) && he.Kind == herald.RateLimited && he.RetryAfter > 0:
			limited++
		default:
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if allowed := nameBurst - 1 + refills(elapsed, nameEvery); evaluated > allowed {
		t.Errorf("%d wrong passwords sent at once cost %d Argon2id evaluations; the policy allows %d", len(names), evaluated, allowed)
	}
	if limited < len(names)-nameBurst-1 {
		t.Errorf("only %d of %d logins were refused with RATE_LIMITED", limited, len(names))
	}
	if peak := n.Service.PasswordStats().Peak; peak > 2 {
		t.Errorf("%d Argon2id evaluations ran at once; the node has 2 slots", peak)
	}
	// Still throttled: even the right password waits.
	if _, err := login1(t, n, alice.user.name, password); !herald.IsKind(err, herald.RateLimited) {
		t.Fatalf("right password after the flood: %v", err)
	}
}

// TestParallelLoginsManyNames: the same flood spread over 60 usernames
// that do not exist meets the per-address budget, and never more
// evaluations at once than the slots.
func TestParallelLoginsManyNames(t *testing.T) {
	n := startLoginNode(t)
	before := n.Service.PasswordStats()
	names := make([]string, 60)
	for i := range names {
		names[i] = fmt.Sprintf("nobody%d", i)
	}
	began := time.Now()
	errs := loginsAtOnce(t, []*server.Node{n}, names, "not the password")
	elapsed := time.Since(began)
	for i, err := range errs {
		if !herald.IsKind(err, herald.Unauthenticated) && !herald.IsKind(err, herald.RateLimited) {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	st := n.Service.PasswordStats()
	if evaluated, allowed := st.Evaluations-before.Evaluations, addrBurst-1+refills(elapsed, addrEvery); evaluated > allowed {
		t.Errorf("60 logins from one address cost %d Argon2id evaluations; the policy allows %d", evaluated, allowed)
	}
	if st.Peak > 2 {
		t.Errorf("%d Argon2id evaluations ran at once; the node has 2 slots", st.Peak)
	}
}

func login1(t *testing.T, n *server.Node, name, pass string) (*pb.AuthResult, error) {
	t.Helper()
	return newClient(t, n.URL(), "", false, -1).Login(ctxT(t), &pb.LoginRequest{Username: name, Password: pass})
}

// TestLoginCostsOneEvaluation (issue 22 item 10): an unknown username
// costs exactly the one Argon2id evaluation a known one does, so the
// time a login takes does not say whether the name exists. And a
// successful login gives its tokens back: a person who logs in on many
// devices is never throttled.
func TestLoginCostsOneEvaluation(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	tests := []struct {
		name, user, pass string
		kind             herald.Kind // "" for success
	}{
		{"unknown user", "nobody42", "not the password", herald.Unauthenticated},
		{"wrong password", alice.user.name, "not the password", herald.Unauthenticated},
		{"right password", alice.user.name, password, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := n.Service.PasswordStats().Evaluations
			_, err := login1(t, n, tt.user, tt.pass)
			if tt.kind == "" && err != nil || tt.kind != "" && !herald.IsKind(err, tt.kind) {
				t.Fatalf("got %v, want %q", err, tt.kind)
			}
			if got := n.Service.PasswordStats().Evaluations - before; got != 1 {
				t.Fatalf("%d Argon2id evaluations, want 1", got)
			}
		})
	}
	for i := range 2 * addrBurst {
		if _, err := login1(t, n, alice.user.name, password); err != nil {
			t.Fatalf("successful login %d from one address: %v", i+1, err)
		}
	}
}

// TestParallelLoginsAcrossNodes: the same flood spread over two nodes
// on one PostgreSQL meets one budget, spent in the shared buckets.
func TestParallelLoginsAcrossNodes(t *testing.T) {
	node := sharedNodes(t, pgtest.Schema(t), nil)
	a, b := node(), node()
	alice := signup(t, a, "alice")
	before := a.Service.PasswordStats().Evaluations + b.Service.PasswordStats().Evaluations
	names := make([]string, 40)
	for i := range names {
		names[i] = alice.user.name
	}
	began := time.Now()
	errs := loginsAtOnce(t, []*server.Node{a, b}, names, "not the password")
	elapsed := time.Since(began)
	for i, err := range errs {
		if !herald.IsKind(err, herald.Unauthenticated) && !herald.IsKind(err, herald.RateLimited) {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	evaluated := a.Service.PasswordStats().Evaluations + b.Service.PasswordStats().Evaluations - before
	if allowed := nameBurst - 1 + refills(elapsed, nameEvery); evaluated > allowed {
		t.Errorf("%d wrong passwords at once over two nodes cost %d Argon2id evaluations; the policy allows %d", len(names), evaluated, allowed)
	}
}
