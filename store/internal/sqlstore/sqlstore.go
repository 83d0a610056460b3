// Package sqlstore is the part of Herald's two SQL stores, store/sqlite
// and store/postgres, that is the same on both engines: the query texts,
// the row scanners, and the methods whose statements and Go do not depend
// on the engine. It is the dialect shim the store layout promises, kept
// small by writing one SQL for both:
//
//   - Placeholders are "?"; store/postgres numbers them ($1, $2 …) once
//     per query text.
//   - Times are Unix milliseconds in BIGINT (Millis, FromMillis) and
//     flags 0/1 INTEGERs (Flag), so no query depends on an engine's time
//     or boolean types. Where an expression is boolean in PostgreSQL and
//     0/1 in SQLite (EXISTS, IS NULL), it is scanned into a bool: both
//     drivers convert.
//   - A parameter PostgreSQL cannot type from its context is written
//     CAST(? AS TEXT) or CAST(? AS BIGINT), which both accept.
//
// Each store adapts its own connections to Querier, and gives its name and
// its driver's errors to a Dialect. Reads is the read side built on those,
// which each store embeds, so its methods are the store's. A Dialect method
// named for a store method (CreateFile, PublishKeys …) is that write's
// body: the store runs it inside its own writer's transaction, so the
// writers keep their batching and this package never sees them. What is
// an engine's own stays in its package: the writers (SQLite's single writer with group commit, PostgreSQL's
// batching writers with savepoints, declared locks and pipelined
// statements), statements that need PostgreSQL's arrays, LEAST, row locks
// or data-modifying WITH, SQLite's IN lists, migrations and PRAGMAs.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Querier runs statements on a store's read pool or inside its writer's
// transaction. Exec reports the rows affected; QueryRow's Scan returns an
// error for which NoRows holds when there is no row.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Row is one result row, or the error that produced none.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set, read as database/sql's and pgx's rows are.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// NoRows reports whether err means a query returned no row. database/sql's
// sql.ErrNoRows is the one error: pgx's ErrNoRows wraps it.
func NoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Dialect is what the shared code needs to know of a store: the name its
// errors' operations begin with, and how its driver's errors map to herald
// kinds.
type Dialect struct {
	Name     string                           // "sqlite" or "postgres"
	Classify func(op string, err error) error // nil for a nil err
}

// wrap classifies err as the store's operation op, or returns nil.
func (d Dialect) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return d.Classify(d.Name+"."+op, err)
}

// Reads answers the store.Store reads that run alike on both engines, on a
// store's read pool. A store embeds it, so these methods are its own.
type Reads struct {
	d Dialect
	q Querier
}

// NewReads returns the shared reads of the store d, run through q.
func NewReads(d Dialect, q Querier) Reads { return Reads{d: d, q: q} }

// Millis is t in Unix milliseconds, 0 for the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis is the time of Unix milliseconds v, the zero time for 0.
func FromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Flag is b as the 0/1 INTEGER flags are stored.
func Flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// scanAll reads every row of a query with scan.
func scanAll[T any](ctx context.Context, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
