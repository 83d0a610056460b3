package postgres

import (
	"context"

	"github.com/heraldim/herald/store/internal/sqlstore"
)

// dialect is what store/internal/sqlstore's shared code needs of this
// store: its name in errors and its driver's error kinds.
var dialect = sqlstore.Dialect{Name: "postgres", Classify: classify}

// shim is a querier (the read pool or a writer's transaction) as
// sqlstore.Querier; the querier rewrites the ? placeholders (sql).
type shim struct{ q querier }

func (s shim) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return s.q.exec(ctx, query, args...)
}

func (s shim) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if p, ok := s.q.(poolQuerier); ok {
		// The shared reads read their rows at once: they can be
		// coalesced, and read from a buffer.
		return p.db.queryBuffered(ctx, query, args...)
	}
	rows, err := s.q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (s shim) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return s.q.queryRow(ctx, query, args...)
}
