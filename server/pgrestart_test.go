package server_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// TestPostgresRestart stops PostgreSQL under a running node while a
// client sends, checks that requests meanwhile fail with UNAVAILABLE,
// starts PostgreSQL again, and checks that the same node serves again
// without a restart and that every acknowledged message reached its
// recipient once, in order.
//
// Stopping the server breaks every other test's connections to it, so
// this test runs only when HERALD_TEST_PG_RESTART=1: .ci/run sets it in a
// go test invocation of its own, after all the others, against a
// PostgreSQL of its own, and HERALD_TEST_PG_CTL (printed by
// .ci/postgres.sh) says how to stop and start the server. Run it by hand
// the same way, with a HERALD_PG_DIR nobody else uses:
//
//	eval "$(HERALD_PG_DIR=/tmp/my-pg bash .ci/postgres.sh)"
//	HERALD_TEST_PG_RESTART=1 go test ./server -run '^TestPostgresRestart$'

func TestPostgresRestart(t *testing.T) {
	if os.Getenv("HERALD_TEST_PG_RESTART") != "1" {
		t.Skip("restarts PostgreSQL: runs only with HERALD_TEST_PG_RESTART=1, alone (see .ci/run)")
	}
	pgctl := strings.Fields(os.Getenv("HERALD_TEST_PG_CTL"))
	if len(pgctl) == 0 {
		t.Fatal(`HERALD_TEST_PG_CTL is not set; run eval "$(bash .ci/postgres.sh)"`)
	}
	dsn := pgtest.Schema(t)
	n := pgNode(t, dsn, "", t.TempDir()+"/master.key")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	cv := converse(t, alice, bobby)
	cv.progress("delivery before the restart", 20)

	pgCtl(t, pgctl, "stop", "-m", "fast", "-w")
	// Whatever happens next, leave the server running for whoever follows.
	t.Cleanup(func() { pgCtlQuiet(pgctl, "start", "-w", "-t", "60") })

	// Reads and writes through the node that is still up answer
	// UNAVAILABLE with a sentence, whichever pooled connection they get.
	for range 3 {
		_, err := bobby.Chats(ctxT(t))
		wantUnavailable(t, "chats.list", err)
		_, err = bobby.History(ctxT(t), &pb.HistoryRequest{Peer: alice.user.peer()})
		wantUnavailable(t, "messages.history", err)
		_, err = bobby.Send(ctxT(t), &pb.SendRequest{Peer: alice.user.peer(), Text: "while the database is down"})
		wantUnavailable(t, "messages.send", err)
		t.Logf("messages.send while PostgreSQL is down: %v", err)
	}
	cv.waitFor("the sender sees the outage", func(int, int) bool {
		cv.mu.Lock()
		defer cv.mu.Unlock()
		return cv.failures[herald.Unavailable] > 0
	})

	pgCtl(t, pgctl, "start", "-w", "-t", "60")
	cv.progress("delivery after the restart, on the same node", 50)
	cv.check(herald.Unavailable)
	if _, err := bobby.Chats(ctxT(t)); err != nil {
		t.Fatalf("chats.list after the restart: %v", err)
	}
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded while PostgreSQL was down", what)
	}
	if k := herald.ErrorKind(err); k != herald.Unavailable || herald.ErrorMessage(err) == "" {
		t.Fatalf("%s while PostgreSQL was down: %v (kind %s), want UNAVAILABLE with a sentence", what, err, k)
	}
}

// pgCtl runs pg_ctl (HERALD_TEST_PG_CTL, then args) as the postgres user.
func pgCtl(t *testing.T, pgctl []string, args ...string) {
	t.Helper()
	if out, err := pgCtlCmd(pgctl, args...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %s: %v\n%s", args[0], err, out)
	}
}

func pgCtlQuiet(pgctl []string, args ...string) { pgCtlCmd(pgctl, args...).Run() }

func pgCtlCmd(pgctl []string, args ...string) *exec.Cmd {
	argv := append(append([]string{}, pgctl...), args...)
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	// pg_ctl -w bounds its own wait (-t, 60 s by default).
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/" // the postgres user may not enter the test's directory
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
