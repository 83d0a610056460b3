package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/server"
)

func noEnv(string) string { return "" }

func TestBenchUsersErrors(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.WriteFile(exists, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "needs -prefix, -count and -out"},
		{"no count", []string{"-prefix", "bench", "-out", filepath.Join(dir, "a")}, "-count must be between"},
		{"prefix too short", []string{"-prefix", "ab", "-count", "3", "-out", filepath.Join(dir, "b")}, `makes the username "ab1"`},
		{"prefix too long", []string{"-prefix", strings.Repeat("a", 31), "-count", "10", "-out", filepath.Join(dir, "c")}, "makes the username"},
		{"reserved prefix", []string{"-prefix", "admin", "-count", "1", "-out", filepath.Join(dir, "d")}, "makes the username"},
		{"output exists", []string{"-prefix", "bench", "-count", "1", "-out", exists, "-data", dir}, "must not exist yet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(append([]string{"bench-users"}, c.args...), noEnv, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// TestBenchUsersWhileServing creates users on the data directory of a
// running server (SQLite in WAL mode lets both write) and checks that
// every token authenticates on that server at once.
func TestBenchUsersWhileServing(t *testing.T) {
	dir := t.TempDir()
	n, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })

	out := filepath.Join(t.TempDir(), "users.txt")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"bench-users", "-data", dir, "-prefix", "loadu", "-count", "40", "-out", out, "-parallel", "8"}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("bench-users: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "created 40 users") {
		t.Errorf("stdout %q", stdout.String())
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the tokens file has mode %v, want 0600", fi.Mode().Perm())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			t.Fatalf("line %q is not \"username token\"", sc.Text())
		}
		seen[fields[0]] = fields[1]
	}
	if len(seen) != 40 || seen["loadu1"] == "" || seen["loadu40"] == "" {
		t.Fatalf("%d distinct users in the file, want loadu1 … loadu40", len(seen))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"loadu1", "loadu17", "loadu40"} {
		c, err := client.New(client.Options{Server: n.URL(), Token: seen[name]})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("%s's token does not authenticate on the running server: %v", name, err)
		}
		me, err := c.Me(ctx)
		c.Close()
		if err != nil || me.Username != name {
			t.Errorf("the token of %s is %v's: %v", name, me, err)
		}
	}

	// A second run with the same prefix stops at the first name taken.
	err = run([]string{"bench-users", "-data", dir, "-prefix", "loadu", "-count", "2", "-out", filepath.Join(t.TempDir(), "again")}, noEnv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "ALREADY_EXISTS") {
		t.Errorf("reusing a prefix: %v", err)
	}
}
