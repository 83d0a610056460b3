// Package pgtest gives tests a PostgreSQL to run against: the server
// .ci/postgres.sh starts (HERALD_TEST_POSTGRES), and an empty schema of
// their own on it, so tests running at once never see each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSN returns the database tests may use, from HERALD_TEST_POSTGRES.
// Without it the test skips, except under CI, where a skipped PostgreSQL
// test is a failure.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("HERALD_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("HERALD_TEST_POSTGRES is not set, and CI is: the PostgreSQL tests must run in CI (eval \"$(bash .ci/postgres.sh)\")")
		}
		tb.Skip("HERALD_TEST_POSTGRES is not set; run eval \"$(bash .ci/postgres.sh)\" to run the PostgreSQL tests")
	}
	return dsn
}

// Schema creates an empty schema, dropped when tb ends, and returns a DSN
// whose connections use it.
func Schema(tb testing.TB) string {
	tb.Helper()
	dsn := DSN(tb)
	var r [6]byte
	rand.Read(r[:])
	schema := "t_" + hex.EncodeToString(r[:])
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to %s: %v", dsn, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("CREATE SCHEMA: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("DROP SCHEMA %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		tb.Fatalf("HERALD_TEST_POSTGRES must be a postgres:// URL, got %q", dsn)
	}
	q := u.Query()
	// pgx sends unknown URL parameters as run-time settings.
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
