package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// Account is a user the load generator acts as: a username and the bearer
// token of one of its devices.
type Account struct {
	Username string
	Token    string
}

// ReadAccounts reads a users file: one "username token" per line, as
// written by `heraldd bench-users`. Blank lines and lines starting with #
// are skipped.
func ReadAccounts(r io.Reader) ([]Account, error) {
	var out []Account
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"username token\", got %d fields", n, len(f))
		}
		out = append(out, Account{Username: f[0], Token: f[1]})
	}
	return out, sc.Err()
}

// ReadAccountsFile reads a users file from disk.
func ReadAccountsFile(path string) ([]Account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := ReadAccounts(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Accounts supplies the users of a run: from a users file if one was
// given, else by signing new users up over the protocol.
type Accounts struct {
	// File holds pre-made accounts (from --users); used first, in order.
	File []Account
	// Signup parallelism when accounts must be created over the
	// protocol (each signup costs the server one Argon2id hash).
	Parallel int
	// Progress, if set, receives a line now and then during long setups.
	Progress io.Writer

	next int
}

// Take returns n accounts, signing up whatever the file cannot supply.
func (a *Accounts) Take(ctx context.Context, server string, n int) ([]Account, error) {
	out := make([]Account, 0, n)
	for a.next < len(a.File) && len(out) < n {
		out = append(out, a.File[a.next])
		a.next++
	}
	if len(out) == n {
		return out, nil
	}
	more, err := SignupAccounts(ctx, Pick(server, 0), n-len(out), max(1, a.Parallel), a.Progress)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// runPrefix returns a fresh username prefix such as "hbq4zt2m_", so users of
// different runs never collide.
func runPrefix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "hb" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)) + "_"
}

// SignupAccounts creates n users over the protocol, parallel at a time,
// with random passwords that are thrown away (only the tokens are kept).
func SignupAccounts(ctx context.Context, server string, n, parallel int, progress io.Writer) ([]Account, error) {
	prefix := runPrefix()
	out := make([]Account, n)
	var (
		mu    sync.Mutex
		first error
		done  int
		wg    sync.WaitGroup
	)
	work := make(chan int)
	last := time.Now()
	for range min(parallel, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				acc, err := signupOne(ctx, server, fmt.Sprintf("%s%d", prefix, i+1))
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				out[i] = acc
				done++
				if progress != nil && time.Since(last) > 5*time.Second {
					last = time.Now()
					fmt.Fprintf(progress, "signed up %d of %d users\n", done, n)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		return nil, fmt.Errorf("signing up bench users: %w", first)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func signupOne(ctx context.Context, server, name string) (Account, error) {
	c, err := client.New(client.Options{Server: server})
	if err != nil {
		return Account{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		return Account{}, err
	}
	pw := make([]byte, 18)
	rand.Read(pw)
	res, err := c.Signup(ctx, &pb.SignupRequest{Username: name, Password: base32.StdEncoding.EncodeToString(pw), DeviceName: "herald-bench"})
	if err != nil {
		return Account{}, fmt.Errorf("signup %s: %w", name, err)
	}
	return Account{Username: res.User.Username, Token: res.Token}, nil
}
