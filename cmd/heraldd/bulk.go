package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

// benchCost is the Argon2id cost of bench users' passwords: a token is
// all the load generator uses, and the passwords are random and never
// shown, so a full-cost hash would only make setup slow.
var benchCost = service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}

// benchUsers is `heraldd bench-users`: it creates -count users named
// PREFIX1 … PREFIXN directly through the service, on the same data
// directory and master key as the server (which may be running: SQLite in
// WAL mode with a busy timeout lets both write), and writes one
// "username token" line per user to -out for `herald-bench --users`.
func benchUsers(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("heraldd bench-users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", env(getenv, "HERALD_DATA", "./herald-data"), "data directory (HERALD_DATA)")
	db := fs.String("db", env(getenv, "HERALD_DB", ""), "database: empty for SQLite in the data directory, or a file path (HERALD_DB)")
	keyFile := fs.String("master-key-file", env(getenv, "HERALD_MASTER_KEY_FILE", ""), "32-byte master key file; default DATA/master.key (HERALD_MASTER_KEY_FILE)")
	prefix := fs.String("prefix", "", "username prefix: users are PREFIX1 … PREFIXN (required)")
	count := fs.Int("count", 0, "how many users to create (required, at most 1,000,000)")
	out := fs.String("out", "", "file to write \"username token\" lines to, mode 0600 (required)")
	parallel := fs.Int("parallel", 64, "users being created at once (the store commits them in groups)")
	fs.Usage = func() {
		fs.SetOutput(stdout)
		fmt.Fprintln(stdout, "usage: heraldd bench-users -prefix P -count N -out FILE [-data DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case *prefix == "" || *out == "":
		return errors.New("bench-users needs -prefix, -count and -out")
	case *count < 1 || *count > 1_000_000:
		return errors.New("-count must be between 1 and 1,000,000")
	case *parallel < 1:
		return errors.New("-parallel must be at least 1")
	}
	for _, name := range []string{fmt.Sprintf("%s%d", *prefix, 1), fmt.Sprintf("%s%d", *prefix, *count)} {
		if err := herald.ValidateUsername(herald.NormalizeUsername(name)); err != nil {
			return fmt.Errorf("-prefix %q makes the username %q: %v", *prefix, name, err)
		}
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("-out: %w (it must not exist yet)", err)
	}
	defer f.Close()

	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", Console: true, DataDir: *data, DB: *db, MasterKeyFile: *keyFile,
		Signup: service.SignupOpen, PasswordCost: benchCost,
		Log: slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer n.Shutdown(context.Background())

	ctx := context.Background()
	w := bufio.NewWriter(f)
	var (
		mu      sync.Mutex
		first   error
		next    atomic.Int64
		done    int
		wg      sync.WaitGroup
		start   = time.Now()
		lastLog = start
	)
	for range min(*parallel, *count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				mu.Lock()
				stop := first != nil
				mu.Unlock()
				if i > int64(*count) || stop {
					return
				}
				name := fmt.Sprintf("%s%d", *prefix, i)
				pw := make([]byte, 24)
				rand.Read(pw)
				s, err := n.Service.Signup(ctx, name, base64.RawURLEncoding.EncodeToString(pw), "", "herald-bench", "")
				mu.Lock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("creating %s: %w", name, err)
					}
				} else {
					fmt.Fprintf(w, "%s %s\n", s.User.Username, s.Token)
					done++
					if time.Since(lastLog) > 5*time.Second {
						lastLog = time.Now()
						fmt.Fprintf(stderr, "%d of %d users created\n", done, *count)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "created %d users in %.1f s (%.0f/s); tokens in %s\n", done, el.Seconds(), float64(done)/el.Seconds(), *out)
	if first != nil {
		return fmt.Errorf("%w (the %d users created before it are in %s)", first, done, *out)
	}
	return nil
}
