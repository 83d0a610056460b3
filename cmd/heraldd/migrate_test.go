package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/heraldim/herald/internal/pgtest"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// TestNoMigrate: with -no-migrate a node refuses a PostgreSQL schema that
// is not current and says what to run; after heraldd migrate it starts.
// This is how an operator rolls out a schema change once, before the
// nodes, instead of letting the first node to start do it.
func TestNoMigrate(t *testing.T) {
	dsn := pgtest.Schema(t)
	var out, errs bytes.Buffer
	err := run([]string{"-no-migrate", "-db", dsn, "-data", t.TempDir(), "-listen", "127.0.0.1:0"}, noEnv, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "run heraldd migrate") {
		t.Fatalf("start with -no-migrate on an empty schema: %v", err)
	}
	out.Reset()
	if err := run([]string{"migrate", "-db", dsn}, noEnv, &out, &errs); err != nil || !strings.Contains(out.String(), "schema is current") {
		t.Fatalf("heraldd migrate = %q, %v (stderr %s)", out.String(), err, errs.String())
	}
	p := startProc(t, t.TempDir(), "127.0.0.1:0", "-db", dsn, "-no-migrate")
	c := connect(t, p.url(), "")
	if _, err := c.Signup(t.Context(), &pb.SignupRequest{Username: "alice", Password: "long enough password"}); err != nil {
		t.Fatalf("signup on the migrated schema: %v", err)
	}
}
